"""When a run's progress is committed: before every request, and when the run waits or ends.

Steps that touch nothing outside the database (trigger, condition, a zero delay, the end)
share a commit with the steps around them; a request never goes out before the run says,
durably, that it is at that node with everything before it settled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.workflows.models import WorkflowExecution
from tests.builders import benchmark_workflow
from tests.fakes.servers import RecordedRequest, Reply, WebhookReceiver, json_reply
from tests.support import drain, runs_of

RUNS = WorkflowExecution.__table__


@pytest.fixture(autouse=True)
def allow_loopback(app) -> None:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


class WitnessReceiver(WebhookReceiver):
    """Reads the run as other processes see it (committed rows only) when a request arrives."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.engine = sa.create_engine(database_url)
        self.seen: list[dict[str, Any]] = []
        self.on_request: Any = None

    def handle(self, request: RecordedRequest) -> Reply:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(RUNS)).one()
            self.seen.append(
                {
                    "path": request.path,
                    "status": row.status,
                    "current": row.current_node_id,
                    "settled": [node["nodeId"] for node in row.completed_nodes],
                }
            )
            if self.on_request is not None:
                self.on_request(conn, row)
        return json_reply(200, {"ok": True})


@pytest.fixture
def witness(app) -> Iterator[WitnessReceiver]:
    receiver = WitnessReceiver(app.config["SQLALCHEMY_DATABASE_URI"]).start()
    yield receiver
    receiver.stop()
    receiver.engine.dispose()


@pytest.fixture
def run_to_the_end(worker, make_enabled_workflow, open_incident, witness):
    """Start the benchmark workflow (two requests to the witness) and drive it."""

    def run() -> WorkflowExecution:
        workflow = make_enabled_workflow(benchmark_workflow(witness.url))
        open_incident(priority="P1")
        drain(worker)
        (run,) = runs_of(workflow)
        return run

    return run


def test_each_request_goes_out_after_the_run_committed_where_it_is(witness, run_to_the_end) -> None:
    run = run_to_the_end()
    assert run.status == "COMPLETED", run.error
    assert witness.seen == [
        {"path": "/first", "status": "RUNNING", "current": "first", "settled": ["start", "is_p1"]},
        {
            "path": "/second",
            "status": "RUNNING",
            "current": "second",
            "settled": ["start", "is_p1", "first", "pause"],
        },
    ]


def test_steps_without_outside_effects_share_a_commit(
    app, worker, make_enabled_workflow, open_incident, webhook_receiver
) -> None:
    workflow = make_enabled_workflow(benchmark_workflow(webhook_receiver.url))
    open_incident(priority="P1")
    worker.consume_events()
    (run_id,) = worker.claim(10)
    commits: list[str] = []

    def count(_conn: sa.Connection) -> None:
        commits.append("commit")

    sa.event.listen(db.engine, "commit", count)
    try:
        worker.drive(run_id)
    finally:
        sa.event.remove(db.engine, "commit", count)
    # Before /first, before /second, and the end: not one per node (there are five).
    assert len(commits) == 3
    assert runs_of(workflow)[0].status == "COMPLETED"


def test_a_run_cancelled_during_a_request_sends_nothing_more(witness, run_to_the_end) -> None:
    def cancel_once(conn: sa.Connection, row: Any) -> None:
        if row.current_node_id == "first":  # as the runs service does: its own transaction
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id == row.id)
                .values(
                    status="CANCELLED",
                    error="Cancelled by a responder.",
                    due_at=None,
                    lease_owner=None,
                    row_version=RUNS.c.row_version + 1,
                )
            )

    witness.on_request = cancel_once
    run = run_to_the_end()
    assert run.status == "CANCELLED"
    assert run.error == "Cancelled by a responder."
    assert [seen["path"] for seen in witness.seen] == ["/first"]
