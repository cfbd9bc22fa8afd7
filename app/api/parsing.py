"""Turn a request's body and query string into validated pydantic models, or an ApiError."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from app import input_policy
from app.api.errors import ApiError, ErrorDetail, body_too_large_message, validation_error
from app.api.limits import API_MAX_BODY_BYTES
from app.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)


def read_json_object() -> dict[str, Any]:
    """The body as a JSON object, or an ApiError saying what is wrong with it.

    A body that is not declared as JSON is refused with 415 rather than guessed at:
    the status says exactly what to change (the Content-Type header).
    """
    if not request.is_json:
        sent = request.mimetype or "no Content-Type"
        raise ApiError(
            415,
            "unsupported_content_type",
            f"Send the body as JSON with 'Content-Type: application/json' (got {sent}).",
        )
    raw = request.get_data()
    if len(raw) > API_MAX_BODY_BYTES:
        # A streamed body (no Content-Length) is cut off one byte past the limit; see auth.
        raise ApiError(413, "body_too_large", body_too_large_message())
    try:
        data = input_policy.loads(raw)
    except input_policy.JsonSyntaxError as error:
        raise ApiError(
            400, "malformed_json", f"The body is not valid JSON: {error.message}."
        ) from None
    except InvalidInput as error:
        # NUL, lone surrogates, NaN/Infinity, nesting: refused at the field, before any
        # other code copies or validates the value.
        details = [ErrorDetail(loc=p.loc, message=p.message) for p in error.problems]
        raise ApiError(
            422,
            "validation_error",
            f"The request body is not valid: {details[0].loc}: {details[0].message}"
            if len(details) == 1
            else f"The request body has {len(details)} problems; see details.",
            details=details,
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "body_not_object",
            f"The body must be a JSON object ({{...}}), not {_json_kind(data)}.",
        )
    return data


def parse_body(model: type[Model]) -> Model:
    data = read_json_object()
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_error(error) from None


def parse_query(model: type[Model]) -> Model:
    """Validate the query string; empty values count as not given."""
    args = {key: value for key, value in request.args.items() if value != ""}
    try:
        return model.model_validate(args)
    except ValidationError as error:
        raise validation_error(error, prefix="query", unknown="query parameter") from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
