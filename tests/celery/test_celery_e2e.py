"""The engine end to end on the Celery backend: real ``celery worker`` and ``celery beat``
processes, Redis as broker, the test database (SQLite and PostgreSQL), a real webhook
receiver. The database decides: a duplicated message runs nothing twice, a lost one
is sent again, a delay waits in the database and not in the broker."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.definition.builders import definition, delay_node, edge, trigger_config, trigger_node
from app.engine import tasks
from app.engine.celery_app import RUNS_QUEUE, CelerySettings
from app.engine.clock import SystemClock
from app.extensions import db
from app.workflows.models import WorkerHeartbeat, Workflow, WorkflowExecution
from tests.builders import benchmark_workflow, one_webhook, webhook
from tests.fakes.servers import Reply
from tests.fixtures.celery import no_messages_left
from tests.support import runs_of, wait_for

FAST = {"dispatch_interval_seconds": 0.5, "lease_seconds": 5, "heartbeat_seconds": 1}


def the_run(workflow_id: str) -> WorkflowExecution | None:
    db.session.rollback()
    return db.session.scalar(
        sa.select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)
    )


def ended(workflow_id: str) -> WorkflowExecution | None:
    run = the_run(workflow_id)
    return run if run is not None and run.status in ("COMPLETED", "FAILED") else None


def test_a_webhook_workflow_runs_on_celery_workers(
    app, celery_app, celery_processes, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(benchmark_workflow(webhook_receiver.url))
    processes = celery_processes(**FAST)
    processes.worker()
    processes.beat()
    incident = open_incident(title="Checkout down", priority="P1")

    run = wait_for(lambda: ended(workflow.id), 90, "the run to end", processes.logs)
    assert run.status == "COMPLETED", run.error
    assert run.incident_id == incident.id
    first, second = webhook_receiver.requests
    assert (first.path, second.path) == ("/first", "/second")
    assert first.json() == {"title": "Checkout down"}
    assert second.json() == {"first": 200}
    assert first.header("Idempotency-Key") != second.header("Idempotency-Key")
    assert run.lease_owner is None and run.due_at is None
    # The worker process announced itself (readiness reads these rows).
    beats = db.session.scalars(sa.select(WorkerHeartbeat)).all()
    assert [b.backend for b in beats] == ["celery"]


def test_a_delay_waits_in_the_database_and_the_dispatcher_wakes_it(
    app,
    celery_app,
    broker,
    celery_processes,
    webhook_receiver,
    make_enabled_workflow,
    open_incident,
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), delay_node("pause", 30), webhook("hook", webhook_receiver.url)],
            [edge("start", "pause"), edge("pause", "hook")],
            trigger_config(),
        )
    )
    processes = celery_processes(**FAST)
    processes.worker()
    processes.beat()
    open_incident()

    def parked() -> WorkflowExecution | None:
        run = the_run(workflow.id)
        return run if run is not None and run.parked_until is not None else None

    run = wait_for(parked, 90, "the run to park at the delay", processes.logs)
    assert run.lease_owner is None  # nobody holds it while it waits
    assert run.due_at == run.parked_until
    # Nothing waits in the broker: no countdown message that Redis would redeliver.
    wait_for(lambda: no_messages_left(broker), 30, "no message left in the broker")
    assert webhook_receiver.requests == []

    # Thirty minutes pass (in the database): the periodic dispatcher, not a message, wakes it.
    wake_at = run.parked_until - timedelta(minutes=30, seconds=1)
    db.session.execute(
        sa.update(WorkflowExecution)
        .where(WorkflowExecution.id == run.id)
        .values(parked_until=wake_at, due_at=wake_at)
    )
    db.session.commit()
    run = wait_for(lambda: ended(workflow.id), 90, "the run to wake and end", processes.logs)
    assert run.status == "COMPLETED", run.error
    assert len(webhook_receiver.requests) == 1
    pause = next(r for r in run.completed_nodes if r["nodeId"] == "pause")
    assert pause["status"] == "completed" and "waitedUntil" in pause["result"]


def start_run_without_workers(app, workflow: Workflow) -> str:
    """Consume the incident event in the test process: the run exists, nobody has sent it."""
    tasks.consume_events(SystemClock(), CelerySettings())
    (run,) = runs_of(workflow)
    return run.id


def test_duplicated_messages_run_the_step_once(
    app,
    celery_app,
    broker,
    celery_processes,
    webhook_receiver,
    make_enabled_workflow,
    open_incident,
) -> None:
    workflow = make_enabled_workflow(one_webhook(webhook_receiver.url + "/hook"))
    open_incident()
    run_id = start_run_without_workers(app, workflow)
    # The same run, sent four times (the dispatcher will send it a fifth time), while
    # the receiver takes a moment: duplicates overlap with the first delivery.
    webhook_receiver.reply(Reply(status=200, body={"ok": True}, delay=1.0))
    tasks.publish(celery_app, [run_id] * 4)
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    processes = celery_processes(**FAST)
    if postgres:
        processes.worker(pool="prefork", concurrency=2)
        processes.worker()
    else:
        processes.worker()  # SQLite: one worker process
    processes.beat()

    run = wait_for(lambda: ended(workflow.id), 90, "the run to end", processes.logs)
    assert run.status == "COMPLETED", run.error
    wait_for(lambda: no_messages_left(broker), 60, "every message to be done")
    # A message for a run that has ended changes nothing either.
    tasks.publish(celery_app, [run_id])
    wait_for(lambda: no_messages_left(broker), 60, "the late duplicate to be done")
    assert [r.path for r in webhook_receiver.requests] == ["/hook"]
    assert the_run(workflow.id).status == "COMPLETED"


def test_a_lost_message_is_sent_again_after_the_dispatch_window(
    app,
    celery_app,
    broker,
    celery_processes,
    webhook_receiver,
    make_enabled_workflow,
    open_incident,
) -> None:
    workflow = make_enabled_workflow(one_webhook(webhook_receiver.url + "/hook"))
    open_incident()
    run_id = start_run_without_workers(app, workflow)
    window = CelerySettings(dispatch_window_seconds=3)
    sent = tasks.dispatch_due(lambda ids: tasks.publish(celery_app, ids), SystemClock(), window)
    assert sent == 1 and broker.llen(RUNS_QUEUE) == 1
    broker.delete(RUNS_QUEUE)  # the broker loses it (a Redis restart without persistence)
    run = the_run(workflow.id)
    assert run.lease_owner == tasks.QUEUED  # handed to the broker, not to be sent again yet

    processes = celery_processes(dispatch_window_seconds=3, **FAST)
    processes.worker()
    processes.beat()
    run = wait_for(lambda: ended(workflow.id), 90, "the run to be recovered", processes.logs)
    assert run.status == "COMPLETED", run.error
    assert run.id == run_id
    assert [r.path for r in webhook_receiver.requests] == ["/hook"]
