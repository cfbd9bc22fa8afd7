"""Problems in a definition: how they are raised (``custom_error``, ``error_detail``) and put
into plain words with their place (``definition_errors``, ``format_loc``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.definition.limits import JIRA_OPERATIONS, LINEAR_OPERATIONS
from app.workflows.enums import ActionType, NodeType


def clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for quoting bad input."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def custom_error(code: str, message: str) -> PydanticCustomError:
    # No context: the message is final and may contain braces.
    return PydanticCustomError(code, message)


def error_detail(
    loc: tuple[str | int, ...], code: str, message: str, value: Any
) -> InitErrorDetails:
    return InitErrorDetails(type=custom_error(code, message), loc=loc, input=value)


def validation_error(details: list[InitErrorDetails]) -> ValidationError:
    return ValidationError.from_exception_data("WorkflowDefinition", details)


@dataclass(frozen=True, slots=True)
class DefinitionError:
    """One problem in a definition: where (``nodes[2].data.config.url``) and what."""

    loc: str
    message: str
    code: str


def definition_errors(exc: ValidationError) -> list[DefinitionError]:
    """Turn a ValidationError from parse_definition into plain-language errors."""
    result: list[DefinitionError] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False, include_input=True):
        loc = _drop_union_tags(tuple(error["loc"]))
        code = error["type"]
        if code in ("union_tag_invalid", "union_tag_not_found") and loc:
            loc = (*loc, _tag_field(loc))
        message = plain_message(error, loc)
        key = (format_loc(loc), message)
        if key not in seen:
            seen.add(key)
            result.append(DefinitionError(loc=key[0], message=message, code=code))
    return result


def format_loc(loc: Sequence[str | int]) -> str:
    """Format a location as ``nodes[2].data.config.url`` (dict keys that are
    not plain words in brackets: ``headers["X.Y"]``)."""
    out: list[str] = []
    for part in loc:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part == "[key]":
            continue
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


# --- Error formatting ----------------------------------------------------

_NODE_TAGS = frozenset(member.value for member in NodeType)
_ACTION_TAGS = frozenset(member.value for member in ActionType)
_AUTH_TAGS = ("none", "bearer", "basic", "oauth2", "custom")
_OPERATION_TAGS = frozenset((*JIRA_OPERATIONS, *LINEAR_OPERATIONS))


def _drop_union_tags(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Remove the union member tags pydantic inserts into locations."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        if isinstance(part, str) and (
            (part in _NODE_TAGS and isinstance(previous, int) and i >= 2 and loc[i - 2] == "nodes")
            or (part in _ACTION_TAGS and previous == "data")
            or (part in _AUTH_TAGS and previous == "auth")
            or (part in _OPERATION_TAGS and previous == "config")
        ):
            continue
        out.append(part)
    return tuple(out)


def _tag_field(loc: tuple[str | int, ...]) -> str:
    if loc[-1] == "config":
        return "operation"
    if loc[-1] == "data":
        return "actionType"
    return "type"


def _tag_choices(loc: tuple[str | int, ...]) -> tuple[str, str]:
    if loc[-1] == "actionType":
        return "action type", ", ".join(member.value for member in ActionType)
    if len(loc) >= 2 and loc[-2] == "auth":
        return "auth type", ", ".join(_AUTH_TAGS)
    return "node type", ", ".join(member.value for member in NodeType)


def _number(value: object) -> str:
    """1000000.0 -> '1,000,000'; anything else as is."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


#: The pattern of text fields that refuse control characters (line breaks, tabs, NUL, ...).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f]*$"


def plain_message(
    error: Any, loc: tuple[str | int, ...] | None = None, *, unknown: str = "field"
) -> str:
    """The one translator from a pydantic error to words a person understands, used by the
    API, the page forms and the editor. The sentence never names its field: the caller shows
    it at its place (``loc``), so a missing field reads the same everywhere.
    ``unknown`` names what an unexpected key is ("field", "query parameter")."""
    code: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    loc = tuple(error.get("loc") or ()) if loc is None else loc
    if code == "missing":
        return "This field is required."
    if code == "extra_forbidden":
        name = f" '{clip(str(loc[-1]))}'" if loc else ""
        return f"Unknown {unknown}{name}; remove it."
    if code == "union_tag_invalid" and loc and loc[-1] == "operation":
        choices = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"'{clip(str(ctx.get('tag')))}' is not a valid operation; use one of: {choices}."
    if code == "union_tag_invalid":
        what, choices = _tag_choices(loc)
        return f"'{clip(str(ctx.get('tag')))}' is not a valid {what}; use one of: {choices}."
    if code == "union_tag_not_found" and loc and loc[-1] == "operation":
        return "The operation must be text, such as 'create'."
    if code == "union_tag_not_found":
        _what, choices = _tag_choices(loc)
        return f"This field is required; use one of: {choices}."
    if code in ("model_type", "model_attributes_type", "dict_type"):
        if not loc:
            return "The definition must be a JSON object."
        return 'Expected a JSON object (like {"key": "value"}).'
    if code == "list_type":
        return "Expected a list."
    if code == "string_type":
        return "Expected text (a string)."
    if code in ("int_type", "int_parsing", "int_from_float"):
        return "Expected a whole number."
    if code in ("float_type", "float_parsing"):
        return "Expected a number."
    if code == "finite_number":
        return "Expected a finite number (not NaN or infinity)."
    if code in ("bool_type", "bool_parsing"):
        return "Expected true or false."
    if code == "string_too_short":
        if ctx.get("min_length") == 1:
            return "This field must not be empty."
        return f"Must be at least {ctx.get('min_length')} characters."
    if code == "string_pattern_mismatch" and ctx.get("pattern") == NO_CONTROL_CHARACTERS:
        return "Must not contain line breaks, tabs or other control characters."
    if code == "string_too_long":
        size = f" (this has {len(value):,})" if isinstance(value, str) else ""
        return f"Must be at most {_number(ctx.get('max_length'))} characters{size}."
    if code == "too_short":
        return f"Must have at least {ctx.get('min_length')} item(s)."
    if code == "too_long":
        return f"Must have at most {ctx.get('max_length')} items."
    if code in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        word = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[code]
        return f"Must be {word} {_number(next(iter(ctx.values()), ''))}."
    if code in ("literal_error", "enum"):
        return f"Use {ctx.get('expected')}."
    if code == "json_invalid":
        return f"The text is not valid JSON: {ctx.get('error')}."
    if code == "json_type":
        return "Expected JSON text."
    if code == "invalid_key":
        return "Keys must be text."
    if code in ("value_error", "assertion_error"):
        message: str = error["msg"]
        return message.split(", ", 1)[1] if ", " in message else message
    return str(error["msg"])
