"""The workflow definition: the JSON a workflow is, below both ``app.workflows`` (which
stores and edits definitions) and ``app.engine`` (which runs them).

- ``models``: the pydantic models, the only description of a definition; ``fields``: their
  field types and validators, and ``Schema``, the base of every model here;
- ``parsing``: a JSON-like value or JSON text validated as a definition;
- ``context``: the run-time types, what templates read (``IncidentContext``, …) and what a
  run produces (``NodeResult``, ``WorkflowExecutionResult``);
- ``limits``: every bound and pattern, defined once;
- ``rules``: input bounds checked before any copy, and the whole-definition rules;
- ``graph``: order and reachability; ``messages``: problems in plain words with their place;
- ``json_schema``: the exported JSON Schema; ``templating`` and ``template_bounds``: the
  template sandbox and the bounds on what a template may build.

Import the public names from here: ``from app.definition import parse_definition``.
"""

from __future__ import annotations

from app.definition.context import (
    PREVIOUS_FIELD,
    AssigneeContext,
    FailureContext,
    IncidentContext,
    NodeResult,
    TeamContext,
    TemplateContext,
    WorkflowContext,
    WorkflowExecutionResult,
)
from app.definition.graph import (
    always_runs_before,
    ancestors,
    topological_order,
)
from app.definition.json_schema import (
    definition_json_schema,
)
from app.definition.limits import (
    IMPLICIT_SECRETS,
    MAX_BODY_LENGTH,
    MAX_DEFINITION_TEXT,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_VERSION,
    SECRET_NAME_RE,
)
from app.definition.messages import (
    DefinitionError,
    definition_errors,
    format_loc,
)
from app.definition.models import (
    ActionData,
    ActionNode,
    BasicAuth,
    BearerAuth,
    ConditionData,
    ConditionNode,
    CustomHeaderAuth,
    DelayData,
    DelayNode,
    JiraAction,
    JiraCommentConfig,
    JiraConfig,
    JiraTransitionConfig,
    LinearAction,
    LinearConfig,
    LinearUpdateConfig,
    NoAuth,
    OAuth2Auth,
    Position,
    RetryConfig,
    StateTransition,
    TriggerCondition,
    TriggerConfig,
    TriggerData,
    TriggerNode,
    WebhookAction,
    WebhookAuth,
    WebhookConfig,
    WorkflowDefinition,
    WorkflowEdge,
    WorkflowNode,
    WorkflowSettings,
)
from app.definition.parsing import (
    parse_definition,
    parse_definition_json,
)
from app.definition.rules import (
    reads_previous,
    referenced_secrets,
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
    "FailureContext",
    "IMPLICIT_SECRETS",
    "IncidentContext",
    "JiraAction",
    "JiraCommentConfig",
    "JiraConfig",
    "JiraTransitionConfig",
    "LinearAction",
    "LinearConfig",
    "LinearUpdateConfig",
    "MAX_BODY_LENGTH",
    "MAX_DEFINITION_TEXT",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_VERSION",
    "NoAuth",
    "NodeResult",
    "PREVIOUS_FIELD",
    "OAuth2Auth",
    "Position",
    "RetryConfig",
    "SECRET_NAME_RE",
    "StateTransition",
    "TeamContext",
    "TemplateContext",
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
    "reads_previous",
    "referenced_secrets",
    "topological_order",
]
