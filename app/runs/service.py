"""Runs as people see them: who may see which, starting by hand, cancelling, re-running."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.auth.models import User
from app.engine import store, triggers, wake
from app.engine.clock import Clock
from app.engine.runner import TERMINAL
from app.errors import Conflict, NotFound
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.models import Incident
from app.runs import display
from app.workflows import service as workflows
from app.workflows.enums import TriggeredBy
from app.workflows.models import ExecutionAttempt, Workflow, WorkflowExecution


def visible_runs(user: User) -> sa.Select[WorkflowExecution]:
    """Runs on incidents the user may see (a global workflow's runs show with their incident)."""
    visible = incidents.visible_incidents(user).with_only_columns(Incident.id)
    return (
        sa.select(WorkflowExecution)
        .where(WorkflowExecution.incident_id.in_(visible.scalar_subquery()))
        .options(selectinload(WorkflowExecution.workflow), selectinload(WorkflowExecution.incident))
        .order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc())
    )


def get_run(user: User, execution_id: str) -> WorkflowExecution:
    execution = db.session.scalars(
        visible_runs(user).where(WorkflowExecution.id == execution_id)
    ).first()
    if execution is None:
        raise NotFound("No such run.")
    return execution


def start_by_hand(
    user: User, workflow_id: str, incident_id: str, clock: Clock
) -> WorkflowExecution:
    incident = incidents.get_incident(user, incident_id)
    workflow = workflows.get_workflow(user, workflow_id)
    return triggers.start_manual(user, workflow, incident, clock)


def cancel_run(user: User, execution: WorkflowExecution, clock: Clock) -> None:
    if execution.status in TERMINAL:
        raise Conflict(f"This run has already ended ({execution.status.value.lower()}).")
    store.cancel(execution, clock.now(), by=user.full_name or user.email)


def rerun(user: User, execution: WorkflowExecution, clock: Clock) -> WorkflowExecution:
    """Run the workflow's current version again on the same incident, by hand."""
    workflow: Workflow = workflows.get_workflow(user, execution.workflow_id)
    incident = incidents.get_incident(user, execution.incident_id)
    if not workflow.is_enabled:
        raise Conflict("This workflow is disabled; enable it before running it again.")
    new = triggers.new_run(
        triggers.Candidate.of(workflow),
        incident,
        clock.now(),
        triggered_by=TriggeredBy.MANUAL,
        trigger_event=None,
        trigger_key=None,
        user=user,
    )
    db.session.flush()
    wake.signal_work(db.session)
    return new


#: How many of an incident's latest runs its timeline shows.
TIMELINE_RUNS = 20


def incident_activity(user: User, incident: Incident) -> list[display.Activity]:
    """What workflows did on this incident, from its runs and their attempts (two queries)."""
    runs = list(
        db.session.scalars(
            visible_runs(user)
            .where(WorkflowExecution.incident_id == incident.id)
            .options(selectinload(WorkflowExecution.workflow))
            .order_by(WorkflowExecution.created_at.desc())
            .limit(TIMELINE_RUNS)
        )
    )
    if not runs:
        return []
    attempts = db.session.scalars(
        sa.select(ExecutionAttempt)
        .where(ExecutionAttempt.execution_id.in_([run.id for run in runs]))
        .order_by(ExecutionAttempt.id)
    ).all()
    return display.run_activity(runs, attempts)
