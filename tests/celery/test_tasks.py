"""The Celery tasks' database side, in the test process with engine time in hand: what a
message may claim, what the dispatcher sends and when it sends again, the bound on
deliveries of a step, and the hand-back of a run whose slice is used up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.definition.builders import definition, delay_node, edge, trigger_config, trigger_node
from app.engine import tasks
from app.engine.celery_app import CelerySettings
from app.engine.drive import RunDriver
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.ops.settings import engine_backend
from app.workflows.models import WorkflowExecution
from tests.builders import one_webhook, webhook
from tests.support import runs_of

SETTINGS = CelerySettings(dispatch_window_seconds=60, max_deliveries=3)


@pytest.fixture(autouse=True)
def engine_config(app, clock) -> None:
    """Engine time in the test's hands; the fake servers on 127.0.0.1 reachable."""
    app.config.update(ENGINE_CLOCK=clock, OUTBOUND_ALLOW="127.0.0.1")


@pytest.fixture
def celery_worker(app, clock) -> Worker:
    """One Celery worker process's identity, driven by hand (no heartbeat thread)."""
    return Worker(
        app,
        clock=clock,
        settings=WorkerSettings(lease_seconds=30),
        worker_id="celery:test:1:aaaaaa",
        backend="celery",
    )


@pytest.fixture
def sent() -> list[str]:
    """What the tasks sent to the broker, in order."""
    return []


@pytest.fixture
def new_run(app, clock, make_enabled_workflow, open_incident, webhook_receiver):
    """Factory: a run started by an incident event, not yet sent anywhere."""

    def make(defn: dict | None = None) -> WorkflowExecution:
        workflow = make_enabled_workflow(defn or one_webhook(webhook_receiver.url + "/hook"))
        open_incident()
        tasks.consume_events(clock, SETTINGS)
        (run,) = runs_of(workflow)
        return run

    return make


def reload(run: WorkflowExecution) -> WorkflowExecution:
    db.session.rollback()
    fresh = db.session.get(WorkflowExecution, run.id, populate_existing=True)
    assert fresh is not None
    return fresh


def test_the_dispatcher_sends_a_due_run_once_per_window(app, clock, new_run, sent) -> None:
    run = new_run()
    assert tasks.dispatch_due(sent.extend, clock, SETTINGS) == 1
    assert sent == [run.id]
    assert reload(run).lease_owner == tasks.QUEUED
    # Sent, not yet taken: not sent again while its message may still be on its way.
    clock.advance(59)
    assert tasks.dispatch_due(sent.extend, clock, SETTINGS) == 0
    # Its message was lost: after the window it is due again and sent again.
    clock.advance(2)
    assert tasks.dispatch_due(sent.extend, clock, SETTINGS) == 1
    assert sent == [run.id, run.id]


def test_only_one_delivery_claims_a_run(app, clock, new_run, celery_worker, sent) -> None:
    run = new_run()
    tasks.dispatch_due(sent.extend, clock, SETTINGS)
    assert tasks.claim(run.id, "celery:a:1:x", clock, 30) == 1
    # A duplicate of the message, for a run another worker holds: nothing to do.
    assert tasks.claim(run.id, "celery:b:2:y", clock, 30) is None
    assert tasks.advance(run.id, celery_worker, sent.extend, SETTINGS) == "not due"
    assert reload(run).lease_owner == "celery:a:1:x"
    # The holder died: once its lease runs out, the run is due and can be claimed.
    clock.advance(31)
    assert tasks.claim(run.id, "celery:b:2:y", clock, 30) == 2


def test_a_parked_run_is_not_claimed_before_its_time(
    app, clock, new_run, celery_worker, sent, webhook_receiver
) -> None:
    run = new_run(
        definition(
            [trigger_node(), delay_node("pause", 10), webhook("hook", webhook_receiver.url)],
            [edge("start", "pause"), edge("pause", "hook")],
            trigger_config(),
        )
    )
    assert tasks.advance(run.id, celery_worker, sent.extend, SETTINGS) == "driven"
    run = reload(run)
    assert run.parked_until == clock.now() + timedelta(minutes=10)
    assert (run.lease_owner, run.step_deliveries) == (None, 0)
    assert sent == []  # nothing held in the broker for the wait
    assert tasks.advance(run.id, celery_worker, sent.extend, SETTINGS) == "not due"
    assert tasks.dispatch_due(sent.extend, clock, SETTINGS) == 0
    clock.advance(minutes=10)
    assert tasks.dispatch_due(sent.extend, clock, SETTINGS) == 1
    assert tasks.advance(run.id, celery_worker, sent.extend, SETTINGS) == "driven"
    assert reload(run).status == "COMPLETED"
    assert len(webhook_receiver.requests) == 1


def test_a_step_whose_worker_dies_each_time_fails_after_the_bound(
    app, clock, new_run, celery_worker, sent, webhook_receiver
) -> None:
    run = new_run()
    for delivery in (1, 2, 3):
        # Claimed, then the worker dies before the step commits: its lease runs out.
        assert tasks.claim(run.id, f"celery:doomed:{delivery}:x", clock, 30) == delivery
        clock.advance(31)
    assert tasks.advance(run.id, celery_worker, sent.extend, SETTINGS) == "stopped"
    run = reload(run)
    assert run.status == "FAILED"
    assert run.error.startswith("The step at node start crashed its worker 3 times")
    assert (run.due_at, run.lease_owner) == (None, None)
    assert webhook_receiver.requests == []


def test_a_committed_step_resets_the_count(
    app, clock, new_run, celery_worker, sent, webhook_receiver
) -> None:
    run = new_run()
    for delivery in (1, 2):
        assert tasks.claim(run.id, f"celery:doomed:{delivery}:x", clock, 30) == delivery
        clock.advance(31)
    # The third delivery gets through: the run completes, however many crashed before.
    assert tasks.advance(run.id, celery_worker, sent.extend, SETTINGS) == "driven"
    run = reload(run)
    assert run.status == "COMPLETED", run.error
    assert run.step_deliveries == 0


def test_a_run_whose_slice_ends_is_handed_back_to_the_broker(
    app, clock, new_run, sent, webhook_receiver
) -> None:
    run = new_run()
    worker = Worker(
        app,
        clock=clock,
        settings=WorkerSettings(lease_seconds=30, slice_seconds=0),
        worker_id="celery:test:2:bbbbbb",
        backend="celery",
    )
    assert tasks.advance(run.id, worker, sent.extend, SETTINGS) == "handed back"
    assert sent == [run.id]
    handed = reload(run)
    assert handed.status == "RUNNING" and handed.lease_owner == tasks.QUEUED
    assert handed.step_deliveries == 0
    while reload(run).status == "RUNNING":
        tasks.advance(run.id, worker, sent.extend, SETTINGS)
    assert reload(run).status == "COMPLETED", reload(run).error
    assert len(webhook_receiver.requests) == 1


def test_a_message_is_driven_by_the_shared_drive_without_a_worker_loop(
    app, clock, new_run, sent, webhook_receiver
) -> None:
    # tasks.advance needs only drive.RunDriver (the embedded worker's drive), not a Worker.
    runs = RunDriver("celery:test:3:cccccc", clock, WorkerSettings(lease_seconds=30))
    run = new_run()
    assert tasks.advance(run.id, runs, sent.extend, SETTINGS) == "driven"
    done = reload(run)
    assert done.status == "COMPLETED", done.error
    assert (done.lease_owner, done.step_deliveries) == (None, 0)
    assert [r.path for r in webhook_receiver.requests] == ["/hook"]
    assert tasks.advance(run.id, runs, sent.extend, SETTINGS) == "not due"
    assert sent == []


def test_the_backend_setting(app, tmp_path) -> None:
    from app.config import load_settings

    assert engine_backend({}) == "embedded"
    settings = load_settings(str(tmp_path), {"INCIDENTFLOW_ENGINE_BACKEND": "Celery"})
    assert engine_backend(settings) == "celery"
    assert engine_backend({"ENGINE_BACKEND": "embedded"}) == "embedded"
    with pytest.raises(RuntimeError, match="ENGINE_BACKEND must be one of embedded, celery"):
        engine_backend({"ENGINE_BACKEND": "rq"})


def test_the_embedded_worker_refuses_to_start_with_the_celery_backend(app, runner) -> None:
    app.config["ENGINE_BACKEND"] = "celery"
    result = runner.invoke(args=["worker", "run", "--once"])
    assert result.exit_code != 0
    assert "celery -A celery_worker:celery worker" in result.output
    assert "celery -A celery_worker:celery beat" in result.output


def test_a_few_runs_go_one_per_message_and_a_backlog_in_batches() -> None:
    # Not the app's database: how the dispatcher splits what it sends.
    settings = CelerySettings(runs_per_message=20)
    few = [f"run-{n}" for n in range(5)]
    assert tasks.messages_for(few, settings) == [[run] for run in few]
    backlog = [f"run-{n}" for n in range(500)]
    batches = tasks.messages_for(backlog, settings)
    assert [len(batch) for batch in batches] == [20] * 25
    assert [run for batch in batches for run in batch] == backlog  # each once, in order
    middling = [f"run-{n}" for n in range(20)]
    assert [len(b) for b in tasks.messages_for(middling, settings)] == [3] * 6 + [2]
    assert tasks.messages_for([], settings) == []


def test_one_message_advances_each_run_it_names(
    app, clock, webhook_receiver, make_enabled_workflow, open_incident, celery_worker
) -> None:
    workflow = make_enabled_workflow(one_webhook(webhook_receiver.url + "/hook"))
    for _ in range(3):
        open_incident()
    tasks.consume_events(clock, SETTINGS)
    sent: list[list[str]] = []
    tasks.dispatch_due(sent.append, clock, SETTINGS)
    (ids,) = sent
    assert len(ids) == 3
    outcomes = tasks.advance_each(ids, celery_worker, sent.append, SETTINGS)
    assert outcomes == ["driven"] * 3
    assert [run.status for run in runs_of(workflow)] == ["COMPLETED"] * 3
    assert len(webhook_receiver.requests) == 3
    # The same message delivered again (a redelivery) changes nothing.
    assert tasks.advance_each(ids, celery_worker, sent.append, SETTINGS) == ["not due"] * 3
    assert len(webhook_receiver.requests) == 3
    assert len(sent) == 1  # nothing was handed back
