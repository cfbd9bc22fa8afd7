"""Every model, imported in one place so that metadata and migrations see them all."""

from app.auth.models import Team, TeamMembership, User
from app.incidents.models import Incident
from app.workflows.models import (
    Workflow,
    WorkflowActionSecret,
    WorkflowExecution,
    WorkflowVersion,
)

__all__ = [
    "Incident",
    "Team",
    "TeamMembership",
    "User",
    "Workflow",
    "WorkflowActionSecret",
    "WorkflowExecution",
    "WorkflowVersion",
]
