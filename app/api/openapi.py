"""The OpenAPI 3.1 document, generated from the operation table and the pydantic
models that validate requests and shape responses, so it cannot drift from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel

from app.api.errors import ERROR_CODES, ErrorResponse
from app.api.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER
from app.api.limits import API_MAX_BODY_TEXT
from app.api.models import IDEMPOTENCY_KEY_MAX_LENGTH
from app.api.registry import Operation
from app.input_policy import MAX_JSON_DEPTH

REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"

# status -> name of the shared response in components.responses
ERROR_RESPONSE_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    500: "InternalError",
    503: "ServiceUnavailable",
}

DESCRIPTION = f"""\
Incidents for machines: monitoring tools open, change and read incidents here,
through the same service (and so the same incident events, which start
workflows) as the web pages.

**Authentication**: every operation except this document needs
`Authorization: Bearer <token>`, with a token created on your profile page.

**Bodies** are JSON objects sent as `Content-Type: application/json`, of at
most {API_MAX_BODY_TEXT}. A body sent with another Content-Type is refused with 415 rather
than guessed at.

**Errors** always have the shape
`{{"error": {{"code": "...", "message": "...", "details": [{{"loc": "...", "message": "..."}}]}}}}`.
Switch on `code`; `message` is for people; `details[].loc` is a dotted path of
the camelCase names (`title`, `metadata`, `query.status`). A request that fails
changes nothing.

**Input** anywhere (body, path, query) may not contain NUL characters or lone
surrogates, JSON numbers must be finite (no `NaN`, `Infinity` or `1e400`), and
JSON may nest at most {MAX_JSON_DEPTH} levels: such input is refused with 422 at
its field (404 for an id in the path).

**Retries**: opening an incident, changing its status and starting a run accept an
`Idempotency-Key` header; see each operation.

| Status | Code | Meaning |
|---|---|---|
"""


def _description() -> str:
    rows = [
        f"| {status} | `{code}` | {meaning} |"
        for code, (status, meaning) in sorted(ERROR_CODES.items(), key=lambda i: i[1][0])
    ]
    return DESCRIPTION + "\n".join(rows) + "\n"


def _error_description(status: int) -> str:
    return " ".join(
        f"`{code}`: {meaning}"
        for code, (code_status, meaning) in ERROR_CODES.items()
        if code_status == status
    )


class _Components:
    """Collects schemas, hoisting each model's ``$defs`` into ``components.schemas``."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def _put(self, name: str, schema: dict[str, Any]) -> None:
        if name in self.schemas and self.schemas[name] != schema:
            raise ValueError(f"Two different schemas are both named {name!r}")
        self.schemas[name] = schema

    def schema_of(
        self, model: type[BaseModel], mode: Literal["validation", "serialization"]
    ) -> dict[str, Any]:
        """The model's full schema with its ``$defs`` hoisted into the components."""
        schema = model.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE, mode=mode)
        for name, definition in schema.pop("$defs", {}).items():
            self._put(name, definition)
        return schema

    def ref(
        self, model: type[BaseModel], mode: Literal["validation", "serialization"]
    ) -> dict[str, str]:
        self._put(model.__name__, self.schema_of(model, mode))
        return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _query_parameters(model: type[BaseModel], components: _Components) -> list[dict[str, Any]]:
    schema = components.schema_of(model, "validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        # ``X | None`` means "may be left out"; a query string cannot send null.
        options = prop.get("anyOf")
        if options and {"type": "null"} in options and len(options) == 2:
            prop.pop("anyOf")
            prop.update(next(option for option in options if option != {"type": "null"}))
            if prop.get("default", "") is None:
                prop.pop("default")
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


_IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A key you choose, unique per request (a UUID, say). A repeat by the same token "
        "owner with the same key within 24 hours answers the first successful response "
        f"again (with `{REPLAYED_HEADER}: true`) and changes nothing; the same key with "
        "another method, path or body is refused with 422 `idempotency_key_reused`. "
        "A request that failed is not remembered: it changed nothing and may be sent again."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH,
        "pattern": KEY_PATTERN,
    },
}


def _operation(op: Operation, components: _Components) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        document["description"] = op.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
        for name in op.path_parameters
    ]
    if op.query_model is not None:
        parameters += _query_parameters(op.query_model, components)
    if op.idempotent:
        parameters.append(_IDEMPOTENCY_KEY)
    if parameters:
        document["parameters"] = parameters
    if op.body_model is not None:
        document["requestBody"] = {
            "required": True,
            "content": _json_content(components.ref(op.body_model, "validation")),
        }
    success: dict[str, Any] = {"description": op.success_description}
    if op.response_model is not None:
        success["content"] = _json_content(components.ref(op.response_model, "serialization"))
    elif op.success_status != 204:  # "No Content" has no body to describe
        success["content"] = _json_content({"type": "object"})
    success_headers = dict(op.success_headers)
    if op.idempotent:
        success_headers[REPLAYED_HEADER] = (
            "`true` when this is the stored response to an earlier request with the same "
            f"`{HEADER}`."
        )
    if success_headers:
        success["headers"] = {
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in success_headers.items()
        }
    responses: dict[str, Any] = {str(op.success_status): success}
    for status in op.error_statuses:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERROR_RESPONSE_NAMES[status]}"}
    document["responses"] = responses
    if op.public:
        document["security"] = []
    return document


def build_document(operations: Iterable[Operation], *, server_url: str) -> dict[str, Any]:
    components = _Components()
    error_ref = components.ref(ErrorResponse, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = _operation(op, components)
    responses = {
        name: {"description": _error_description(status), "content": _json_content(error_ref)}
        for status, name in ERROR_RESPONSE_NAMES.items()
    }
    responses["ServiceUnavailable"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}
    }
    responses["Unauthorized"]["headers"] = {
        "WWW-Authenticate": {"description": "The Bearer challenge.", "schema": {"type": "string"}}
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "IncidentFlow API", "version": "1.0.0", "description": _description()},
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "Incidents", "description": "Open, change and read incidents."},
            {"name": "Meta", "description": "About the API itself."},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "responses": responses,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token created on your profile page.",
                }
            },
        },
    }
