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

import re
from collections.abc import Collection, Mapping
from enum import Enum
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
    MAX_AGE_THRESHOLD_MINUTES,
    MAX_BODY_LENGTH,
    MAX_CONDITION_VALUE_LENGTH,
    MAX_CONDITIONS,
    MAX_COORDINATE,
    MAX_CUSTOM_HEADERS,
    MAX_DEFINITION_JSON_LENGTH,
    MAX_DELAY_MINUTES,
    MAX_DESCRIPTION_LENGTH,
    MAX_EDGES,
    MAX_FAILED_WORKFLOWS,
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADERS,
    MAX_ID_LENGTH,
    MAX_INITIAL_DELAY_MS,
    MAX_LABEL_LENGTH,
    MAX_LABELS,
    MAX_MIN_FAILURES,
    MAX_NAME_LENGTH,
    MAX_NODES,
    MAX_ONCE_PER_MINUTES,
    MAX_RETRY_ATTEMPTS,
    MAX_SHORT_TEXT_LENGTH,
    MAX_TEMPLATE_LENGTH,
    MAX_URL_LENGTH,
    MAX_VERSION,
    MIN_INITIAL_DELAY_MS,
    PROJECT_KEY_PATTERN,
    PROJECT_KEY_RE,
    RESERVED_HEADERS,
    SCHEME_RE,
    SECRET_REFERENCE_PATTERN,
    SECRET_REFERENCE_RE,
    UUID_PATTERN,
    UUID_RE,
)
from app.definition.messages import clip, custom_error, error_detail, validation_error
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.workflows.enums import ActionType, ExecutionStatus, NodeStatus, NodeType, TriggerType

# --- Field types ---------------------------------------------------------


def _not_blank(value: str) -> str:
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


def _unique_headers(value: dict[str, str]) -> dict[str, str]:
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


def _webhook_url(value: str) -> str:
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


def _plain_url(value: str) -> str:
    scheme = SCHEME_RE.match(value)
    if not scheme or re.search(r"[\s{}]", value) or CONTROL_RE.search(value):
        raise custom_error(
            "invalid_url",
            "Enter a plain http:// or https:// URL, without spaces or templates.",
        )
    _check_url_authority(value[scheme.end() :])
    return value


def _project_key(value: str) -> str:
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


def _unique_items(value: list[str]) -> list[str]:
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
        Field(strict=True, max_length=10, json_schema_extra={"pattern": PROJECT_KEY_PATTERN}),
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


# The values of RUN_TIMEOUTS_MS (a test checks the two agree).
RunTimeout = Literal["1min", "5min", "15min"]


class WorkflowSettings(_Schema):
    """Run settings."""

    timeout: RunTimeout = Field(description="Working time allowed per run, delays excluded.")
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
            from app.definition.rules import input_problems  # the rules need these models

            problems = input_problems(data)
            if problems:
                raise ValidationError.from_exception_data(cls.__name__, problems)
        return data

    @model_validator(mode="after")
    def _check_whole_definition(self, info: ValidationInfo) -> Self:
        context = info.context if isinstance(info.context, Mapping) else {}
        secret_names = context.get("secret_names")
        from app.definition.rules import definition_problems  # the rules need these models

        problems = definition_problems(
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

CONTEXT_FIELDS: Mapping[str, frozenset[str]] = {
    "incident": _field_aliases(IncidentContext) | {PREVIOUS_FIELD},
    "assignee": _field_aliases(AssigneeContext),
    "team": _field_aliases(TeamContext),
    "workflow": _field_aliases(WorkflowContext),
}
FAILURE_FIELDS = _field_aliases(FailureContext)


# --- Parsing ---------------------------------------------------------------


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
        raise validation_error(
            [error_detail((), "json_type", "Expected JSON text.", type(text).__name__)]
        )
    if len(text) > MAX_DEFINITION_JSON_LENGTH:
        raise validation_error(
            [
                error_detail(
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
