"""The workflow definition: the JSON stored in ``Workflow.definition``.

These pydantic models are the only description of a definition. Field names
are camelCase on the wire (React Flow compatible) and snake_case in Python.
Validation happens in two passes, both raising ``pydantic.ValidationError``:

1. field validation (types, bounds, formats, credentials as secret references);
2. whole-definition rules that need the graph: one trigger, edges between
   existing nodes, no cycles, condition handles, reachability, trigger
   settings that fit the trigger type, and templates that parse and name only
   variables that exist when the node runs.

Use ``parse_definition`` / ``parse_definition_json`` to validate and
``definition_errors`` to turn the exception into ``loc``/``message`` pairs.
"""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.engine.templating import TemplateSyntaxProblem, template_references
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.workflows.enums import (
    ActionType,
    ExecutionStatus,
    NodeStatus,
    NodeType,
    TriggerType,
)

__all__ = [
    "ActionData",
    "ActionNode",
    "AssigneeContext",
    "BasicAuth",
    "BearerAuth",
    "ConditionData",
    "ConditionNode",
    "CustomHeaderAuth",
    "DefinitionError",
    "DelayData",
    "DelayNode",
    "IMPLICIT_SECRETS",
    "IncidentContext",
    "JiraAction",
    "JiraCommentConfig",
    "JiraConfig",
    "JiraTransitionConfig",
    "LinearAction",
    "LinearConfig",
    "LinearUpdateConfig",
    "NoAuth",
    "NodeResult",
    "OAuth2Auth",
    "Position",
    "RetryConfig",
    "StateTransition",
    "TeamContext",
    "TemplateContext",
    "FailureContext",
    "TriggerCondition",
    "TriggerConfig",
    "TriggerData",
    "TriggerNode",
    "WebhookAction",
    "WebhookAuth",
    "WebhookConfig",
    "WorkflowContext",
    "WorkflowDefinition",
    "WorkflowEdge",
    "WorkflowExecutionResult",
    "WorkflowNode",
    "WorkflowSettings",
    "always_runs_before",
    "ancestors",
    "definition_errors",
    "definition_json_schema",
    "format_loc",
    "parse_definition",
    "parse_definition_json",
    "referenced_secrets",
    "reads_previous",
    "topological_order",
]

# --- Bounds --------------------------------------------------------------

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2_000
MAX_VERSION = 2_147_483_647  # the database column is a 32-bit integer
MAX_NODES = 200
MAX_EDGES = 500
MAX_ID_LENGTH = 64
MAX_COORDINATE = 1_000_000.0
MAX_CONDITIONS = 20
MAX_CONDITION_VALUE_LENGTH = 500
MAX_AGE_THRESHOLD_MINUTES = 43_200  # 30 days
MAX_DELAY_MINUTES = 10_080  # 7 days
MAX_ONCE_PER_MINUTES = 43_200  # 30 days
MAX_RETRY_ATTEMPTS = 10
MIN_INITIAL_DELAY_MS = 100
MAX_INITIAL_DELAY_MS = 300_000
MAX_TEMPLATE_LENGTH = 10_000
MAX_BODY_LENGTH = 100_000
MAX_URL_LENGTH = 2_048
MAX_HEADERS = 50
MAX_CUSTOM_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 100
MAX_LABELS = 20
MAX_LABEL_LENGTH = 255
MAX_SHORT_TEXT_LENGTH = 200
# Whole-input budgets, checked before any field is validated.
MAX_DEFINITION_TEXT = 500_000  # characters in all strings and keys together
MAX_DEFINITION_JSON_LENGTH = 4_000_000  # characters (or bytes) of JSON text
MAX_DEFINITION_DEPTH = 16  # nested objects/lists; a valid definition needs 7
MAX_DEFINITION_ITEMS = 50_000  # values of any kind

TEMPLATE_ROOTS = ("incident", "assignee", "team", "workflow", "steps", "secrets", "failure")
MAX_FAILED_WORKFLOWS = 50
MAX_MIN_FAILURES = 1_000

#: Secrets that Jira and Linear actions read without naming them in a template.
IMPLICIT_SECRETS: Mapping[ActionType, tuple[str, ...]] = {
    ActionType.JIRA: ("jira_base_url", "jira_email", "jira_api_token"),
    ActionType.LINEAR: ("linear_api_key",),
}

_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_SECRET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_SECRET_REFERENCE_PATTERN = r"^\{\{\s*secrets\.([a-z][a-z0-9_]{0,63})\s*\}\}$"
_HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"
_PROJECT_KEY_PATTERN = r"^[A-Z][A-Z0-9_]{1,9}$"
_UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
_CONDITION_FIELD_PATTERN = r"^(priority|status|service|team|metadata\.[A-Za-z0-9_-]{1,100})$"
_LABEL_PATTERN = r"^\S{1,255}$"

_ID_RE = re.compile(_ID_PATTERN)
_SECRET_NAME_RE = re.compile(_SECRET_NAME_PATTERN)
SECRET_NAME_RE = _SECRET_NAME_RE  # public: the secrets store checks names the same way
_SECRET_REFERENCE_RE = re.compile(_SECRET_REFERENCE_PATTERN)
_HEADER_NAME_RE = re.compile(_HEADER_NAME_PATTERN)
_PROJECT_KEY_RE = re.compile(_PROJECT_KEY_PATTERN)
_UUID_RE = re.compile(_UUID_PATTERN)
_CONDITION_FIELD_RE = re.compile(_CONDITION_FIELD_PATTERN)
_LABEL_RE = re.compile(_LABEL_PATTERN)
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::([0-9]{1,5}))?"
)
_SCHEME_RE = re.compile(r"https?://", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# Set by the HTTP client from the request itself, or carried by `auth`.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})

_CREDENTIAL_MESSAGE = (
    "Credentials are not stored in a definition. Save the value as a workflow "
    "secret and enter {{ secrets.<name> }} here."
)


_Loc = tuple[str | int, ...]


# --- Field types ---------------------------------------------------------


def _problem(code: str, message: str) -> PydanticCustomError:
    # No context: the message is final and may contain braces.
    return PydanticCustomError(code, message)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _problem("blank", "This field must not be blank.")
    return value


def _identifier(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise _problem(
            "invalid_id",
            "Use 1 to 64 letters, digits, '_' or '-' (no spaces or other characters).",
        )
    return value


def _secret_reference(value: str) -> str:
    if not _SECRET_REFERENCE_RE.fullmatch(value):
        raise _problem("literal_credential", _CREDENTIAL_MESSAGE)
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME_RE.fullmatch(value):
        raise _problem(
            "invalid_header_name",
            f"'{_clip(value)}' is not a valid HTTP header name; use letters, "
            "digits and '-' (for example 'X-Request-Id').",
        )
    if value.lower() in _RESERVED_HEADERS:
        raise _problem(
            "reserved_header",
            f"The '{value}' header is set automatically; remove it.",
        )
    return value


def _plain_header_name(value: str) -> str:
    if value.lower() in _AUTH_HEADERS:
        raise _problem(
            "auth_header",
            f"Do not set '{value}' in headers; choose the authentication under "
            "auth (bearer, basic, OAuth2 or custom headers with a secret).",
        )
    return value


def _single_line(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise _problem(
            "control_characters",
            "Header values must be one line without control characters.",
        )
    return value


def _unique_headers(value: dict[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name in value:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise _problem(
                "duplicate_header",
                f"The header '{name}' is set twice (also as '{other}'); "
                "header names ignore case, keep one.",
            )
    return value


def _check_url_authority(rest: str) -> None:
    """Check the part after the scheme up to the path: a literal host and port."""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "{" in authority or "}" in authority:
        raise _problem(
            "templated_host",
            "Write the host name out in full; only the path and query of the "
            "URL may contain templates.",
        )
    if "@" in authority:
        raise _problem(
            "url_credentials",
            "Do not put a user name or password in the URL; use auth instead.",
        )
    match = _HOST_RE.fullmatch(authority) if len(authority) <= 260 else None
    port = match.group(1) if match else None
    if not match or (port is not None and not 1 <= int(port) <= 65_535):
        raise _problem(
            "invalid_host",
            f"'{_clip(authority)}' is not a valid host name with an optional "
            "port (for example 'hooks.example.com' or 'example.com:8443'); "
            "write international names in their xn-- form.",
        )


def _webhook_url(value: str) -> str:
    scheme = _SCHEME_RE.match(value)
    if not scheme:
        raise _problem(
            "invalid_url",
            "The URL must start with http:// or https:// (templates may follow the host name).",
        )
    if _CONTROL_RE.search(value):
        raise _problem("invalid_url", "The URL must not contain line breaks or control characters.")
    _check_url_authority(value[scheme.end() :])
    return value


def _plain_url(value: str) -> str:
    scheme = _SCHEME_RE.match(value)
    if not scheme or re.search(r"[\s{}]", value) or _CONTROL_RE.search(value):
        raise _problem(
            "invalid_url",
            "Enter a plain http:// or https:// URL, without spaces or templates.",
        )
    _check_url_authority(value[scheme.end() :])
    return value


def _project_key(value: str) -> str:
    if not _PROJECT_KEY_RE.fullmatch(value):
        raise _problem(
            "invalid_project_key",
            "Use the Jira project key: 2 to 10 capital letters, digits or '_', "
            "starting with a letter (for example 'OPS').",
        )
    return value


def _uuid(value: str) -> str:
    if not _UUID_RE.fullmatch(value):
        raise _problem(
            "invalid_uuid",
            "Use the Linear id, a UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.",
        )
    return value


def _label(value: str) -> str:
    if not _LABEL_RE.fullmatch(value):
        raise _problem(
            "invalid_label",
            "Jira labels cannot contain spaces; use '-' or '_' between words.",
        )
    return value


def _unique_items(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for item in value:
        if item in seen:
            raise _problem("duplicate_item", f"'{_clip(item)}' is listed twice; keep one.")
        seen.add(item)
    return value


def _condition_field(value: str) -> str:
    if not _CONDITION_FIELD_RE.fullmatch(value):
        raise _problem(
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
        raise _problem(
            "invalid_condition_value",
            f"'{_clip(value)}' is not a valid {field}; use one of {options}.",
        )
    return value


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


Identifier = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        json_schema_extra={"pattern": _ID_PATTERN},
    ),
    AfterValidator(_identifier),
]
DisplayName = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_not_blank),
]
ShortText = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_SHORT_TEXT_LENGTH),
    AfterValidator(_not_blank),
]
TemplateText = Annotated[str, Field(strict=True, max_length=MAX_TEMPLATE_LENGTH)]
RequiredTemplateText = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_TEMPLATE_LENGTH),
    AfterValidator(_not_blank),
]
SecretReference = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_SHORT_TEXT_LENGTH,
        json_schema_extra={"pattern": _SECRET_REFERENCE_PATTERN},
    ),
    AfterValidator(_secret_reference),
]
HeaderName = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_HEADER_NAME_LENGTH,
        json_schema_extra={"pattern": _HEADER_NAME_PATTERN},
    ),
    AfterValidator(_header_name),
]
PlainHeaderName = Annotated[HeaderName, AfterValidator(_plain_header_name)]
HeaderValue = Annotated[TemplateText, AfterValidator(_single_line)]
LinearId = Annotated[
    str,
    Field(strict=True, max_length=36, json_schema_extra={"pattern": _UUID_PATTERN}),
    AfterValidator(_uuid),
]
JiraLabel = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_LABEL_LENGTH,
        json_schema_extra={"pattern": _LABEL_PATTERN},
    ),
    AfterValidator(_label),
]
ConditionField = Annotated[
    str,
    Field(
        strict=True,
        max_length=120,
        json_schema_extra={"pattern": _CONDITION_FIELD_PATTERN},
    ),
    AfterValidator(_condition_field),
]
ConditionValue = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_CONDITION_VALUE_LENGTH),
    AfterValidator(_not_blank),
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

_NAME_DESCRIPTION = f"Display name, 1 to {MAX_NAME_LENGTH} characters, not blank."


class _Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )


# --- The definition ------------------------------------------------------


class Position(_Schema):
    """Where the node is drawn in the editor."""

    x: Coordinate
    y: Coordinate


class TriggerData(_Schema):
    """The trigger node's data; the trigger settings are in the definition's trigger."""

    name: DisplayName = Field(description=_NAME_DESCRIPTION)


class RetryConfig(_Schema):
    """How a failed action is retried (exponential backoff with jitter)."""

    attempts: int = Field(
        strict=True,
        ge=1,
        le=MAX_RETRY_ATTEMPTS,
        description=f"Total attempts including the first, 1 to {MAX_RETRY_ATTEMPTS}.",
    )
    backoff: Literal["exponential"] = Field(description="Always 'exponential'.")
    initial_delay_ms: int = Field(
        strict=True,
        ge=MIN_INITIAL_DELAY_MS,
        le=MAX_INITIAL_DELAY_MS,
        description=(
            f"Delay before the first retry in milliseconds, {MIN_INITIAL_DELAY_MS} "
            f"to {MAX_INITIAL_DELAY_MS}; it doubles on each further retry."
        ),
    )


class NoAuth(_Schema):
    """No authentication."""

    type: Literal["none"]


class BearerAuth(_Schema):
    """Sends 'Authorization: Bearer <token>'."""

    type: Literal["bearer"]
    token: SecretReference = Field(
        description="A secret reference, exactly '{{ secrets.<name> }}'."
    )


class BasicAuth(_Schema):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: RequiredTemplateText = Field(
        description=f"User name (template), 1 to {MAX_TEMPLATE_LENGTH} characters."
    )
    password: SecretReference = Field(
        description="A secret reference, exactly '{{ secrets.<name> }}'."
    )


class OAuth2Auth(_Schema):
    """OAuth2 client credentials: a token is fetched from tokenUrl first."""

    type: Literal["oauth2"]
    client_id: RequiredTemplateText = Field(
        description=f"Client id (template), 1 to {MAX_TEMPLATE_LENGTH} characters."
    )
    client_secret: SecretReference = Field(
        description="A secret reference, exactly '{{ secrets.<name> }}'."
    )
    token_url: Annotated[
        str,
        Field(strict=True, max_length=MAX_URL_LENGTH),
        AfterValidator(_plain_url),
    ] = Field(
        description=(
            f"Plain http(s) URL of the token endpoint with a host name, at most "
            f"{MAX_URL_LENGTH} characters, no templates."
        )
    )


class CustomHeaderAuth(_Schema):
    """Authentication headers whose values are secrets (for example an API key)."""

    type: Literal["custom"]
    custom_headers: Annotated[
        dict[HeaderName, SecretReference],
        Field(min_length=1, max_length=MAX_CUSTOM_HEADERS),
        AfterValidator(_unique_headers),
    ] = Field(
        description=(
            f"1 to {MAX_CUSTOM_HEADERS} headers; every value is a secret reference "
            "'{{ secrets.<name> }}'."
        )
    )


WebhookAuth = Annotated[
    NoAuth | BearerAuth | BasicAuth | OAuth2Auth | CustomHeaderAuth,
    Field(discriminator="type"),
]


class WebhookConfig(_Schema):
    """An outgoing HTTP request with a JSON body."""

    url: Annotated[
        str,
        Field(strict=True, min_length=1, max_length=MAX_URL_LENGTH),
        AfterValidator(_webhook_url),
    ] = Field(
        description=(
            f"Template, at most {MAX_URL_LENGTH} characters. Starts with http:// "
            "or https:// and a literal host name; templates may follow the host."
        )
    )
    method: Literal["POST", "PUT", "PATCH"]
    headers: Annotated[
        dict[PlainHeaderName, HeaderValue],
        Field(max_length=MAX_HEADERS),
        AfterValidator(_unique_headers),
    ] = Field(
        description=(
            f"At most {MAX_HEADERS} headers. Names are HTTP tokens; Host, "
            "Content-Length, Transfer-Encoding, Connection and Authorization are "
            f"not allowed. Values are one-line templates of at most "
            f"{MAX_TEMPLATE_LENGTH} characters."
        )
    )
    body: Annotated[str, Field(strict=True, max_length=MAX_BODY_LENGTH)] = Field(
        description=f"JSON body template, at most {MAX_BODY_LENGTH} characters."
    )
    auth: WebhookAuth


class JiraConfig(_Schema):
    """Create a Jira Cloud issue (REST v3). Without ``operation``, a config creates."""

    operation: Literal["create"] | None = Field(
        default=None, description="'create' (or absent): open an issue."
    )
    project_key: Annotated[
        str,
        Field(strict=True, max_length=10, json_schema_extra={"pattern": _PROJECT_KEY_PATTERN}),
        AfterValidator(_project_key),
    ] = Field(description="Jira project key, 2 to 10 capital letters, digits or '_'.")
    issue_type: ShortText = Field(
        description=f"Issue type name such as 'Task', 1 to {MAX_SHORT_TEXT_LENGTH} characters."
    )
    summary: RequiredTemplateText = Field(
        description=f"Template, 1 to {MAX_TEMPLATE_LENGTH} characters, not blank."
    )
    description: TemplateText = Field(
        description=f"Template, at most {MAX_TEMPLATE_LENGTH} characters."
    )
    priority: ShortText | None = Field(
        default=None, description="Jira priority name such as 'High'."
    )
    labels: (
        Annotated[
            list[JiraLabel],
            Field(max_length=MAX_LABELS),
            AfterValidator(_unique_items),
        ]
        | None
    ) = Field(
        default=None,
        description=f"At most {MAX_LABELS} distinct labels without whitespace.",
    )


class JiraTransitionConfig(_Schema):
    """Move an existing Jira issue along its workflow (``POST .../transitions``)."""

    operation: Literal["transition"] = Field(description="'transition': change the status.")
    issue_key: RequiredTemplateText = Field(
        description=(
            "Template giving the issue key, such as OPS-12, usually an earlier run's "
            "result: {{ incident.previous['<workflow>']['<node>'].result.key }}."
        )
    )
    transition: ShortText = Field(
        description=(
            "The transition's name or the status it leads to (either, case-insensitive, "
            "such as 'Done'), or the transition's numeric id."
        )
    )


class JiraCommentConfig(_Schema):
    """Add a comment to an existing Jira issue (``POST .../comment``)."""

    operation: Literal["comment"] = Field(description="'comment': add a comment.")
    issue_key: RequiredTemplateText = Field(
        description="Template giving the issue key, such as OPS-12."
    )
    body: RequiredTemplateText = Field(
        description=f"Comment template, 1 to {MAX_TEMPLATE_LENGTH} characters, not blank."
    )


JIRA_OPERATIONS = ("create", "transition", "comment")
LINEAR_OPERATIONS = ("create", "update")


def _operation_tag(value: Any) -> str | None:
    """The operation of an action config; absent (the seed's configs) means create."""
    if isinstance(value, dict):
        operation = value.get("operation")
    else:  # a model, or a value that is no object (the create model says so)
        operation = getattr(value, "operation", None)
    return "create" if operation is None else operation if isinstance(operation, str) else None


JiraConfigs = Annotated[
    Annotated[JiraConfig, Tag("create")]
    | Annotated[JiraTransitionConfig, Tag("transition")]
    | Annotated[JiraCommentConfig, Tag("comment")],
    Discriminator(_operation_tag),
]


class LinearConfig(_Schema):
    """Create a Linear issue (GraphQL issueCreate). Without ``operation``, a config creates."""

    operation: Literal["create"] | None = Field(
        default=None, description="'create' (or absent): open an issue."
    )
    team_id: LinearId = Field(description="Linear team id (UUID).")
    title: RequiredTemplateText = Field(
        description=f"Template, 1 to {MAX_TEMPLATE_LENGTH} characters, not blank."
    )
    description: TemplateText = Field(
        description=f"Template, at most {MAX_TEMPLATE_LENGTH} characters."
    )
    priority: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=4,
        description="0 no priority, 1 urgent, 2 high, 3 medium, 4 low.",
    )
    label_ids: (
        Annotated[
            list[LinearId],
            Field(max_length=MAX_LABELS),
            AfterValidator(_unique_items),
        ]
        | None
    ) = Field(default=None, description=f"At most {MAX_LABELS} distinct label ids (UUIDs).")


class LinearUpdateConfig(_Schema):
    """Move an existing Linear issue to another workflow state (GraphQL issueUpdate)."""

    operation: Literal["update"] = Field(description="'update': change the issue's state.")
    issue_id: RequiredTemplateText = Field(
        description=(
            "Template giving the issue's id or identifier (such as ENG-12), usually an "
            "earlier run's result: {{ incident.previous['<workflow>']['<node>'].result.id }}."
        )
    )
    state: ShortText = Field(
        description=(
            "The workflow state to move to: its name (case-insensitive, such as 'Done'), "
            "or a state type (completed, canceled, started, unstarted, backlog) for the "
            "team's first state of that type."
        )
    )


LinearConfigs = Annotated[
    Annotated[LinearConfig, Tag("create")] | Annotated[LinearUpdateConfig, Tag("update")],
    Discriminator(_operation_tag),
]


class WebhookAction(_Schema):
    """Call a webhook."""

    action_type: Literal[ActionType.WEBHOOK]
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    config: WebhookConfig
    retry: RetryConfig


class JiraAction(_Schema):
    """Create, transition or comment on a Jira issue."""

    action_type: Literal[ActionType.JIRA]
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    config: JiraConfigs
    retry: RetryConfig


class LinearAction(_Schema):
    """Create a Linear issue or move one to another state."""

    action_type: Literal[ActionType.LINEAR]
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    config: LinearConfigs
    retry: RetryConfig


ActionData = Annotated[
    WebhookAction | JiraAction | LinearAction,
    Field(discriminator="action_type"),
]


class ConditionData(_Schema):
    """Branch on one incident field: the 'true' edge if it equals value."""

    field: ConditionField = Field(description="priority, status, service, team or metadata.<key>.")
    operator: Literal["="] = Field(description="Only equality.")
    value: CheckedConditionValue = Field(
        description=(
            f"1 to {MAX_CONDITION_VALUE_LENGTH} characters; a P1 to P5 priority or "
            "an incident status when the field is priority or status."
        )
    )
    name: DisplayName = Field(description=_NAME_DESCRIPTION)


class DelayData(_Schema):
    """Wait before continuing; the run is parked, not sleeping."""

    duration_minutes: int = Field(
        strict=True,
        ge=0,
        le=MAX_DELAY_MINUTES,
        description=f"Whole minutes, 0 to {MAX_DELAY_MINUTES} (7 days).",
    )
    name: DisplayName = Field(description=_NAME_DESCRIPTION)


class TriggerNode(_Schema):
    """The node the workflow starts from (exactly one)."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.TRIGGER]
    position: Position
    data: TriggerData


class ActionNode(_Schema):
    """A step that calls a webhook or creates an issue."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.ACTION]
    position: Position
    data: ActionData


class ConditionNode(_Schema):
    """A step that branches along its 'true' or 'false' edge."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.CONDITION]
    position: Position
    data: ConditionData


class DelayNode(_Schema):
    """A step that waits."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.DELAY]
    position: Position
    data: DelayData


WorkflowNode = Annotated[
    TriggerNode | ActionNode | ConditionNode | DelayNode,
    Field(discriminator="type"),
]


class WorkflowEdge(_Schema):
    """A connection from the source node to the target node."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    source: Identifier = Field(description="Id of the node the edge leaves.")
    target: Identifier = Field(description="Id of the node the edge enters.")
    source_handle: Literal["true", "false"] | None = Field(
        default=None,
        description=(
            "Required on edges leaving a condition node (the branch taken), absent on all others."
        ),
    )


class TriggerCondition(_Schema):
    """Field equality; all of a trigger's conditions must match."""

    field: ConditionField = Field(description="priority, status, service, team or metadata.<key>.")
    value: CheckedConditionValue = Field(
        description=(
            f"1 to {MAX_CONDITION_VALUE_LENGTH} characters; a P1 to P5 priority or "
            "an incident status when the field is priority or status."
        )
    )


class StateTransition(_Schema):
    """The status change a state_changed trigger fires on."""

    from_: IncidentStatus | None = Field(
        default=None, alias="from", description="Any previous status when absent."
    )
    to: IncidentStatus


class TriggerConfig(_Schema):
    """When the workflow starts."""

    type: TriggerType
    conditions: list[TriggerCondition] = Field(
        max_length=MAX_CONDITIONS,
        description=(f"At most {MAX_CONDITIONS} conditions on distinct fields; all must match."),
    )
    age_threshold_minutes: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_AGE_THRESHOLD_MINUTES,
        description=(
            f"Required for 'age' triggers only: 1 to {MAX_AGE_THRESHOLD_MINUTES} minutes (30 days)."
        ),
    )
    state_transition: StateTransition | None = Field(
        default=None,
        description="Required for 'state_changed' triggers only; 'from' differs from 'to'.",
    )
    workflow_ids: list[Identifier] | None = Field(
        default=None,
        max_length=MAX_FAILED_WORKFLOWS,
        description=(
            "'workflow_failed' triggers only: fire only for failed runs of these workflows "
            "(ids); absent: any workflow in scope."
        ),
    )
    min_failures: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_MIN_FAILURES,
        description=(
            "'workflow_failed' triggers only: fire only once the failed workflow has failed "
            f"at least this many times in 24 hours (1 to {MAX_MIN_FAILURES})."
        ),
    )


class WorkflowSettings(_Schema):
    """Run settings."""

    timeout: Literal["1min", "5min", "15min"] = Field(
        description="Working time allowed per run, delays excluded."
    )
    enabled: bool = Field(strict=True)
    # Absent (the seed's JSON) means every matching event starts a run.
    once_per_incident: bool | None = Field(
        default=None,
        strict=True,
        description="At most one run per incident, ever (event and age triggers).",
    )
    once_per_incident_minutes: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_ONCE_PER_MINUTES,
        description=(
            f"At most one run per incident within this many minutes, 1 to "
            f"{MAX_ONCE_PER_MINUTES} (30 days); not with oncePerIncident."
        ),
    )

    def run_limit_minutes(self) -> float | None:
        """None: no limit; infinity: once per incident; else the window in minutes."""
        if self.once_per_incident:
            return float("inf")
        if self.once_per_incident_minutes is not None:
            return float(self.once_per_incident_minutes)
        return None


class WorkflowDefinition(_Schema):
    """A workflow's graph, trigger and settings, as stored in Workflow.definition."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    description: Annotated[
        str,
        Field(strict=True, min_length=1, max_length=MAX_DESCRIPTION_LENGTH),
        AfterValidator(_not_blank),
    ] = Field(description=f"Required, 1 to {MAX_DESCRIPTION_LENGTH} characters, not blank.")
    version: int = Field(strict=True, ge=1, le=MAX_VERSION, description="1 or more.")
    nodes: list[WorkflowNode] = Field(
        min_length=1,
        max_length=MAX_NODES,
        description=f"1 to {MAX_NODES} nodes, exactly one of type 'trigger'.",
    )
    edges: list[WorkflowEdge] = Field(
        max_length=MAX_EDGES, description=f"At most {MAX_EDGES} edges."
    )
    trigger: TriggerConfig
    settings: WorkflowSettings

    @model_validator(mode="before")
    @classmethod
    def _bound_input(cls, data: Any) -> Any:
        if isinstance(data, dict):
            problems = _input_problems(data)
            if problems:
                raise ValidationError.from_exception_data(cls.__name__, problems)
        return data

    @model_validator(mode="after")
    def _check_whole_definition(self, info: ValidationInfo) -> Self:
        context = info.context if isinstance(info.context, Mapping) else {}
        secret_names = context.get("secret_names")
        problems = _definition_problems(
            self, frozenset(secret_names) if secret_names is not None else None
        )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON-ready form, as stored in the database."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- Run-time types (not part of a definition) ---------------------------


class IncidentContext(_Schema):
    id: str
    title: str
    description: str
    priority: IncidentPriority
    status: IncidentStatus
    service: str | None = None
    created_at: AwareDatetime
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    escalation_level: int = Field(ge=0)
    team_name: str
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class AssigneeContext(_Schema):
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None = None


class TeamContext(_Schema):
    id: str
    name: str
    slack_channel: str | None = None


class WorkflowContext(_Schema):
    id: str
    name: str
    execution_id: str


class FailureContext(_Schema):
    """What a ``workflow_failed`` workflow's templates see as ``failure``: the failed run."""

    run_id: str
    workflow_id: str
    workflow_name: str
    node_id: str | None = None
    node_name: str | None = None
    error: str = Field(description="The run's error, scrubbed of its workflow's secrets.")
    failures_in_a_day: int = Field(
        ge=1, description="Failed runs of the workflow in the last 24 hours, this one included."
    )
    failed_at: AwareDatetime


class TemplateContext(_Schema):
    """What templates see, besides ``steps`` (earlier results) and ``secrets``."""

    incident: IncidentContext
    assignee: AssigneeContext | None = None
    team: TeamContext
    workflow: WorkflowContext


class NodeResult(_Schema):
    node_id: str
    status: NodeStatus
    result: JsonValue = Field(
        default=None, description="What the node produced, e.g. the created issue."
    )
    error: str | None = None
    started_at: AwareDatetime
    completed_at: AwareDatetime


class WorkflowExecutionResult(_Schema):
    execution_id: str
    status: Literal[ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED]
    completed_nodes: list[NodeResult]
    error: str | None = None
    duration: int = Field(ge=0, description="Duration of the run in milliseconds.")


def _field_aliases(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(info.alias or name for name, info in model.model_fields.items())


#: ``incident.previous``: results of earlier runs on the incident (see engine/context.py).
PREVIOUS_FIELD = "previous"

_CONTEXT_FIELDS: Mapping[str, frozenset[str]] = {
    "incident": _field_aliases(IncidentContext) | {PREVIOUS_FIELD},
    "assignee": _field_aliases(AssigneeContext),
    "team": _field_aliases(TeamContext),
    "workflow": _field_aliases(WorkflowContext),
}
_FAILURE_FIELDS = _field_aliases(FailureContext)


# --- Public API ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DefinitionError:
    """One problem in a definition: where (``nodes[2].data.config.url``) and what."""

    loc: str
    message: str
    code: str


def parse_definition(
    data: object, *, secret_names: Collection[str] | None = None
) -> WorkflowDefinition:
    """Validate a JSON-like value as a workflow definition.

    ``secret_names``, when given, are the workflow's secrets: every secret a
    template uses, and those Jira and Linear actions need, must be among them.
    Raises ``pydantic.ValidationError`` and nothing else for bad input.
    """
    context = None if secret_names is None else {"secret_names": frozenset(secret_names)}
    return WorkflowDefinition.model_validate(data, context=context)


def parse_definition_json(
    text: str | bytes, *, secret_names: Collection[str] | None = None
) -> WorkflowDefinition:
    """Like parse_definition, from JSON text. Raises only ValidationError."""
    if not isinstance(text, str | bytes | bytearray):
        raise _validation_error(
            [_detail((), "json_type", "Expected JSON text.", type(text).__name__)]
        )
    if len(text) > MAX_DEFINITION_JSON_LENGTH:
        raise _validation_error(
            [
                _detail(
                    (),
                    "too_large",
                    f"The definition is too large ({len(text):,} characters); "
                    f"the limit is {MAX_DEFINITION_JSON_LENGTH:,}.",
                    len(text),
                )
            ]
        )
    context = None if secret_names is None else {"secret_names": frozenset(secret_names)}
    return WorkflowDefinition.model_validate_json(text, context=context)


def definition_errors(exc: ValidationError) -> list[DefinitionError]:
    """Turn a ValidationError from parse_definition into plain-language errors."""
    result: list[DefinitionError] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False, include_input=True):
        loc = _drop_union_tags(tuple(error["loc"]))
        code = error["type"]
        if code in ("union_tag_invalid", "union_tag_not_found") and loc:
            loc = (*loc, _tag_field(loc))
        message = _plain_message(error, loc)
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


def definition_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a definition."""
    return copy.deepcopy(_json_schema())


def referenced_secrets(defn: WorkflowDefinition) -> dict[str, list[str]]:
    """Secret name -> ids of the nodes that use it, sorted by name.

    Includes the secrets Jira and Linear actions use implicitly.
    """
    users: dict[str, list[str]] = {}
    for node in defn.nodes:
        if not isinstance(node, ActionNode):
            continue
        names: list[str] = list(IMPLICIT_SECRETS.get(node.data.action_type, ()))
        for _loc, source, kind in _text_fields(node.data):
            if kind == "credential":
                match = _SECRET_REFERENCE_RE.fullmatch(source)
                if match:
                    names.append(match.group(1))
                continue
            try:
                references = template_references(source)
            except TemplateSyntaxProblem:
                continue
            names.extend(ref[1] for ref in references if len(ref) > 1 and ref[0] == "secrets")
        for name in names:
            node_ids = users.setdefault(name, [])
            if node.id not in node_ids:
                node_ids.append(node.id)
    return dict(sorted(users.items()))


def reads_previous(defn: WorkflowDefinition) -> bool:
    """Whether any action template reads ``incident.previous`` (earlier runs' results)."""
    for node in defn.nodes:
        if not isinstance(node, ActionNode):
            continue
        for _loc, source, kind in _text_fields(node.data):
            if kind == "credential":
                continue
            try:
                references = template_references(source)
            except TemplateSyntaxProblem:
                continue
            if any(ref[:2] == ("incident", PREVIOUS_FIELD) for ref in references):
                return True
    return False


def topological_order(defn: WorkflowDefinition) -> list[str]:
    """Node ids so that every edge points forward; ties keep node order."""
    order = _topological([node.id for node in defn.nodes], _edge_pairs(defn))
    if order is None:
        raise ValueError("the definition has a cycle")
    return order


def ancestors(defn: WorkflowDefinition) -> dict[str, frozenset[str]]:
    """Node id -> ids of every node with a path to it."""
    preds: dict[str, list[str]] = {node.id: [] for node in defn.nodes}
    for _j, source, target in _edge_pairs(defn):
        preds[target].append(source)
    result: dict[str, frozenset[str]] = {}
    for node_id in topological_order(defn):
        found: set[str] = set()
        for pred in preds[node_id]:
            found.add(pred)
            found |= result[pred]
        result[node_id] = frozenset(found)
    return result


def always_runs_before(defn: WorkflowDefinition) -> dict[str, frozenset[str]]:
    """Node id -> ids of the nodes on every path from the trigger to it.

    These (the node's dominators) are the only steps whose results a
    template can rely on: a node reached by two branches may run after
    either, so neither branch's steps are guaranteed.
    """
    trigger = next((node.id for node in defn.nodes if isinstance(node, TriggerNode)), None)
    if trigger is None:
        raise ValueError("the definition has no trigger node")
    dominators = _dominators(trigger, [node.id for node in defn.nodes], _edge_pairs(defn))
    if dominators is None:
        raise ValueError("the definition has a cycle")
    return {node_id: found - {node_id} for node_id, found in dominators.items()}


# --- Input bounds --------------------------------------------------------


def _detail(loc: tuple[str | int, ...], code: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=_problem(code, message), loc=loc, input=value)


def _validation_error(details: list[InitErrorDetails]) -> ValidationError:
    return ValidationError.from_exception_data(WorkflowDefinition.__name__, details)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Remove the NUL character (\\u0000); it cannot be stored."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "The text contains invalid Unicode (an unpaired surrogate); retype it."
    return None


def _input_problems(data: dict[Any, Any]) -> list[InitErrorDetails]:
    """Bound the size, depth and text of the raw input before validating it."""
    problems: list[InitErrorDetails] = []
    stack: list[tuple[object, _Loc, int]] = [(data, (), 1)]
    items = 1
    text = 0
    while stack and len(problems) < 20:
        value, loc, depth = stack.pop()
        if isinstance(value, str):
            text += len(value)
            problem = _text_problem(value)
            if problem:
                problems.append(_detail(loc, "invalid_text", problem, _clip(value)))
        elif isinstance(value, dict | list | tuple):
            if depth > MAX_DEFINITION_DEPTH:
                problems.append(
                    _detail(
                        loc,
                        "too_deep",
                        f"Values are nested more than {MAX_DEFINITION_DEPTH} levels "
                        "deep; a definition is never nested that deeply.",
                        type(value).__name__,
                    )
                )
                continue
            children = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in children:
                items += 1
                if items > MAX_DEFINITION_ITEMS:
                    return [
                        _detail(
                            (),
                            "too_large",
                            f"The definition has more than {MAX_DEFINITION_ITEMS:,} "
                            "values; split the workflow.",
                            items,
                        )
                    ]
                if isinstance(key, str):
                    text += len(key)
                    problem = _text_problem(key)
                    if problem:
                        problems.append(_detail((*loc, key), "invalid_text", problem, _clip(key)))
                key_loc = key if isinstance(key, str | int) else f"<{type(key).__name__}>"
                stack.append((item, (*loc, key_loc), depth + 1))
        if text > MAX_DEFINITION_TEXT:
            return [
                _detail(
                    (),
                    "too_large",
                    f"The definition holds more than {MAX_DEFINITION_TEXT:,} "
                    "characters of text; shorten templates or split the workflow.",
                    text,
                )
            ]
    return problems


# --- Whole-definition rules ----------------------------------------------

_FieldKind = Literal["template", "issue_template", "credential"]


class _Problems:
    def __init__(self) -> None:
        self.details: list[InitErrorDetails] = []
        self._seen: set[tuple[_Loc, str]] = set()

    def add(self, loc: _Loc, code: str, message: str, value: Any = None) -> None:
        if (loc, message) not in self._seen:
            self._seen.add((loc, message))
            self.details.append(_detail(loc, code, message, value))


def _text_fields(
    data: WebhookAction | JiraAction | LinearAction,
) -> Iterator[tuple[_Loc, str, _FieldKind]]:
    """Every template and credential field of an action, with its location
    relative to the node's ``data`` (wire names)."""
    if isinstance(data, WebhookAction):
        config = data.config
        yield ("config", "url"), config.url, "template"
        for name, value in config.headers.items():
            yield ("config", "headers", name), value, "template"
        yield ("config", "body"), config.body, "template"
        auth = config.auth
        if isinstance(auth, BearerAuth):
            yield ("config", "auth", "token"), auth.token, "credential"
        elif isinstance(auth, BasicAuth):
            yield ("config", "auth", "username"), auth.username, "template"
            yield ("config", "auth", "password"), auth.password, "credential"
        elif isinstance(auth, OAuth2Auth):
            yield ("config", "auth", "clientId"), auth.client_id, "template"
            yield ("config", "auth", "clientSecret"), auth.client_secret, "credential"
        elif isinstance(auth, CustomHeaderAuth):
            for name, value in auth.custom_headers.items():
                yield ("config", "auth", "customHeaders", name), value, "credential"
    elif isinstance(data, JiraAction):
        jira = data.config
        if isinstance(jira, JiraConfig):
            yield ("config", "summary"), jira.summary, "issue_template"
            yield ("config", "description"), jira.description, "issue_template"
        else:
            yield ("config", "issueKey"), jira.issue_key, "issue_template"
            if isinstance(jira, JiraCommentConfig):
                yield ("config", "body"), jira.body, "issue_template"
    else:
        linear = data.config
        if isinstance(linear, LinearConfig):
            yield ("config", "title"), linear.title, "issue_template"
            yield ("config", "description"), linear.description, "issue_template"
        else:
            yield ("config", "issueId"), linear.issue_id, "issue_template"


def _definition_problems(
    defn: WorkflowDefinition, secret_names: frozenset[str] | None
) -> list[InitErrorDetails]:
    problems = _Problems()
    nodes = defn.nodes

    index_of: dict[str, int] = {}
    duplicate_nodes: set[int] = set()
    for i, node in enumerate(nodes):
        if node.id in index_of:
            duplicate_nodes.add(i)
            problems.add(
                ("nodes", i, "id"),
                "duplicate_id",
                f"Node id '{node.id}' is already used by nodes[{index_of[node.id]}]; "
                "node ids must be unique.",
                node.id,
            )
        else:
            index_of[node.id] = i

    triggers = [i for i, node in enumerate(nodes) if isinstance(node, TriggerNode)]
    if not triggers:
        problems.add(
            ("nodes",),
            "missing_trigger",
            "A workflow needs exactly one trigger node; add one.",
        )
    for i in triggers[1:]:
        problems.add(
            ("nodes", i, "type"),
            "extra_trigger",
            f"A workflow has exactly one trigger node and nodes[{triggers[0]}] is "
            "already the trigger; change this node's type or delete it.",
            "trigger",
        )
    trigger_id = nodes[triggers[0]].id if triggers else None

    pairs = _check_edges(defn, index_of, problems)
    cyclic = _check_cycles(trigger_id, list(index_of), pairs, problems)

    reached = _reachable(trigger_id, pairs) if trigger_id is not None else None
    if reached is not None:
        for i, node in enumerate(nodes):
            if (
                node.id not in reached
                and i not in duplicate_nodes
                and not isinstance(node, TriggerNode)
            ):
                problems.add(
                    ("nodes", i),
                    "unreachable",
                    f"Node '{node.id}' cannot be reached from the trigger; connect "
                    "it with an edge or delete it.",
                    node.id,
                )

    _check_trigger(defn.trigger, problems)
    _check_run_limit(defn.settings, problems)

    runs_before: dict[str, frozenset[str]] | None = None
    if trigger_id is not None and len(triggers) == 1 and not cyclic and not duplicate_nodes:
        runs_before = _dominators(trigger_id, list(index_of), pairs)
    _check_actions(defn, index_of, runs_before, secret_names, problems)
    return problems.details


def _check_edges(
    defn: WorkflowDefinition, index_of: Mapping[str, int], problems: _Problems
) -> list[tuple[int, str, str]]:
    """Check edges one by one; return (index, source, target) of the sound ones."""
    nodes = defn.nodes
    sound: list[tuple[int, str, str]] = []
    edge_index: dict[str, int] = {}
    branch_edge: dict[tuple[str, str], int] = {}
    connection: dict[tuple[str, str, str | None], int] = {}
    for j, edge in enumerate(defn.edges):
        if edge.id in edge_index:
            problems.add(
                ("edges", j, "id"),
                "duplicate_id",
                f"Edge id '{edge.id}' is already used by edges[{edge_index[edge.id]}]; "
                "edge ids must be unique.",
                edge.id,
            )
        else:
            edge_index[edge.id] = j
        ok = True
        for end in ("source", "target"):
            node_id = getattr(edge, end)
            if node_id not in index_of:
                ok = False
                problems.add(
                    ("edges", j, end),
                    "unknown_node",
                    f"No node has id '{node_id}'; connect the edge to an existing node.",
                    node_id,
                )
        if edge.source == edge.target:
            ok = False
            problems.add(
                ("edges", j, "target"),
                "self_loop",
                "An edge cannot connect a node to itself.",
                edge.target,
            )
        elif edge.target in index_of and isinstance(nodes[index_of[edge.target]], TriggerNode):
            ok = False
            problems.add(
                ("edges", j, "target"),
                "edge_into_trigger",
                "The trigger node starts the workflow; no edge may lead into it.",
                edge.target,
            )
        if edge.source in index_of:
            source = nodes[index_of[edge.source]]
            handle = edge.source_handle
            if isinstance(source, ConditionNode):
                if handle is None:
                    problems.add(
                        ("edges", j, "sourceHandle"),
                        "missing_handle",
                        f"Edges leaving condition '{source.id}' need sourceHandle "
                        "'true' or 'false' (the branch they follow).",
                    )
                elif (source.id, handle) in branch_edge:
                    problems.add(
                        ("edges", j, "sourceHandle"),
                        "duplicate_handle",
                        f"Condition '{source.id}' already has a '{handle}' edge "
                        f"(edges[{branch_edge[(source.id, handle)]}]); each branch "
                        "has one edge.",
                        handle,
                    )
                else:
                    branch_edge[(source.id, handle)] = j
            elif handle is not None:
                problems.add(
                    ("edges", j, "sourceHandle"),
                    "unexpected_handle",
                    f"Only edges leaving a condition node have a sourceHandle; "
                    f"'{source.id}' is a {source.type} node, so remove it.",
                    handle,
                )
        if ok:
            key = (edge.source, edge.target, edge.source_handle)
            if key in connection:
                problems.add(
                    ("edges", j, "target"),
                    "duplicate_edge",
                    f"edges[{connection[key]}] already connects '{edge.source}' to "
                    f"'{edge.target}'; delete this edge.",
                    edge.target,
                )
            else:
                connection[key] = j
                sound.append((j, edge.source, edge.target))
    return sound


def _check_cycles(
    trigger_id: str | None,
    node_ids: list[str],
    edges: list[tuple[int, str, str]],
    problems: _Problems,
) -> bool:
    """Report every edge that closes a cycle (iterative depth-first search)."""
    successors: dict[str, list[tuple[int, str]]] = {node_id: [] for node_id in node_ids}
    for j, source, target in edges:
        successors[source].append((j, target))
    finished: set[str] = set()
    cyclic = False
    starts = ([trigger_id] if trigger_id is not None else []) + node_ids
    for start in starts:
        if start in finished:
            continue
        path = [start]
        on_path = {start: 0}
        pending = [iter(successors[start])]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                done = path.pop()
                del on_path[done]
                finished.add(done)
                pending.pop()
                continue
            j, target = step
            if target in on_path:
                cyclic = True
                loop = [*path[on_path[target] :], target]
                problems.add(
                    ("edges", j, "target"),
                    "cycle",
                    f"This edge closes a cycle ({' -> '.join(loop)}); a workflow "
                    "cannot loop back to an earlier step.",
                    target,
                )
            elif target not in finished:
                on_path[target] = len(path)
                path.append(target)
                pending.append(iter(successors[target]))
    return cyclic


def _reachable(start: str, edges: list[tuple[int, str, str]]) -> set[str]:
    successors: dict[str, list[str]] = {}
    for _j, source, target in edges:
        successors.setdefault(source, []).append(target)
    seen = {start}
    queue = deque([start])
    while queue:
        for target in successors.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _edge_pairs(defn: WorkflowDefinition) -> list[tuple[int, str, str]]:
    return [(j, edge.source, edge.target) for j, edge in enumerate(defn.edges)]


def _topological(node_ids: list[str], edges: Sequence[tuple[int, str, str]]) -> list[str] | None:
    """Kahn's algorithm; None when there is a cycle."""
    successors: dict[str, list[str]] = {node_id: [] for node_id in node_ids}
    indegree = dict.fromkeys(node_ids, 0)
    for _j, source, target in edges:
        successors[source].append(target)
        indegree[target] += 1
    ready = deque(node_id for node_id in node_ids if indegree[node_id] == 0)
    order: list[str] = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for target in successors[node_id]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return order if len(order) == len(node_ids) else None


def _dominators(
    trigger_id: str, node_ids: list[str], edges: Sequence[tuple[int, str, str]]
) -> dict[str, frozenset[str]] | None:
    """Node -> nodes on every path from the trigger to it (itself included),
    for the nodes the trigger reaches. None when there is a cycle."""
    reached = _reachable(trigger_id, list(edges))
    live = [(j, s, t) for j, s, t in edges if s in reached and t in reached]
    order = _topological([node_id for node_id in node_ids if node_id in reached], live)
    if order is None:
        return None
    predecessors: dict[str, list[str]] = {}
    for _j, source, target in live:
        predecessors.setdefault(target, []).append(source)
    result: dict[str, frozenset[str]] = {}
    for node_id in order:
        preds = predecessors.get(node_id, [])
        if node_id == trigger_id or not preds:
            result[node_id] = frozenset({node_id})
            continue
        common = result[preds[0]]
        for pred in preds[1:]:
            common &= result[pred]
        result[node_id] = common | {node_id}
    return result


def _check_run_limit(settings: WorkflowSettings, problems: _Problems) -> None:
    if settings.once_per_incident and settings.once_per_incident_minutes is not None:
        problems.add(
            ("settings", "oncePerIncidentMinutes"),
            "conflicting_settings",
            "Choose one limit: oncePerIncident (one run per incident, ever) or "
            "oncePerIncidentMinutes (one run per incident per N minutes), not both.",
            settings.once_per_incident_minutes,
        )


def _check_trigger(trigger: TriggerConfig, problems: _Problems) -> None:
    kind = trigger.type
    if kind == TriggerType.AGE:
        if trigger.age_threshold_minutes is None:
            problems.add(
                ("trigger", "ageThresholdMinutes"),
                "missing_setting",
                f"An 'age' trigger needs ageThresholdMinutes (1 to "
                f"{MAX_AGE_THRESHOLD_MINUTES} minutes).",
            )
    elif trigger.age_threshold_minutes is not None:
        problems.add(
            ("trigger", "ageThresholdMinutes"),
            "not_applicable",
            f"Only 'age' triggers use ageThresholdMinutes; remove it from this "
            f"'{kind.value}' trigger.",
            trigger.age_threshold_minutes,
        )
    for key, value in (
        ("workflowIds", trigger.workflow_ids),
        ("minFailures", trigger.min_failures),
    ):
        if value is not None and kind != TriggerType.WORKFLOW_FAILED:
            problems.add(
                ("trigger", key),
                "not_applicable",
                f"Only 'workflow_failed' triggers use {key}; remove it from this "
                f"'{kind.value}' trigger.",
            )
    transition = trigger.state_transition
    if kind == TriggerType.STATE_CHANGED:
        if transition is None:
            problems.add(
                ("trigger", "stateTransition"),
                "missing_setting",
                "A 'state_changed' trigger needs stateTransition with 'to' (and "
                "optionally 'from').",
            )
        elif transition.from_ == transition.to:
            problems.add(
                ("trigger", "stateTransition", "to"),
                "same_state",
                f"'from' and 'to' are both {transition.to.value}; a state change "
                "needs two different states.",
                transition.to.value,
            )
    elif transition is not None:
        problems.add(
            ("trigger", "stateTransition"),
            "not_applicable",
            f"Only 'state_changed' triggers use stateTransition; remove it from "
            f"this '{kind.value}' trigger.",
        )
    first_use: dict[str, int] = {}
    for i, condition in enumerate(trigger.conditions):
        if condition.field in first_use:
            problems.add(
                ("trigger", "conditions", i, "field"),
                "duplicate_condition",
                f"conditions[{first_use[condition.field]}] already checks "
                f"'{condition.field}'; all conditions must match, so keep one.",
                condition.field,
            )
        else:
            first_use[condition.field] = i


def _check_actions(
    defn: WorkflowDefinition,
    index_of: Mapping[str, int],
    runs_before: Mapping[str, frozenset[str]] | None,
    secret_names: frozenset[str] | None,
    problems: _Problems,
) -> None:
    for i, node in enumerate(defn.nodes):
        if not isinstance(node, ActionNode):
            continue
        data = node.data
        base: _Loc = ("nodes", i, "data")
        if secret_names is not None:
            missing = [
                name
                for name in IMPLICIT_SECRETS.get(data.action_type, ())
                if name not in secret_names
            ]
            if missing:
                problems.add(
                    base,
                    "missing_secret",
                    f"{data.action_type.value.capitalize()} actions need the "
                    f"workflow secret(s) {', '.join(missing)}; add them to the "
                    "workflow's secrets.",
                )
        if isinstance(data, WebhookAction) and isinstance(data.config.auth, CustomHeaderAuth):
            plain = {name.lower() for name in data.config.headers}
            for name in data.config.auth.custom_headers:
                if name.lower() in plain:
                    problems.add(
                        (*base, "config", "auth", "customHeaders", name),
                        "duplicate_header",
                        f"The '{name}' header is also set in headers; set it in one place.",
                        name,
                    )
        for rel, source, kind in _text_fields(data):
            loc = (*base, *rel)
            if kind == "credential":
                match = _SECRET_REFERENCE_RE.fullmatch(source)
                if match and secret_names is not None:
                    _check_secret_name(match.group(1), secret_names, loc, problems)
                continue
            try:
                references = template_references(source)
            except TemplateSyntaxProblem as exc:
                problems.add(loc, "template_syntax", exc.message, _clip(source))
                continue
            for reference in references:
                _check_reference(
                    reference,
                    node.id,
                    kind,
                    defn,
                    index_of,
                    runs_before,
                    secret_names,
                    loc,
                    problems,
                )


def _check_secret_name(
    name: str, secret_names: frozenset[str], loc: _Loc, problems: _Problems
) -> None:
    if name not in secret_names:
        problems.add(
            loc,
            "unknown_secret",
            f"This workflow has no secret named '{name}'; add it to the workflow's "
            "secrets or correct the name.",
            name,
        )


def _check_reference(
    reference: tuple[str, ...],
    node_id: str,
    kind: _FieldKind,
    defn: WorkflowDefinition,
    index_of: Mapping[str, int],
    runs_before: Mapping[str, frozenset[str]] | None,
    secret_names: frozenset[str] | None,
    loc: _Loc,
    problems: _Problems,
) -> None:
    root = reference[0]
    if root in _CONTEXT_FIELDS:
        fields = _CONTEXT_FIELDS[root]
        if len(reference) > 1 and reference[1] not in fields:
            problems.add(
                loc,
                "unknown_variable",
                f"'{root}' has no field '{_clip(reference[1])}'; available: "
                f"{', '.join(sorted(fields))}.",
                ".".join(reference[:2]),
            )
    elif root == "steps":
        if len(reference) == 1:
            problems.add(
                loc,
                "unknown_variable",
                "Refer to an earlier step by its node id, as in {{ steps.<nodeId>.result }}.",
                root,
            )
            return
        step = reference[1]
        if step == node_id:
            message = "A step cannot use its own result."
        elif step not in index_of:
            message = f"No node has id '{_clip(step)}', so steps.{_clip(step)} does not exist."
            if any(other.startswith(f"{step}-") for other in index_of):
                # `steps.my-node` reads as `steps.my - node` in Jinja.
                message += ' Write ids that contain "-" as steps["node-id"].'

        elif not isinstance(defn.nodes[index_of[step]], ActionNode):
            message = (
                f"'{step}' is a {defn.nodes[index_of[step]].type} node; only action "
                "nodes have results."
            )
        elif (
            runs_before is not None and node_id in runs_before and step not in runs_before[node_id]
        ):
            message = (
                f"Step '{step}' does not run before this node on every path from "
                "the trigger, so its result may be missing; use a step that always "
                "runs earlier."
            )
        else:
            return
        problems.add(loc, "unknown_step", message, step)
    elif root == "failure":
        if defn.trigger.type != TriggerType.WORKFLOW_FAILED:
            problems.add(
                loc,
                "unknown_variable",
                "Only workflows with a 'workflow_failed' trigger have 'failure'.",
                root,
            )
        elif len(reference) > 1 and reference[1] not in _FAILURE_FIELDS:
            problems.add(
                loc,
                "unknown_variable",
                f"'failure' has no field '{_clip(reference[1])}'; available: "
                f"{', '.join(sorted(_FAILURE_FIELDS))}.",
                ".".join(reference[:2]),
            )
    elif root == "secrets":
        if kind == "issue_template":
            problems.add(
                loc,
                "secret_not_allowed",
                "Secrets cannot be used here: the text is visible to everyone who "
                "can read the issue.",
                root,
            )
        elif len(reference) == 1:
            problems.add(
                loc,
                "unknown_secret",
                "Refer to a secret by name, as in {{ secrets.<name> }}.",
                root,
            )
        elif not _SECRET_NAME_RE.fullmatch(reference[1]):
            problems.add(
                loc,
                "unknown_secret",
                f"'{_clip(reference[1])}' is not a valid secret name; names are "
                "lowercase letters, digits and '_', starting with a letter.",
                reference[1],
            )
        elif secret_names is not None:
            _check_secret_name(reference[1], secret_names, loc, problems)
    else:
        problems.add(
            loc,
            "unknown_variable",
            f"Unknown variable '{_clip(root)}'; templates can use {', '.join(TEMPLATE_ROOTS)}.",
            root,
        )


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


def _plain_message(error: Any, loc: tuple[str | int, ...]) -> str:
    code: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if code == "missing":
        return "This field is required."
    if code == "extra_forbidden":
        return f"Unknown field '{_clip(str(loc[-1]))}'; remove it."
    if code == "union_tag_invalid" and loc and loc[-1] == "operation":
        choices = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"'{_clip(str(ctx.get('tag')))}' is not a valid operation; use one of: {choices}."
    if code == "union_tag_invalid":
        what, choices = _tag_choices(loc)
        return f"'{_clip(str(ctx.get('tag')))}' is not a valid {what}; use one of: {choices}."
    if code == "union_tag_not_found" and loc and loc[-1] == "operation":
        return "The operation must be text, such as 'create'."
    if code == "union_tag_not_found":
        _what, choices = _tag_choices(loc)
        return f"This field is required; use one of: {choices}."
    if code in ("model_type", "model_attributes_type", "dict_type"):
        if not loc:
            return "The definition must be a JSON object."
        return "Expected an object."
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


@lru_cache(maxsize=1)
def _json_schema() -> dict[str, Any]:
    schema = WorkflowDefinition.model_json_schema(by_alias=True, mode="validation")
    schema.pop("title", None)
    schema.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "IncidentFlow workflow definition",
        "description": (
            "A workflow definition as stored, imported and exported by IncidentFlow. "
            "Besides this schema, a definition must satisfy rules JSON Schema cannot "
            "express: node and edge ids are unique; exactly one node has type "
            "'trigger' and no edge leads into it; every edge connects existing, "
            "distinct nodes; the graph has no cycles; edges leaving a condition node "
            "carry sourceHandle 'true' or 'false' (one edge per handle) and no other "
            "edge has one; every node is reachable from the trigger; an 'age' trigger "
            "sets ageThresholdMinutes and a 'state_changed' trigger sets "
            "stateTransition ('from' differs from 'to'), and no other trigger sets "
            "them; trigger conditions use distinct fields; templates are valid Jinja2 "
            "and only use incident, assignee, team, workflow, steps.<nodeId> of an "
            "action that always runs before the node, and secrets.<name> of an "
            "existing workflow secret."
        ),
        **schema,
    }
