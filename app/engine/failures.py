"""Failure workflows: a failed run leaves a ``workflow_failed`` event on its incident.

The event is the timeline's record of the failure and what ``workflow_failed``
triggers fire on (``triggers.consume_events``), written in the transaction that
ends the run: no failure is missed, and none is reported for a run whose end was
rolled back. A failure workflow's own failure is recorded but marked
``failureWorkflow``, and starts nothing (no chain of failure workflows).

The error is the run's error as stored: ``runner._action`` scrubs it of the
workflow's secrets, and a worker crash stores only the exception's type.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import IncidentEventType
from app.incidents.models import IncidentEvent
from app.workflows.enums import ExecutionStatus, TriggerEvent, TriggerType
from app.workflows.models import WorkflowExecution
from app.workflows.schema import FailureContext


def _node_name(snapshot: dict[str, Any], node_id: str | None) -> str | None:
    for node in snapshot.get("nodes", []):
        if node.get("id") == node_id:
            name = (node.get("data") or {}).get("name")
            return name if isinstance(name, str) else None
    return None


def is_failure_workflow(snapshot: dict[str, Any]) -> bool:
    return (snapshot.get("trigger") or {}).get("type") == TriggerType.WORKFLOW_FAILED.value


def failures_in_a_day(workflow_id: str, now: datetime, *, this_run: str) -> int:
    """Failed runs of the workflow in the 24 hours before ``now``, counting ``this_run``."""
    earlier = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(WorkflowExecution)
        .where(
            WorkflowExecution.workflow_id == workflow_id,
            WorkflowExecution.status == ExecutionStatus.FAILED,
            WorkflowExecution.failed_at >= now - timedelta(hours=24),
            WorkflowExecution.id != this_run,
        )
    )
    return int(earlier or 0) + 1


def record_failure(
    execution: WorkflowExecution, node_id: str | None, error: str, now: datetime
) -> None:
    """The ``workflow_failed`` event for a run that is failing now (flushed with the run)."""
    snapshot = execution.definition_snapshot or {}
    changes: dict[str, Any] = {
        "workflow": snapshot.get("name"),
        "workflowId": execution.workflow_id,
        "run": execution.id,
        "node": node_id,
        "nodeName": _node_name(snapshot, node_id),
        "error": error,
        "failuresInADay": failures_in_a_day(execution.workflow_id, now, this_run=execution.id),
    }
    if is_failure_workflow(snapshot):
        changes["failureWorkflow"] = True
    incidents.record_engine_event(
        execution.incident_id,
        IncidentEventType.WORKFLOW_FAILED,
        {key: {"from": None, "to": value} for key, value in changes.items()},
        execution_id=execution.id,
    )


def _event_id(trigger_key: str | None) -> int | None:
    # "event:<event id>:<workflow id>"
    parts = (trigger_key or "").split(":")
    if len(parts) == 3 and parts[0] == "event" and parts[1].isdigit():
        return int(parts[1])
    return None


def failure_context(execution: WorkflowExecution) -> dict[str, Any] | None:
    """``failure`` for the templates of a run a ``workflow_failed`` event started."""
    if execution.trigger_event != TriggerEvent.WORKFLOW_FAILED:
        return None
    event_id = _event_id(execution.trigger_key)
    if event_id is None:
        return None
    row = db.session.execute(
        sa.select(IncidentEvent.changes, IncidentEvent.created_at).where(
            IncidentEvent.id == event_id
        )
    ).one_or_none()
    if row is None:
        return None
    return context_from_changes(row.changes, row.created_at)


def context_from_changes(changes: dict[str, Any], failed_at: datetime) -> dict[str, Any]:
    def value(key: str) -> Any:
        change = changes.get(key)
        return change.get("to") if isinstance(change, dict) else None

    return FailureContext(
        run_id=str(value("run")),
        workflow_id=str(value("workflowId")),
        workflow_name=str(value("workflow")),
        node_id=value("node"),
        node_name=value("nodeName"),
        error=str(value("error") or ""),
        failures_in_a_day=int(value("failuresInADay") or 1),
        failed_at=failed_at,
    ).model_dump(mode="json", by_alias=True)


#: What editors, sample renders and dry runs show for ``failure``.
SAMPLE_FAILURE: dict[str, Any] = {
    "runId": "sample-failed-run",
    "workflowId": "sample-workflow",
    "workflowName": "Create Jira issue",
    "nodeId": "jira",
    "nodeName": "Create Jira issue",
    "error": "Create Jira issue: Jira answered 503 Service Unavailable (after 3 attempts)",
    "failuresInADay": 3,
    "failedAt": "2026-01-01T12:00:00+00:00",
}
