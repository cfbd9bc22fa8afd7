"""Workflow enumerations, defined once and used by the models and the definition schema."""

from enum import StrEnum


class ScopeType(StrEnum):
    TEAM = "team"
    GLOBAL = "global"


class TemplateCategory(StrEnum):
    TICKETING = "Ticketing"
    COMMUNICATION = "Communication"
    AUTO_RESOLUTION = "Auto-resolution"


class TriggerType(StrEnum):
    INCIDENT_CREATED = "incident_created"
    STATE_CHANGED = "state_changed"
    ESCALATION = "escalation"
    MANUAL = "manual"
    AGE = "age"
    WORKFLOW_FAILED = "workflow_failed"


class TriggerEvent(StrEnum):
    """What started an event-triggered execution (manual runs have none)."""

    INCIDENT_CREATED = "incident_created"
    STATE_CHANGED = "state_changed"
    ESCALATION = "escalation"
    AGE = "age"
    WORKFLOW_FAILED = "workflow_failed"


class TriggeredBy(StrEnum):
    EVENT = "event"
    MANUAL = "manual"


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class NodeType(StrEnum):
    TRIGGER = "trigger"
    ACTION = "action"
    CONDITION = "condition"
    DELAY = "delay"


class ActionType(StrEnum):
    WEBHOOK = "webhook"
    JIRA = "jira"
    LINEAR = "linear"


class NodeStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
