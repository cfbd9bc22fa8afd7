"""The parked benchmark times the engine's due-work lookups by claiming parked runs
without driving them. Each claim counts a delivery of the run's step, as a real
worker's does, so the lookups must leave the runs as they found them: the next set-up
measured on the same database (Celery after the embedded worker) wakes those runs,
and a run whose step seems to have crashed its worker 20 times is ended FAILED."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bench import env, parked
from bench.backends import CELERY, POSTGRES, SQLITE, Backend
from tests.conftest import require_service

PARKED = 150  # more than the 100 runs the lookups make due
WOKEN = 5


def parked_runs(app: Flask) -> dict[str, tuple[Any, ...]]:
    """Every run's state that waking it depends on, by id."""
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    with app.app_context():
        rows = db.session.execute(
            sa.select(
                Run.id,
                Run.status,
                Run.current_node_id,
                Run.parked_until,
                Run.due_at,
                Run.lease_owner,
                Run.step_deliveries,
            )
        ).all()
        db.session.remove()
    return {row[0]: tuple(row[1:]) for row in rows}


def wake_and_drive(app: Flask, count: int) -> list[tuple[str, str | None]]:
    """Make the ``count`` earliest parked runs due now, as the benchmark's wake does, and
    drive them with an embedded worker in this process; (status, error) of each."""
    from app.engine.worker import Worker
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    worker = Worker(app)
    with app.app_context():
        ids = list(
            db.session.scalars(
                sa.select(Run.id)
                .where(Run.parked_until.is_not(None), Run.status == "RUNNING")
                .order_by(Run.due_at)
                .limit(count)
            )
        )
        now = datetime.now(UTC)
        db.session.execute(
            sa.update(Run).where(Run.id.in_(ids)).values(due_at=now, parked_until=now)
        )
        db.session.commit()
        deadline = time.monotonic() + 30
        ended = sa.select(Run.status, Run.error).where(
            Run.id.in_(ids), Run.status.in_(["COMPLETED", "FAILED"])
        )
        while len(db.session.execute(ended).all()) < len(ids) and time.monotonic() < deadline:
            db.session.rollback()
            worker.run_once()
        outcomes = [(str(status), error) for status, error in db.session.execute(ended).all()]
        db.session.remove()
    assert len(outcomes) == len(ids), "the woken runs did not end"
    return outcomes


@pytest.mark.parametrize("backend", [SQLITE, POSTGRES, CELERY], ids=lambda b: b.key)
def test_due_work_lookups_leave_the_parked_runs_as_they_found_them(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.database == "postgresql":
        url = os.environ.get("TEST_DATABASE_URL")
        require_service("PostgreSQL", bool(url), "set TEST_DATABASE_URL")
        monkeypatch.setattr(env, "POSTGRES_URL", url)
    with env.database(backend.database) as database, env.receiver() as receiver:
        app = env.make_app(database)
        seed = env.seed(app)
        workflow_id = env.enable_workflow(
            app, seed, env.benchmark_definition(receiver.url, delay_minutes=60)
        )
        incidents, _ = env.create_incidents(app, seed, 3)
        parked.park(app, workflow_id, incidents, PARKED)
        before = parked_runs(app)

        samples = parked.time_lookups(app, backend)

        assert [len(samples[name]) for name in ("idle", "due", "claim")] == [200, 100, 100]
        after = parked_runs(app)
        changed = {run_id: (before[run_id], after[run_id]) for run_id in before}
        changed = {run_id: pair for run_id, pair in changed.items() if pair[0] != pair[1]}
        assert changed == {}
        # What the next set-up measured on this database does: its woken runs complete.
        outcomes = wake_and_drive(app, WOKEN)
        assert outcomes == [("COMPLETED", None)] * WOKEN
