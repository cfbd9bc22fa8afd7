"""Many runs in flight per worker: a hanging destination holds only its own slots,
leases follow every run a worker holds, and a SIGKILL repeats at most the one
request per run that was in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.definition.builders import (
    action_node,
    condition_node,
    definition,
    edge,
    trigger_config,
    trigger_node,
    webhook_config,
)
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.workflows.models import WorkflowExecution
from tests.fakes.servers import FakeServer, RecordedRequest, Reply, json_reply
from tests.support import runs_of

ROOT = Path(__file__).resolve().parents[2]


class GatedReceiver(FakeServer):
    """Holds every request until ``release()``; counts requests in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self._count = threading.Lock()

    def handle(self, request: RecordedRequest) -> Reply:
        with self._count:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.gate.wait(60)
        finally:
            with self._count:
                self.in_flight -= 1
        return json_reply(200, {"ok": True})

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.release()
        super().stop()


@pytest.fixture
def gated() -> Iterator[GatedReceiver]:
    """A receiver that holds requests until released (a destination that hangs)."""
    server = GatedReceiver().start()
    yield server
    server.stop()


def routed(priority: str, url: str) -> dict:
    """On a <priority> incident: if priority = <priority> -> webhook to url (one attempt)."""
    hook = action_node("call", "webhook", webhook_config(url=url), name="Call")
    hook["data"]["retry"]["attempts"] = 1
    return definition(
        [trigger_node(), condition_node("match", "priority", priority), hook],
        [edge("start", "match"), edge("match", "call", "true")],
        trigger_config("incident_created", conditions=[{"field": "priority", "value": priority}]),
    )


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(workflow_id: str) -> Counter[str]:
    db.session.rollback()
    found = Counter(
        db.session.scalars(
            sa.select(WorkflowExecution.status).where(WorkflowExecution.workflow_id == workflow_id)
        )
    )
    db.session.rollback()
    return Counter({status.value: n for status, n in found.items()})


def test_a_hanging_destination_holds_only_its_own_slots(
    app, gated, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    hanging = make_enabled_workflow(routed("P1", gated.url + "/hang"))
    healthy = make_enabled_workflow(routed("P2", webhook_receiver.url + "/ok"))
    for n in range(10):
        open_incident(title=f"stuck {n}", priority="P1")
    worker = Worker(app, settings=WorkerSettings(concurrency=20, per_destination=8))
    loop = worker.start_loop()
    try:
        wait_for(lambda: gated.in_flight == 8, 20, "8 requests in flight to the hanging host")
        for n in range(5):
            open_incident(title=f"canary {n}", priority="P2")
        wait_for(
            lambda: statuses(healthy.id) == {"COMPLETED": 5}, 20, "the healthy runs to complete"
        )
        # Meanwhile the hanging runs are all still open, and never more than the cap
        # was sent to their destination.
        assert statuses(hanging.id) == {"RUNNING": 10}
        assert gated.most_in_flight == 8
        assert len(gated.requests) == 8
        assert len(webhook_receiver.requests) == 5
        gated.release()
        wait_for(lambda: statuses(hanging.id) == {"COMPLETED": 10}, 20, "the held runs")
        assert gated.most_in_flight == 8
    finally:
        worker.stop()
        loop.join(timeout=10)
        worker.forget()


def test_the_heartbeat_renews_every_run_the_worker_holds(
    app, clock, make_enabled_workflow, open_incident, webhook_receiver
) -> None:
    make_enabled_workflow(routed("P1", webhook_receiver.url + "/x"))
    for n in range(5):
        open_incident(title=f"incident {n}", priority="P1")
    settings = WorkerSettings(lease_seconds=60, age_scan_seconds=3600)
    holder = Worker(app, clock=clock, settings=settings, worker_id="holder")
    other = Worker(app, clock=clock, settings=settings, worker_id="other")
    holder.consume_events()
    held = holder.claim(5)
    assert len(held) == 5  # claimed, none started yet
    clock.advance(50)
    holder.heartbeat()
    clock.advance(20)  # past the first lease, within the renewed one
    assert other.claim(5) == []
    clock.advance(41)
    assert sorted(other.claim(5)) == sorted(held)


def test_stranded_runs_are_taken_over_after_one_lease_ahead_of_newer_work(
    app, clock, make_enabled_workflow, open_incident, webhook_receiver
) -> None:
    workflow = make_enabled_workflow(routed("P1", webhook_receiver.url + "/x"))
    settings = WorkerSettings(lease_seconds=60, age_scan_seconds=3600)
    dead = Worker(app, clock=clock, settings=settings, worker_id="dead")
    survivor = Worker(app, clock=clock, settings=settings, worker_id="survivor")
    for n in range(3):
        open_incident(title=f"early {n}", priority="P1")
    dead.consume_events()
    stranded = dead.claim(3)  # ... and then it is killed
    clock.advance(30)
    for n in range(30):
        open_incident(title=f"backlog {n}", priority="P1")
    survivor.consume_events()
    assert len(runs_of(workflow)) == 33
    clock.advance(31)  # the dead worker's lease has run out; the backlog is older than that
    assert sorted(survivor.claim(3)) == sorted(stranded)


def test_a_stopping_worker_hands_back_what_it_did_not_start(
    app, clock, make_enabled_workflow, open_incident, webhook_receiver
) -> None:
    make_enabled_workflow(routed("P1", webhook_receiver.url + "/x"))
    for n in range(4):
        open_incident(title=f"incident {n}", priority="P1")
    settings = WorkerSettings(lease_seconds=60, age_scan_seconds=3600)
    leaving = Worker(app, clock=clock, settings=settings, worker_id="leaving")
    staying = Worker(app, clock=clock, settings=settings, worker_id="staying")
    leaving.consume_events()
    held = leaving.claim(4)
    leaving.forget()
    assert sorted(staying.claim(4)) == sorted(held)  # at once, not after the lease


WORKER = textwrap.dedent("""
    import sys
    from app import create_app
    from app.engine.worker import Worker, WorkerSettings
    url, instance, name = sys.argv[1:]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance,
                      "SECRET_KEY": "w", "OUTBOUND_ALLOW": "127.0.0.1"})
    Worker(app, settings=WorkerSettings(concurrency=60, per_destination=60, lease_seconds=3,
                                        heartbeat_seconds=1, idle_poll_seconds=0.5),
           worker_id=name).run_forever()
""")


def start_worker(app, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            app.config["SQLALCHEMY_DATABASE_URI"],
            str(tmp_path / name),
            name,
        ],
        cwd=ROOT,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_sigkill_with_50_requests_in_flight_repeats_at_most_one_per_run(
    app, tmp_path, gated, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(routed("P1", gated.url + "/held"))
    for n in range(50):
        open_incident(title=f"incident {n}", priority="P1")
    workflow_id = workflow.id
    db.session.remove()
    first = start_worker(app, tmp_path, "first")
    second = None
    try:
        wait_for(lambda: gated.in_flight == 50, 60, "50 requests in flight in one worker")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        gated.release()
        second = start_worker(app, tmp_path, "second")
        wait_for(lambda: statuses(workflow_id) == {"COMPLETED": 50}, 60, "every run to complete")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
    keys = Counter(request.header("Idempotency-Key") for request in gated.requests)
    assert len(keys) == 50  # one key per run: the repeat carries the first send's key
    # Each run sent the one request that was in flight at the kill once more, no other.
    assert set(keys.values()) == {2}
