"""Runs advance node by node: branches, skips, delays parked in the database, cancel."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.engine.runner import cancel
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentUpdate
from app.workflows import service as workflows
from app.workflows.models import WorkflowExecution
from tests.builders import branching
from tests.support import drain, runs_of


def statuses(run: WorkflowExecution) -> dict[str, str]:
    return {r["nodeId"]: r["status"] for r in run.completed_nodes}


def test_a_thirty_minute_delay_parks_and_resumes_on_time(
    app, clock, worker, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "RUNNING" and statuses(run) == {"start": "completed"}
    assert run.parked_until == clock.now() + timedelta(minutes=30)
    assert run.due_at == run.parked_until and run.lease_owner is None

    clock.advance(minutes=29, seconds=59)
    drain(worker)
    assert runs_of(workflow)[0].parked_until is not None  # not yet

    clock.advance(seconds=1)
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"
    assert statuses(run) == {
        "start": "completed",
        "wait": "completed",
        "still_open": "completed",
        "yes": "completed",
        "no": "skipped",
    }
    wait = next(r for r in run.completed_nodes if r["nodeId"] == "wait")
    assert wait["completedAt"].startswith((clock.now()).strftime("%Y-%m-%dT%H:%M"))
    assert run.due_at is None and run.completed_at == clock.now()


def test_conditions_read_the_incident_as_it_is_when_they_run(
    app, clock, worker, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(10))
    incident = open_incident()
    drain(worker)
    incidents.change_status(incidents.Actor(responder, ChangeSource.WEB), incident, "acknowledge")
    db.session.commit()
    clock.advance(minutes=10)
    drain(worker)
    clock.advance(minutes=1)  # the "no" branch waits a minute
    drain(worker)
    (run,) = runs_of(workflow)
    assert statuses(run)["yes"] == "skipped" and statuses(run)["no"] == "completed"
    check = next(r for r in run.completed_nodes if r["nodeId"] == "still_open")
    assert check["result"] == {
        "field": "status",
        "expected": "TRIGGERED",
        "actual": "ACKNOWLEDGED",
        "matched": False,
    }


def test_editing_or_rolling_back_mid_run_does_not_change_the_run(
    app, clock, worker, admin, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(10))
    open_incident()
    drain(worker)
    changed = branching(10)
    changed["nodes"][2]["data"]["value"] = "RESOLVED"  # the condition now checks RESOLVED
    workflows.save_version(admin, workflow, changed, base_version=workflow.version)
    db.session.commit()
    clock.advance(minutes=10)
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.workflow_version == 1
    check = next(r for r in run.completed_nodes if r["nodeId"] == "still_open")
    assert check["result"]["expected"] == "TRIGGERED"


def test_a_parked_run_can_be_cancelled_and_never_wakes(
    app, clock, worker, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    cancel(run, clock.now(), by="Test")
    db.session.commit()
    clock.advance(hours=1)
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "CANCELLED" and run.error == "Cancelled by Test."
    assert statuses(run) == {"start": "completed"} and run.due_at is None


def test_a_run_held_by_a_dead_worker_is_taken_over_after_its_lease(
    app, clock, worker, make_enabled_workflow, open_incident
) -> None:
    from app.engine.worker import Worker, WorkerSettings

    workflow = make_enabled_workflow(branching(0))
    open_incident()
    worker.consume_events()
    dead = Worker(
        app, clock=clock, settings=WorkerSettings(lease_seconds=60), worker_id="dead-worker"
    )
    assert len(dead.claim(10)) == 1  # ... and then it dies without a step
    assert worker.claim(10) == []  # the lease still holds
    clock.advance(seconds=61)
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"


def test_a_stale_step_loses_to_a_cancel(
    app, clock, worker, make_enabled_workflow, open_incident
) -> None:
    from app.engine.runner import advance

    workflow = make_enabled_workflow(branching(0))
    open_incident()
    worker.consume_events()
    (run_id,) = worker.claim(10)
    run = db.session.get(WorkflowExecution, run_id)
    advance(run, worker.engine)  # the worker's step, not yet committed...
    with db.engine.begin() as conn:  # ...while someone cancels in another transaction
        conn.execute(
            sa.update(WorkflowExecution)
            .where(WorkflowExecution.id == run_id)
            .values(status="CANCELLED", due_at=None, row_version=WorkflowExecution.row_version + 1)
        )
    import pytest
    from sqlalchemy.orm.exc import StaleDataError

    with pytest.raises(StaleDataError):
        db.session.commit()
    db.session.rollback()
    assert runs_of(workflow)[0].status == "CANCELLED"


def test_an_update_to_the_incident_does_not_start_created_runs_again(
    app, clock, worker, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(0))
    incident = open_incident()
    incidents.update_incident(
        incidents.Actor(responder, ChangeSource.WEB), incident, IncidentUpdate(priority="P1")
    )
    db.session.commit()
    drain(worker)
    assert [r.status for r in runs_of(workflow)] == ["COMPLETED"]
