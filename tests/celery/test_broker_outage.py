"""Redis killed under load, with tasks in flight on real Celery workers, then started
again: every run completes and no worker process exits (issue 12, item 1).

The test starts a Redis of its own on a free port (the shared one is never killed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentCreate
from app.workflows.models import WorkflowExecution
from tests.builders import one_webhook
from tests.fakes.redis_server import redis_server
from tests.fakes.servers import RecordedRequest, Reply, WebhookReceiver
from tests.support import wait_for

# Each round opens a few incidents, so that every worker holds some tasks (acknowledged
# late) while it still polls for more, then kills Redis and starts it again after a
# pause. Before the fix (app/ops/broker.py) a worker exited in about half of the
# outages it saw with tasks in flight.
ROUNDS = 4
# More runs than the workers' loops hold (8 processes, one run each, below), so the
# rest go out as advance_run messages: tasks in flight when Redis dies.
RUNS_PER_ROUND = 14
RUNS = ROUNDS * RUNS_PER_ROUND
OUTAGE_PAUSES = (0.0, 2.0, 0.5, 0.0)

# Several workers at once need PostgreSQL (SKIP LOCKED).
on_postgresql = pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


class SlowReceiver(WebhookReceiver):
    """Answers every request after ``delay`` seconds, so that tasks are in flight."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def handle(self, request: RecordedRequest) -> Reply:
        return Reply(status=200, body={"ok": True}, delay=self.delay)


def count_runs(workflow_id: str, status: str) -> int:
    db.session.rollback()
    return int(
        db.session.scalar(
            sa.select(sa.func.count()).where(
                WorkflowExecution.workflow_id == workflow_id, WorkflowExecution.status == status
            )
        )
        or 0
    )


def json_lines(text: str) -> list[dict]:
    """Every line of a log, each of which must be a JSON object."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


@on_postgresql
def test_workers_survive_redis_killed_with_tasks_in_flight(
    app, celery_processes, make_enabled_workflow, responder, tmp_path: Path
) -> None:
    receiver = SlowReceiver(delay=1.5).start()
    try:
        with redis_server(tmp_path) as broker:
            workflow = make_enabled_workflow(one_webhook(receiver.url + "/hook"))
            workflow_id = workflow.id
            # Runs whose messages died with Redis are sent again after the dispatch window.
            processes = celery_processes(
                broker_url=broker.url,
                lease_seconds=5,
                heartbeat_seconds=1,
                dispatch_window_seconds=3,
                runs_per_message=1,
            )
            processes.environment["INCIDENTFLOW_LOG_FORMAT"] = "json"
            processes.environment["INCIDENTFLOW_ENGINE_CONCURRENCY"] = "1"
            # As the Procfile and the systemd units start them: prefork, 4 processes.
            workers = [processes.worker(pool="prefork", concurrency=4) for _ in range(2)]
            processes.beat()
            actor = incidents.Actor(responder, ChangeSource.API)

            def in_flight() -> int:
                with broker.client() as client:
                    return int(client.hlen("unacked"))

            for round_number, pause in enumerate(OUTAGE_PAUSES):
                for number in range(RUNS_PER_ROUND):
                    incidents.create_incident(
                        actor,
                        IncidentCreate(
                            title=f"Incident {round_number}.{number}", team_id=responder.team.id
                        ),
                    )
                db.session.commit()
                # Messages held by workers: tasks in flight, with room for more.
                wait_for(lambda: in_flight() >= 4, 90, "tasks in flight", processes.logs)
                broker.kill()
                time.sleep(pause)
                broker.start()
                time.sleep(3)  # the workers reconnect and go on
                assert [w.poll() for w in workers] == [None, None], processes.logs()

            wait_for(
                lambda: count_runs(workflow_id, "COMPLETED") == RUNS,
                150,
                f"all {RUNS} runs to complete after the outage",
                processes.logs,
                every=0.5,
            )
            assert count_runs(workflow_id, "FAILED") == 0
            assert [w.poll() for w in workers] == [None, None], processes.logs()

        # Every line on the workers' and beat's stderr is JSON, with the run's ids.
        records = {name: json_lines(processes.stderr(name)) for name in ("worker1", "worker2")}
        beat = json_lines(processes.stderr("beat"))
        assert any(r["logger"] == "celery.beat" for r in beat)
        every = [r for lines in records.values() for r in lines]
        messages = [r["message"] for r in every]
        assert not [m for m in messages if "Unrecoverable error" in m], messages
        # The crash of issue 12 (kombu restoring messages on a closed transport).
        assert not [m for m in messages if "has no attribute 'hostname'" in m], messages
        for name, lines in records.items():
            assert "broker connection lost" in [r["message"] for r in lines], name
            assert "broker connection restored" in [r["message"] for r in lines], name
        started = {r["execution_id"] for r in every if r["message"] == "run started"}
        ended = {r["execution_id"] for r in every if r["message"] == "run finished"}
        assert len(started) == RUNS and started == ended
        assert {r["status"] for r in every if r["message"] == "run finished"} == {"COMPLETED"}
    finally:
        receiver.stop()
