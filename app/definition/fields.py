"""The field types of a definition: annotated strings and numbers with their bounds and
validators, and ``Schema``, the base of every definition and run-time model (camelCase
on the wire, snake_case in Python, unknown keys refused)."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic.alias_generators import to_camel

from app.definition.limits import (
    AUTH_HEADERS,
    CONDITION_FIELD_PATTERN,
    CONDITION_FIELD_RE,
    CONTROL_RE,
    CREDENTIAL_MESSAGE,
    HEADER_NAME_PATTERN,
    HEADER_NAME_RE,
    HOST_RE,
    ID_PATTERN,
    ID_RE,
    LABEL_PATTERN,
    LABEL_RE,
    MAX_CONDITION_VALUE_LENGTH,
    MAX_COORDINATE,
    MAX_HEADER_NAME_LENGTH,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SHORT_TEXT_LENGTH,
    MAX_TEMPLATE_LENGTH,
    PROJECT_KEY_RE,
    RESERVED_HEADERS,
    SCHEME_RE,
    SECRET_REFERENCE_PATTERN,
    SECRET_REFERENCE_RE,
    UUID_PATTERN,
    UUID_RE,
)
from app.definition.messages import clip, custom_error
from app.incidents.enums import IncidentPriority, IncidentStatus


def check_not_blank(value: str) -> str:
    if not value.strip():
        raise custom_error("blank", "This field must not be blank.")
    return value


def _identifier(value: str) -> str:
    if not ID_RE.fullmatch(value):
        raise custom_error(
            "invalid_id",
            "Use 1 to 64 letters, digits, '_' or '-' (no spaces or other characters).",
        )
    return value


def _secret_reference(value: str) -> str:
    if not SECRET_REFERENCE_RE.fullmatch(value):
        raise custom_error("literal_credential", CREDENTIAL_MESSAGE)
    return value


def _header_name(value: str) -> str:
    if not HEADER_NAME_RE.fullmatch(value):
        raise custom_error(
            "invalid_header_name",
            f"'{clip(value)}' is not a valid HTTP header name; use letters, "
            "digits and '-' (for example 'X-Request-Id').",
        )
    if value.lower() in RESERVED_HEADERS:
        raise custom_error(
            "reserved_header",
            f"The '{value}' header is set automatically; remove it.",
        )
    return value


def _plain_header_name(value: str) -> str:
    if value.lower() in AUTH_HEADERS:
        raise custom_error(
            "auth_header",
            f"Do not set '{value}' in headers; choose the authentication under "
            "auth (bearer, basic, OAuth2 or custom headers with a secret).",
        )
    return value


def _single_line(value: str) -> str:
    if CONTROL_RE.search(value):
        raise custom_error(
            "control_characters",
            "Header values must be one line without control characters.",
        )
    return value


def check_unique_headers(value: dict[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name in value:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise custom_error(
                "duplicate_header",
                f"The header '{name}' is set twice (also as '{other}'); "
                "header names ignore case, keep one.",
            )
    return value


def _check_url_authority(rest: str) -> None:
    """Check the part after the scheme up to the path: a literal host and port."""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "{" in authority or "}" in authority:
        raise custom_error(
            "templated_host",
            "Write the host name out in full; only the path and query of the "
            "URL may contain templates.",
        )
    if "@" in authority:
        raise custom_error(
            "url_credentials",
            "Do not put a user name or password in the URL; use auth instead.",
        )
    match = HOST_RE.fullmatch(authority) if len(authority) <= 260 else None
    port = match.group(1) if match else None
    if not match or (port is not None and not 1 <= int(port) <= 65_535):
        raise custom_error(
            "invalid_host",
            f"'{clip(authority)}' is not a valid host name with an optional "
            "port (for example 'hooks.example.com' or 'example.com:8443'); "
            "write international names in their xn-- form.",
        )


def check_webhook_url(value: str) -> str:
    scheme = SCHEME_RE.match(value)
    if not scheme:
        raise custom_error(
            "invalid_url",
            "The URL must start with http:// or https:// (templates may follow the host name).",
        )
    if CONTROL_RE.search(value):
        raise custom_error(
            "invalid_url", "The URL must not contain line breaks or control characters."
        )
    _check_url_authority(value[scheme.end() :])
    return value


def check_plain_url(value: str) -> str:
    scheme = SCHEME_RE.match(value)
    if not scheme or re.search(r"[\s{}]", value) or CONTROL_RE.search(value):
        raise custom_error(
            "invalid_url",
            "Enter a plain http:// or https:// URL, without spaces or templates.",
        )
    _check_url_authority(value[scheme.end() :])
    return value


def check_project_key(value: str) -> str:
    if not PROJECT_KEY_RE.fullmatch(value):
        raise custom_error(
            "invalid_project_key",
            "Use the Jira project key: 2 to 10 capital letters, digits or '_', "
            "starting with a letter (for example 'OPS').",
        )
    return value


def _uuid(value: str) -> str:
    if not UUID_RE.fullmatch(value):
        raise custom_error(
            "invalid_uuid",
            "Use the Linear id, a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.",
        )
    return value


def _label(value: str) -> str:
    if not LABEL_RE.fullmatch(value):
        raise custom_error(
            "invalid_label",
            "Jira labels cannot contain spaces; use '-' or '_' between words.",
        )
    return value


def check_unique_items(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for item in value:
        if item in seen:
            raise custom_error("duplicate_item", f"'{clip(item)}' is listed twice; keep one.")
        seen.add(item)
    return value


def _condition_field(value: str) -> str:
    if not CONDITION_FIELD_RE.fullmatch(value):
        raise custom_error(
            "invalid_condition_field",
            "Use priority, status, service, team or metadata.<key> (the key is "
            "1 to 100 letters, digits, '_' or '-').",
        )
    return value


def _check_condition_value(value: str, info: ValidationInfo) -> str:
    field = info.data.get("field")
    allowed: type[Enum] | None = None
    if field == "priority":
        allowed = IncidentPriority
    elif field == "status":
        allowed = IncidentStatus
    if allowed is not None and value not in {member.value for member in allowed}:
        options = ", ".join(member.value for member in allowed)
        raise custom_error(
            "invalid_condition_value",
            f"'{clip(value)}' is not a valid {field}; use one of {options}.",
        )
    return value


Identifier = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        json_schema_extra={"pattern": ID_PATTERN},
    ),
    AfterValidator(_identifier),
]
DisplayName = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(check_not_blank),
]
ShortText = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_SHORT_TEXT_LENGTH),
    AfterValidator(check_not_blank),
]
TemplateText = Annotated[str, Field(strict=True, max_length=MAX_TEMPLATE_LENGTH)]
RequiredTemplateText = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_TEMPLATE_LENGTH),
    AfterValidator(check_not_blank),
]
SecretReference = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_SHORT_TEXT_LENGTH,
        json_schema_extra={"pattern": SECRET_REFERENCE_PATTERN},
    ),
    AfterValidator(_secret_reference),
]
HeaderName = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_HEADER_NAME_LENGTH,
        json_schema_extra={"pattern": HEADER_NAME_PATTERN},
    ),
    AfterValidator(_header_name),
]
PlainHeaderName = Annotated[HeaderName, AfterValidator(_plain_header_name)]
HeaderValue = Annotated[TemplateText, AfterValidator(_single_line)]
LinearId = Annotated[
    str,
    Field(strict=True, max_length=36, json_schema_extra={"pattern": UUID_PATTERN}),
    AfterValidator(_uuid),
]
JiraLabel = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_LABEL_LENGTH,
        json_schema_extra={"pattern": LABEL_PATTERN},
    ),
    AfterValidator(_label),
]
ConditionField = Annotated[
    str,
    Field(
        strict=True,
        max_length=120,
        json_schema_extra={"pattern": CONDITION_FIELD_PATTERN},
    ),
    AfterValidator(_condition_field),
]
ConditionValue = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_CONDITION_VALUE_LENGTH),
    AfterValidator(check_not_blank),
]
# Validated after `field`, which must therefore come first in the model.
CheckedConditionValue = Annotated[ConditionValue, AfterValidator(_check_condition_value)]
Coordinate = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=-MAX_COORDINATE,
        le=MAX_COORDINATE,
        description=(f"Finite number between -{MAX_COORDINATE:,.0f} and {MAX_COORDINATE:,.0f}."),
    ),
]


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )
