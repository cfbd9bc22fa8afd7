"""The workflow definition: the JSON stored in ``Workflow.definition``.

These pydantic models are the only description of a definition; their field types
and the ``Schema`` base are in ``fields``. Field names are camelCase on the wire
(React Flow compatible) and snake_case in Python.
Validation happens in two passes, both raising ``pydantic.ValidationError``:

1. field validation (types, bounds, formats, credentials as secret references);
2. whole-definition rules that need the graph: one trigger, edges between
   existing nodes, no cycles, condition handles, reachability, trigger
   settings that fit the trigger type, and templates that parse and name only
   variables that exist when the node runs.

Use ``parse_definition`` / ``parse_definition_json`` (``parsing``) to validate and
``definition_errors`` to turn the exception into ``loc``/``message`` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from app.definition.fields import (
    CheckedConditionValue,
    ConditionField,
    Coordinate,
    DisplayName,
    HeaderName,
    HeaderValue,
    Identifier,
    JiraLabel,
    LinearId,
    PlainHeaderName,
    RequiredTemplateText,
    Schema,
    SecretReference,
    ShortText,
    TemplateText,
    check_not_blank,
    check_plain_url,
    check_project_key,
    check_unique_headers,
    check_unique_items,
    check_webhook_url,
)
from app.definition.limits import (
    MAX_AGE_THRESHOLD_MINUTES,
    MAX_BODY_LENGTH,
    MAX_CONDITION_VALUE_LENGTH,
    MAX_CONDITIONS,
    MAX_CUSTOM_HEADERS,
    MAX_DELAY_MINUTES,
    MAX_DESCRIPTION_LENGTH,
    MAX_EDGES,
    MAX_FAILED_WORKFLOWS,
    MAX_HEADERS,
    MAX_INITIAL_DELAY_MS,
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
)
from app.incidents.enums import IncidentStatus
from app.workflows.enums import ActionType, NodeType, TriggerType

_NAME_DESCRIPTION = f"Display name, 1 to {MAX_NAME_LENGTH} characters, not blank."


class Position(Schema):
    """Where the node is drawn in the editor."""

    x: Coordinate
    y: Coordinate


class TriggerData(Schema):
    """The trigger node's data; the trigger settings are in the definition's trigger."""

    name: DisplayName = Field(description=_NAME_DESCRIPTION)


class RetryConfig(Schema):
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


class NoAuth(Schema):
    """No authentication."""

    type: Literal["none"]


class BearerAuth(Schema):
    """Sends 'Authorization: Bearer <token>'."""

    type: Literal["bearer"]
    token: SecretReference = Field(
        description="A secret reference, exactly '{{ secrets.<name> }}'."
    )


class BasicAuth(Schema):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: RequiredTemplateText = Field(
        description=f"User name (template), 1 to {MAX_TEMPLATE_LENGTH} characters."
    )
    password: SecretReference = Field(
        description="A secret reference, exactly '{{ secrets.<name> }}'."
    )


class OAuth2Auth(Schema):
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
        AfterValidator(check_plain_url),
    ] = Field(
        description=(
            f"Plain http(s) URL of the token endpoint with a host name, at most "
            f"{MAX_URL_LENGTH} characters, no templates."
        )
    )


class CustomHeaderAuth(Schema):
    """Authentication headers whose values are secrets (for example an API key)."""

    type: Literal["custom"]
    custom_headers: Annotated[
        dict[HeaderName, SecretReference],
        Field(min_length=1, max_length=MAX_CUSTOM_HEADERS),
        AfterValidator(check_unique_headers),
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


class WebhookConfig(Schema):
    """An outgoing HTTP request with a JSON body."""

    url: Annotated[
        str,
        Field(strict=True, min_length=1, max_length=MAX_URL_LENGTH),
        AfterValidator(check_webhook_url),
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
        AfterValidator(check_unique_headers),
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


class JiraConfig(Schema):
    """Create a Jira Cloud issue (REST v3). Without ``operation``, a config creates."""

    operation: Literal["create"] | None = Field(
        default=None, description="'create' (or absent): open an issue."
    )
    project_key: Annotated[
        str,
        Field(strict=True, max_length=10, json_schema_extra={"pattern": PROJECT_KEY_PATTERN}),
        AfterValidator(check_project_key),
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
            AfterValidator(check_unique_items),
        ]
        | None
    ) = Field(
        default=None,
        description=f"At most {MAX_LABELS} distinct labels without whitespace.",
    )


class JiraTransitionConfig(Schema):
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


class JiraCommentConfig(Schema):
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


class LinearConfig(Schema):
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
            AfterValidator(check_unique_items),
        ]
        | None
    ) = Field(default=None, description=f"At most {MAX_LABELS} distinct label ids (UUIDs).")


class LinearUpdateConfig(Schema):
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


class WebhookAction(Schema):
    """Call a webhook."""

    action_type: Literal[ActionType.WEBHOOK]
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    config: WebhookConfig
    retry: RetryConfig


class JiraAction(Schema):
    """Create, transition or comment on a Jira issue."""

    action_type: Literal[ActionType.JIRA]
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    config: JiraConfigs
    retry: RetryConfig


class LinearAction(Schema):
    """Create a Linear issue or move one to another state."""

    action_type: Literal[ActionType.LINEAR]
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    config: LinearConfigs
    retry: RetryConfig


ActionData = Annotated[
    WebhookAction | JiraAction | LinearAction,
    Field(discriminator="action_type"),
]


class ConditionData(Schema):
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


class DelayData(Schema):
    """Wait before continuing; the run is parked, not sleeping."""

    duration_minutes: int = Field(
        strict=True,
        ge=0,
        le=MAX_DELAY_MINUTES,
        description=f"Whole minutes, 0 to {MAX_DELAY_MINUTES} (7 days).",
    )
    name: DisplayName = Field(description=_NAME_DESCRIPTION)


class TriggerNode(Schema):
    """The node the workflow starts from (exactly one)."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.TRIGGER]
    position: Position
    data: TriggerData


class ActionNode(Schema):
    """A step that calls a webhook or creates an issue."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.ACTION]
    position: Position
    data: ActionData


class ConditionNode(Schema):
    """A step that branches along its 'true' or 'false' edge."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.CONDITION]
    position: Position
    data: ConditionData


class DelayNode(Schema):
    """A step that waits."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    type: Literal[NodeType.DELAY]
    position: Position
    data: DelayData


WorkflowNode = Annotated[
    TriggerNode | ActionNode | ConditionNode | DelayNode,
    Field(discriminator="type"),
]


class WorkflowEdge(Schema):
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


class TriggerCondition(Schema):
    """Field equality; all of a trigger's conditions must match."""

    field: ConditionField = Field(description="priority, status, service, team or metadata.<key>.")
    value: CheckedConditionValue = Field(
        description=(
            f"1 to {MAX_CONDITION_VALUE_LENGTH} characters; a P1 to P5 priority or "
            "an incident status when the field is priority or status."
        )
    )


class StateTransition(Schema):
    """The status change a state_changed trigger fires on."""

    from_: IncidentStatus | None = Field(
        default=None, alias="from", description="Any previous status when absent."
    )
    to: IncidentStatus


class TriggerConfig(Schema):
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


class WorkflowSettings(Schema):
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


class WorkflowDefinition(Schema):
    """A workflow's graph, trigger and settings, as stored in Workflow.definition."""

    id: Identifier = Field(description="1 to 64 letters, digits, '_' or '-'.")
    name: DisplayName = Field(description=_NAME_DESCRIPTION)
    description: Annotated[
        str,
        Field(strict=True, min_length=1, max_length=MAX_DESCRIPTION_LENGTH),
        AfterValidator(check_not_blank),
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
