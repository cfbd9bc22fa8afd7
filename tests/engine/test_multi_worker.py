"""Several embedded workers (real processes) on PostgreSQL never run the same step twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.definition.builders import (
    condition_node,
    definition,
    delay_node,
    edge,
    trigger_config,
    trigger_node,
)
from app.extensions import db
from app.workflows.models import WorkflowExecution
from tests.builders import webhook

ROOT = Path(__file__).resolve().parents[2]
WORKER = textwrap.dedent("""
    import sys
    from app import create_app
    from app.engine.worker import Worker, WorkerSettings
    url, instance, name = sys.argv[1:]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance,
                      "SECRET_KEY": "w", "OUTBOUND_ALLOW": "127.0.0.1"})
    Worker(app, settings=WorkerSettings(claim_batch=5, slice_seconds=0.05),
           worker_id=name).run_forever()
""")
RUNS = 60


@pytest.mark.slow
@pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)  # several workers at once need PostgreSQL; SQLite serialises writers
def test_three_workers_share_the_runs_without_doubling_a_step(
    app, tmp_path, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [
                trigger_node(),
                condition_node("is_p2", "priority", "P2"),
                webhook("first", webhook_receiver.url + "/first"),
                delay_node("pause", 0),
                webhook("second", webhook_receiver.url + "/second"),
            ],
            [
                edge("start", "is_p2"),
                edge("is_p2", "first", "true"),
                edge("first", "pause"),
                edge("pause", "second"),
            ],
            trigger_config("incident_created"),
        )
    )
    for n in range(RUNS):
        open_incident(title=f"incident {n}", priority="P2")
    workflow_id = workflow.id
    db.session.remove()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                app.config["SQLALCHEMY_DATABASE_URI"],
                str(tmp_path / f"w{i}"),
                f"worker-{i}",
            ],
            cwd=ROOT,
        )
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            done = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(WorkflowExecution)
                .where(
                    WorkflowExecution.workflow_id == workflow_id,
                    WorkflowExecution.status == "COMPLETED",
                )
            )
            db.session.rollback()
            if done == RUNS:
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
    statuses = Counter(
        db.session.scalars(
            sa.select(WorkflowExecution.status).where(WorkflowExecution.workflow_id == workflow_id)
        )
    )
    assert statuses == {"COMPLETED": RUNS}
    keys = Counter(request.header("Idempotency-Key") for request in webhook_receiver.requests)
    assert len(keys) == 2 * RUNS and set(keys.values()) == {1}  # every step exactly once
