"""Several real Celery worker processes on PostgreSQL, with workers killed (SIGKILL)
under them: every run ends, no step runs twice except the one interrupted mid-request
(at most once more, with the same Idempotency-Key), and a step that keeps killing its
worker ends the run FAILED instead of looping."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from app.engine.actions import idempotency_key
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentCreate
from app.workflows.models import WorkflowExecution
from tests.builders import one_webhook
from tests.fakes.servers import RecordedRequest, Reply, WebhookReceiver, json_reply
from tests.support import wait_for

RUNS = 2000


# Several workers at once need PostgreSQL (SKIP LOCKED); on SQLite the e2e tests run one.
on_postgresql = pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


class TrapReceiver(WebhookReceiver):
    """Answers at once, except request number ``trap_at``, which it never answers."""

    def __init__(self, trap_at: int) -> None:
        super().__init__()
        self.trap_at = trap_at
        self.trapped = threading.Event()
        self.trapped_key: str | None = None
        self._count = 0
        self._count_lock = threading.Lock()

    def handle(self, request: RecordedRequest) -> Reply:
        with self._count_lock:
            self._count += 1
            trap = self._count == self.trap_at
        if trap:
            self.trapped_key = request.header("Idempotency-Key")
            self.trapped.set()
            return Reply(status=200, body={"ok": True}, delay=600)  # until the test stops us
        return json_reply(200, {"ok": True})


def owner_pid(lease_owner: str) -> int:
    """The process in a Celery worker id, ``celery:<host>:<pid>:<nonce>``."""
    kind, _host, pid, _nonce = lease_owner.split(":")
    assert kind == "celery", lease_owner
    return int(pid)


@on_postgresql
def test_2000_runs_on_4_workers_one_killed_mid_request(
    app, celery_processes, make_enabled_workflow, responder
) -> None:
    receiver = TrapReceiver(trap_at=RUNS // 2).start()
    try:
        workflow = make_enabled_workflow(one_webhook(receiver.url + "/hook"))
        workflow_id = workflow.id
        # Short leases so the killed worker's run is taken over soon; heartbeats keep the
        # leases of live workers, however slow the machine, from running out.
        processes = celery_processes(lease_seconds=10, heartbeat_seconds=1)
        workers = [processes.worker() for _ in range(4)]
        processes.beat()
        started = time.monotonic()
        actor = incidents.Actor(responder, ChangeSource.API)
        for number in range(RUNS):
            incidents.create_incident(
                actor, IncidentCreate(title=f"Incident {number}", team_id=responder.team.id)
            )
            if number % 200 == 199:
                db.session.commit()  # the workers start on these while the rest are opened
        print(f"\n{RUNS} incidents opened: {time.monotonic() - started:.1f}s")

        wait_for(receiver.trapped.is_set, 150, "half of the requests", processes.logs)
        db.session.rollback()
        runs = db.session.execute(
            sa.select(WorkflowExecution.id, WorkflowExecution.lease_owner).where(
                WorkflowExecution.workflow_id == workflow_id
            )
        ).all()
        (owner,) = [o for i, o in runs if idempotency_key(i, "hook") == receiver.trapped_key]
        victim = next(w for w in workers if w.pid == owner_pid(owner))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        # What the dead worker held (many runs in flight per process): nobody can take
        # them before their leases run out, so this is what it held when it died.
        db.session.rollback()
        held = {
            idempotency_key(run_id, "hook")
            for run_id in db.session.scalars(
                sa.select(WorkflowExecution.id).where(WorkflowExecution.lease_owner == owner)
            )
        }
        assert receiver.trapped_key in held
        print(f"half done, a worker killed: {time.monotonic() - started:.1f}s")

        def completed() -> bool:
            db.session.rollback()
            done = db.session.scalar(
                sa.select(sa.func.count()).where(
                    WorkflowExecution.workflow_id == workflow_id,
                    WorkflowExecution.status == "COMPLETED",
                )
            )
            return done == RUNS

        wait_for(completed, 150, f"all {RUNS} runs to complete", processes.logs, every=0.5)
        elapsed = time.monotonic() - started
        print(f"\n{RUNS} runs on 4 Celery workers, one killed: {elapsed:.1f}s")

        statuses = Counter(
            db.session.scalars(
                sa.select(WorkflowExecution.status).where(
                    WorkflowExecution.workflow_id == workflow_id
                )
            )
        )
        assert statuses == {"COMPLETED": RUNS}
        keys = Counter(request.header("Idempotency-Key") for request in receiver.requests)
        assert len(keys) == RUNS  # every run's step was requested
        repeated = {key: count for key, count in keys.items() if count > 1}
        # Only requests the killed worker was making were made again, each once: the
        # trapped one for certain, and any other it had in flight when it died.
        assert repeated[receiver.trapped_key] == 2
        assert set(repeated) <= held
        assert set(repeated.values()) == {2}
    finally:
        receiver.stop()


@on_postgresql
def test_a_step_that_keeps_killing_its_worker_ends_failed(
    app, celery_processes, make_enabled_workflow, open_incident
) -> None:
    """The receiver kills whichever worker process calls it: the step kills its worker."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    class KillingReceiver(WebhookReceiver):
        def handle(self, request: RecordedRequest) -> Reply:
            with engine.connect() as conn:
                owner = conn.scalar(
                    sa.select(WorkflowExecution.lease_owner).where(
                        WorkflowExecution.status == "RUNNING"
                    )
                )
            os.kill(owner_pid(owner), signal.SIGKILL)
            return Reply(drop=True)

    receiver = KillingReceiver().start()
    try:
        workflow = make_enabled_workflow(one_webhook(receiver.url + "/crash"))
        workflow_id = workflow.id
        processes = celery_processes(lease_seconds=3, heartbeat_seconds=0.5)
        # One worker whose pool replaces a child that dies.
        processes.worker(pool="prefork", concurrency=1)
        processes.beat()
        open_incident()

        def failed() -> WorkflowExecution | None:
            db.session.rollback()
            run = db.session.scalar(
                sa.select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)
            )
            return run if run is not None and run.status == "FAILED" else None

        run = wait_for(failed, 120, "the run to fail", processes.logs)
        assert run.error == (
            "The step at node hook crashed its worker 3 times, so it was not tried again "
            "(the worker died, or lost its database, while running it; see its log)."
        )
        assert len(receiver.requests) == 3
        assert {r.header("Idempotency-Key") for r in receiver.requests} == {
            idempotency_key(run.id, "hook")
        }
        assert run.lease_owner is None and run.due_at is None
    finally:
        receiver.stop()
        engine.dispose()
