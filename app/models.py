"""Every model, imported in one place so that metadata and migrations see them all."""

from app.api.models import IdempotentRequest
from app.auth.models import ApiToken, SignInAttempt, Team, TeamMembership, User
from app.incidents.models import Incident, IncidentEvent
from app.ops.models import AuditEntry, EngineSweep
from app.workflows.models import (
    ExecutionAttempt,
    WorkerHeartbeat,
    Workflow,
    WorkflowActionSecret,
    WorkflowDraft,
    WorkflowExecution,
    WorkflowVersion,
)

__all__ = [
    "AuditEntry",
    "EngineSweep",
    "ExecutionAttempt",
    "WorkerHeartbeat",
    "ApiToken",
    "IdempotentRequest",
    "IncidentEvent",
    "SignInAttempt",
    "Incident",
    "Team",
    "TeamMembership",
    "User",
    "Workflow",
    "WorkflowActionSecret",
    "WorkflowDraft",
    "WorkflowExecution",
    "WorkflowVersion",
]
