"""Every model, imported in one place so that metadata and migrations see them all."""

from app.auth.models import ApiToken, SignInAttempt, Team, TeamMembership, User
from app.incidents.models import Incident, IncidentEvent
from app.workflows.models import (
    Workflow,
    WorkflowActionSecret,
    WorkflowExecution,
    WorkflowVersion,
)

__all__ = [
    "ApiToken",
    "IncidentEvent",
    "SignInAttempt",
    "Incident",
    "Team",
    "TeamMembership",
    "User",
    "Workflow",
    "WorkflowActionSecret",
    "WorkflowExecution",
    "WorkflowVersion",
]
