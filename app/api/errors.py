"""One JSON shape for every failure under /api/v1, and the handlers that produce it.

``{"error": {"code": "<stable>", "message": "<for people>", "details": [{"loc", "message"}]}}``

Clients switch on ``code``; ``message`` is for the person reading the logs;
``details`` says where the input was wrong (``title``, ``metadata``,
``query.status``). Every handler rolls the session back first, so a failed
request never leaves anything half-saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from app.api.limits import API_MAX_BODY_TEXT
from app.definition.messages import format_loc, plain_message
from app.errors import Problem, ServiceError
from app.extensions import db

# Every stable error code the API answers with: code -> (status, meaning).
# The OpenAPI document lists them from here.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The body is not valid JSON."),
    "body_not_object": (400, "The body is JSON, but not an object."),
    "authentication_required": (401, "No 'Authorization: Bearer <token>' header."),
    "invalid_token": (
        401,
        "The token is malformed, unknown or revoked, or its user is deactivated.",
    ),
    "forbidden": (403, "This user may not do that (e.g. open an incident for another team)."),
    "not_found": (404, "No such incident (or one of a team you are not in), or no such URL."),
    "method_not_allowed": (405, "The URL exists, but not with this method; see 'Allow'."),
    "conflict": (409, "Someone changed the incident meanwhile; reload it and try again."),
    "invalid_transition": (409, "The change does not fit the incident's status."),
    "body_too_large": (413, f"The body is larger than {API_MAX_BODY_TEXT}."),
    "unsupported_content_type": (415, "The body is not sent as 'application/json'."),
    "validation_error": (422, "A field or query parameter is not valid; see 'details'."),
    "internal_error": (500, "Something went wrong on the server."),
    "service_unavailable": (
        503,
        "The database cannot be reached for the moment; try again after 'Retry-After' seconds.",
    ),
}

# The code for an HTTP-level failure raised by Flask or werkzeug.
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_content_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}

# The only pattern our input models use: no control characters (line breaks, tabs, NUL).


class ErrorDetail(BaseModel):
    """Where the input was wrong (a dotted path of camelCase names) and what is wrong."""

    loc: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody


class ApiError(Exception):
    """An HTTP-level failure of an API request (bad body, bad token, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Iterable[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    details: Iterable[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=list(details)))
    return current_app.response_class(
        body.model_dump_json(), status=status, headers=headers, mimetype="application/json"
    )


def body_too_large_message() -> str:
    return f"The request body is too large; the API accepts at most {API_MAX_BODY_TEXT}."


def validation_error(
    error: ValidationError, *, prefix: str | None = None, unknown: str = "field"
) -> ApiError:
    details = [
        ErrorDetail(
            loc=format_loc([*([prefix] if prefix else []), *e["loc"]]) or "body",
            message=plain_message(e, unknown=unknown),
        )
        for e in error.errors(include_url=False)
    ]
    where = "query parameters" if prefix == "query" else "request body"
    return ApiError(
        422,
        "validation_error",
        f"The {where} is not valid: {details[0].loc}: {details[0].message}"
        if len(details) == 1
        else f"The {where} has {len(details)} problems; see details.",
        details=details,
    )


def _problem_details(problems: Iterable[Problem]) -> list[ErrorDetail]:
    return [ErrorDetail(loc=p.loc, message=p.message) for p in problems]


def _is_api_path() -> bool:
    return request.path == "/api/v1" or request.path.startswith("/api/v1/")


def register_error_handlers(bp: Blueprint) -> None:
    @bp.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        db.session.rollback()
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @bp.errorhandler(ServiceError)
    def service_error(error: ServiceError) -> Response:
        db.session.rollback()
        return error_response(
            error.status, error.code, error.message, _problem_details(error.problems)
        )

    @bp.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # Raised inside an API view, e.g. 413 while reading an oversized body.
        db.session.rollback()
        status = error.code or 500
        code = HTTP_ERROR_CODES.get(status, "http_error")
        message = error.description or error.name
        if status == 413:
            message = body_too_large_message()
        headers = None
        if isinstance(error, MethodNotAllowed):
            headers = {"Allow": ", ".join(error.valid_methods or [])}
        return error_response(status, code, message, headers=headers)

    @bp.errorhandler(InternalServerError)
    def internal_error(_error: InternalServerError) -> Response:
        # Only reached when exceptions are not propagated (never in tests).
        db.session.rollback()
        return error_response(
            500, "internal_error", "Something went wrong on our side. Try again later."
        )

    @bp.before_app_request
    def routing_failure() -> Response | None:
        """404 and 405 under /api/v1 answer JSON too.

        A URL that matches no rule never reaches the blueprint's error handlers
        (it belongs to no blueprint), but before-request hooks run before Flask
        raises the routing error, so this is where the API can still answer.
        """
        failure = request.routing_exception
        if failure is None or not _is_api_path():
            return None
        if isinstance(failure, MethodNotAllowed):
            allowed = sorted(failure.valid_methods or [])
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {', '.join(allowed)}.",
                headers={"Allow": ", ".join(allowed)},
            )
        if isinstance(failure, NotFound):
            return error_response(
                404,
                "not_found",
                "There is no such API endpoint. See /api/v1/openapi.json for the list.",
            )
        return None  # e.g. a redirect to the canonical URL: let Flask send it
