"""A worker killed mid-request (a real process, SIGKILL) leaves a run another worker finishes;
the receiver sees the interrupted request at most once more, with the same Idempotency-Key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.engine.clock import SystemClock
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.workflows.models import Workflow
from tests.builders import webhook
from tests.fakes.servers import Reply
from tests.support import runs_of

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent("""
    import sys
    from app import create_app
    from app.engine.worker import Worker, WorkerSettings
    url, instance = sys.argv[1:]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance,
                      "SECRET_KEY": "child", "OUTBOUND_ALLOW": "127.0.0.1"})
    Worker(app, settings=WorkerSettings(lease_seconds=2, heartbeat_seconds=0.5),
           worker_id="doomed").run_forever()
""")


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_killed_worker_leaves_a_run_that_another_finishes(
    app, tmp_path, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    webhook_receiver.reply(Reply(status=200, body={"ok": True}, delay=10))  # hangs mid-request
    open_incident()
    workflow_id = workflow.id
    db.session.remove()

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            app.config["SQLALCHEMY_DATABASE_URI"],
            str(tmp_path / "child"),
        ],
        cwd=ROOT,
    )
    try:
        wait_for(lambda: len(webhook_receiver.requests) == 1, 30, "the first request")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    db.engine.dispose()
    workflow = db.session.get(Workflow, workflow_id)
    (run,) = runs_of(workflow)
    assert run.status == "RUNNING" and run.lease_owner == "doomed"

    survivor = Worker(
        app, clock=SystemClock(), settings=WorkerSettings(lease_seconds=2), worker_id="survivor"
    )

    def finished() -> bool:
        survivor.run_once()
        db.session.remove()
        return runs_of(db.session.get(Workflow, workflow_id))[0].status == "COMPLETED"

    wait_for(finished, 30, "the survivor to finish the run")
    first, second = webhook_receiver.requests
    assert first.header("Idempotency-Key") == second.header("Idempotency-Key")
    assert len(webhook_receiver.requests) == 2
