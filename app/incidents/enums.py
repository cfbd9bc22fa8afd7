"""Incident enumerations shared by the models, the definition schema and the API."""

from enum import StrEnum


class IncidentPriority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


class IncidentStatus(StrEnum):
    TRIGGERED = "TRIGGERED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class IncidentEventType(StrEnum):
    """What an incident event records. The first three are what workflows trigger on."""

    INCIDENT_CREATED = "incident_created"
    STATE_CHANGED = "state_changed"
    ESCALATION = "escalation"
    PRIORITY_CHANGED = "priority_changed"
    ASSIGNEE_CHANGED = "assignee_changed"
    SERVICE_CHANGED = "service_changed"
    METADATA_CHANGED = "metadata_changed"
    DETAILS_CHANGED = "details_changed"
    # Written by the workflow engine: a run it did not start (once per incident, the
    # loop guard), with the reason; a run that failed (what `workflow_failed` triggers
    # fire on).
    WORKFLOW_SKIPPED = "workflow_skipped"
    WORKFLOW_FAILED = "workflow_failed"


class ChangeSource(StrEnum):
    """Where a change came from, shown on the timeline."""

    WEB = "web"
    API = "api"
    SYSTEM = "system"
