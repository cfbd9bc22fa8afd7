"""What templates and conditions see: the incident as it is now, earlier steps, secrets."""

from __future__ import annotations

import json
from typing import Any

from app.auth.models import Team, User
from app.incidents.models import Incident
from app.workflows.models import WorkflowExecution
from app.workflows.schema import (
    AssigneeContext,
    IncidentContext,
    TeamContext,
    TemplateContext,
    WorkflowContext,
)


def field_value(incident: Incident, field: str) -> str | None:
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


def template_context(
    execution: WorkflowExecution,
    incident: Incident,
    *,
    workflow_name: str,
    steps: dict[str, Any],
    secrets: dict[str, str],
) -> dict[str, Any]:
    """The seed's TemplateContext (camelCase, as templates write it) plus steps and secrets."""
    team: Team = incident.team
    assignee: User | None = incident.assignee
    context = TemplateContext(
        incident=IncidentContext(
            id=incident.id,
            title=incident.title,
            description=incident.description,
            priority=incident.priority,
            status=incident.status,
            service=incident.service,
            created_at=incident.created_at,
            acknowledged_at=incident.acknowledged_at,
            resolved_at=incident.resolved_at,
            escalation_level=incident.escalation_level,
            team_name=team.name,
            metadata=incident.metadata_ or {},
        ),
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
        workflow=WorkflowContext(
            id=execution.workflow_id, name=workflow_name, execution_id=execution.id
        ),
    )
    data = context.model_dump(mode="json", by_alias=True)
    data["steps"] = steps
    data["secrets"] = secrets
    return data
