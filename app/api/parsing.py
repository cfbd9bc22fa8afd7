"""Turn a request's body and query string into validated pydantic models, or an ApiError."""

from __future__ import annotations

import json
from typing import Any, NoReturn, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from app.api.errors import ApiError, body_too_large_message, validation_error
from app.api.limits import API_MAX_BODY_BYTES

Model = TypeVar("Model", bound=BaseModel)


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not a valid JSON value")


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
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "malformed_json", "The body is nested too deeply.") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        where = (
            f" (line {error.lineno}, column {error.colno})"
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise ApiError(
            400, "malformed_json", f"The body is not valid JSON: {reason}{where}."
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
