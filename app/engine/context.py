"""What templates and conditions see: the incident as it is now, earlier steps, secrets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.auth.models import Team, User
from app.definition import (
    AssigneeContext,
    IncidentContext,
    TeamContext,
    TemplateContext,
    WorkflowContext,
)
from app.extensions import db
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.incidents.models import Incident
from app.incidents.view import FIELDS, incident_view, view_columns
from app.workflows.enums import NodeStatus
from app.workflows.models import Workflow, WorkflowExecution


@dataclass(frozen=True)
class TeamView:
    id: str
    name: str
    chat_channel: str | None


@dataclass(frozen=True)
class AssigneeView:
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None


@dataclass(frozen=True)
class IncidentView:
    """An incident as a step reads it: one row with its team and assignee, not tracked."""

    id: str
    title: str
    description: str
    priority: IncidentPriority
    status: IncidentStatus
    service: str | None
    metadata_: dict[str, Any]
    team_id: str
    assignee_id: str | None
    escalation_level: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    team: TeamView
    assignee: AssigneeView | None

    @classmethod
    def of(
        cls, fields: dict[str, Any], team: TeamView, assignee: AssigneeView | None
    ) -> IncidentView:
        """From ``incident_view``'s fields (of an incident, a row, or a rebuilt incident)."""
        return cls(
            **{**fields, "metadata_": fields["metadata_"] or {}}, team=team, assignee=assignee
        )


_READ_INCIDENT = (
    sa.select(
        *view_columns(),
        Team.name.label("team_name"),
        Team.chat_channel,
        User.email,
        User.first_name,
        User.last_name,
        User.phone,
    )
    .join(Team, Team.id == Incident.team_id)
    .outerjoin(User, User.id == Incident.assignee_id)
    .where(Incident.id == sa.bindparam("incident_id"))
)


def read_incident(incident_id: str) -> IncidentView | None:
    """The incident as it is now, in one statement (cheaper than loading the ORM object)."""
    # On the session's connection, past the ORM's statement handling: a plain row.
    row = (
        db.session.connection().execute(_READ_INCIDENT, {"incident_id": incident_id}).one_or_none()
    )
    if row is None:
        return None
    # The outer join finds the assignee whenever there is one (the key is a foreign key).
    return IncidentView.of(
        incident_view(row),
        team=TeamView(id=row.team_id, name=row.team_name, chat_channel=row.chat_channel),
        assignee=(
            AssigneeView(row.assignee_id, row.email, row.first_name, row.last_name, row.phone)
            if row.assignee_id is not None
            else None
        ),
    )


IncidentLike = Incident | IncidentView


def field_value(incident: IncidentLike, field: str) -> str | None:
    """The incident's value for a trigger or condition field, as text to compare.

    Fields: ``priority``, ``status``, ``service``, ``team`` (the team's name) and
    ``metadata.<key>`` (strings as they are, other JSON values as JSON: ``true``, ``5``).
    """
    if field == "priority":
        return incident.priority.value
    if field == "status":
        return incident.status.value
    if field == "service":
        return incident.service
    if field == "team":
        return incident.team.name if incident.team else None
    if field.startswith("metadata."):
        value = (incident.metadata_ or {}).get(field.removeprefix("metadata."))
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return None


_READ_PREVIOUS = (
    sa.select(
        WorkflowExecution.id,
        WorkflowExecution.workflow_id,
        Workflow.name,
        WorkflowExecution.completed_nodes,
    )
    .join(Workflow, Workflow.id == WorkflowExecution.workflow_id)
    .where(WorkflowExecution.incident_id == sa.bindparam("incident_id"))
    .order_by(WorkflowExecution.created_at, WorkflowExecution.id)
)


def previous_results(
    incident_id: str, *, exclude_run: str | None = None, before: datetime | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """``incident.previous``: what earlier runs on this incident produced, in one statement.

    ``previous[<workflow id or name>][<node id>]`` is the most recent *completed*
    step of that node in any run of that workflow on this incident, whatever the
    run's outcome (a failed run's completed steps did happen), other than
    ``exclude_run`` (the run asking): ``{"result", "status", "runId",
    "completedAt"}``. Steps that failed or were skipped do not count. A name shared
    by several workflows means the one whose step is the most recent; the id is
    never ambiguous. Results were scrubbed of the producing workflow's secrets
    before they were stored, so none appear here. ``before``: only runs started
    before then (a backtest asks as of an event).
    """
    statement = _READ_PREVIOUS
    if before is not None:
        statement = statement.where(WorkflowExecution.created_at < before)
    rows = db.session.connection().execute(statement, {"incident_id": incident_id})
    by_workflow: dict[str, dict[str, dict[str, Any]]] = {}
    names: dict[str, str] = {}
    for run_id, workflow_id, name, completed in rows:
        if run_id == exclude_run:
            continue
        names[workflow_id] = name
        nodes = by_workflow.setdefault(workflow_id, {})
        for record in completed or ():
            if record.get("status") != NodeStatus.COMPLETED.value:
                continue
            finished = str(record.get("completedAt") or "")
            known = nodes.get(record["nodeId"])
            if known is None or finished >= known["completedAt"]:
                nodes[record["nodeId"]] = {
                    "status": record["status"],
                    "result": record.get("result"),
                    "runId": run_id,
                    "completedAt": finished,
                }
    previous: dict[str, dict[str, dict[str, Any]]] = {}
    latest_by_name: dict[str, str] = {}
    for workflow_id, nodes in by_workflow.items():
        if not nodes:
            continue
        previous[workflow_id] = nodes
        newest = max(node["completedAt"] for node in nodes.values())
        name = names[workflow_id]
        if name not in latest_by_name or newest >= latest_by_name[name]:
            latest_by_name[name] = newest
            if name not in by_workflow:  # an id always wins over a name that looks like one
                previous[name] = nodes
    return previous


#: What templates see of the incident's own fields; ``metadata`` and ``team_name`` are
#: named otherwise on the incident.
_CONTEXT_FIELDS = tuple(name for name in IncidentContext.model_fields if name in FIELDS)


def incident_context(incident: IncidentLike) -> IncidentContext:
    """``incident.*`` as templates see it, from the one incident mapping (incidents/view.py)."""
    fields = incident_view(incident)
    return IncidentContext(
        **{name: fields[name] for name in _CONTEXT_FIELDS},
        metadata=fields["metadata_"] or {},
        team_name=incident.team.name,
    )


def seed_context(incident: IncidentLike, workflow: WorkflowContext) -> dict[str, Any]:
    """The seed's TemplateContext (camelCase, as templates write it) for ``incident``."""
    team: Team | TeamView = incident.team
    assignee: User | AssigneeView | None = incident.assignee
    context = TemplateContext(
        incident=incident_context(incident),
        assignee=(
            AssigneeContext(
                id=assignee.id,
                email=assignee.email,
                first_name=assignee.first_name,
                last_name=assignee.last_name,
                phone=assignee.phone,
            )
            if assignee
            else None
        ),
        team=TeamContext(id=team.id, name=team.name, slack_channel=team.chat_channel),
        workflow=workflow,
    )
    return context.model_dump(mode="json", by_alias=True)


def template_context(
    execution: WorkflowExecution,
    incident: IncidentLike,
    *,
    workflow_name: str,
    steps: dict[str, Any],
    secrets: dict[str, str],
    previous: dict[str, Any] | None = None,
    failure: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The seed's TemplateContext (camelCase, as templates write it) plus steps and secrets,
    ``incident.previous`` (see previous_results; empty unless given), and ``failure``
    (the failed run) for runs a ``workflow_failed`` trigger started."""
    workflow = WorkflowContext(
        id=execution.workflow_id, name=workflow_name, execution_id=execution.id
    )
    data = seed_context(incident, workflow)
    data["incident"]["previous"] = previous if previous is not None else {}
    data["steps"] = steps
    data["secrets"] = secrets
    if failure is not None:
        data["failure"] = failure
    return data
