"""The run-time types: what a run's templates read (the incident, its assignee and team,
the workflow, a failed run) and what a run produces. None is part of a definition; the
rules check templates against the fields named here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, JsonValue

from app.definition.fields import Schema
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.workflows.enums import ExecutionStatus, NodeStatus


class IncidentContext(Schema):
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


class AssigneeContext(Schema):
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None = None


class TeamContext(Schema):
    id: str
    name: str
    slack_channel: str | None = None


class WorkflowContext(Schema):
    id: str
    name: str
    execution_id: str


class FailureContext(Schema):
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


class TemplateContext(Schema):
    """What templates see, besides ``steps`` (earlier results) and ``secrets``."""

    incident: IncidentContext
    assignee: AssigneeContext | None = None
    team: TeamContext
    workflow: WorkflowContext


class NodeResult(Schema):
    node_id: str
    status: NodeStatus
    result: JsonValue = Field(
        default=None, description="What the node produced, e.g. the created issue."
    )
    error: str | None = None
    started_at: AwareDatetime
    completed_at: AwareDatetime


class WorkflowExecutionResult(Schema):
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
