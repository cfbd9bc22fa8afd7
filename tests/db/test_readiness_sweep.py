"""/readyz and the due-work sweep, expected workers, and expiring heartbeats
(issue 12, item 7): 503 when beat (Celery) or the embedded worker's sweep has not
run within READY_SWEEP_SECONDS, expected vs. live workers when EXPECTED_WORKERS is
set, and heartbeat rows of dead workers deleted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app.db import utcnow
from app.extensions import db
from app.ops.models import EngineSweep
from app.ops.sweep import forget_recorded, record_sweep
from app.workflows.models import WorkerHeartbeat
from tests.builders import heartbeat, ready


@pytest.fixture
def embedded(app: Flask) -> Iterator[Flask]:
    """The app on the embedded backend; every record_sweep call writes."""
    app.config.update(ENGINE_BACKEND="embedded", WORKER_STALE_SECONDS=60)
    forget_recorded()
    yield app
    forget_recorded()


def swept(seconds_ago: float, backend: str = "embedded") -> None:
    forget_recorded()
    assert record_sweep(backend, utcnow() - timedelta(seconds=seconds_ago))


def test_readyz_fails_when_the_sweep_has_not_run_within_the_interval(embedded, client) -> None:
    heartbeat("w-1", age_seconds=1)
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["sweep"] == {
        "ok": True,
        "checked": False,
        "reason": "No sweep by the embedded worker has been recorded yet.",
        "maxAgeSeconds": 60.0,
    }

    swept(5)
    status, body = ready(client)
    assert status == 200 and body["checks"]["sweep"]["ok"] is True
    assert 5 <= body["checks"]["sweep"]["ageSeconds"] < 60

    swept(61)
    status, body = ready(client)
    assert status == 503 and body["status"] == "unready"
    sweep = body["checks"]["sweep"]
    assert sweep["ok"] is False and sweep["ageSeconds"] >= 61
    assert "the embedded worker" in sweep["error"]
    # The worker itself still sends heartbeats: only the sweep tells it is stuck.
    assert body["checks"]["workers"]["ok"] is True

    embedded.config["READY_SWEEP_SECONDS"] = 120
    assert ready(client)[0] == 200


def test_each_backend_is_judged_by_its_own_sweep(embedded, client) -> None:
    heartbeat("celery:h:1:a", age_seconds=1, backend="celery")
    swept(1, backend="embedded")
    swept(300, backend="celery")
    embedded.config.update(ENGINE_BACKEND="celery", CELERY_BROKER_URL="")
    body = ready(client)[1]
    assert body["checks"]["sweep"]["ok"] is False
    assert "beat (dispatch_due)" in body["checks"]["sweep"]["error"]


def test_expected_workers_are_counted_against_live_ones(embedded, client) -> None:
    embedded.config["EXPECTED_WORKERS"] = 2
    heartbeat("w-1", age_seconds=1)
    heartbeat("w-dead", age_seconds=90)
    status, body = ready(client)
    workers = body["checks"]["workers"]
    assert status == 503
    assert (workers["expected"], workers["live"], workers["stale"]) == (2, 1, 1)
    assert workers["error"] == (
        "1 of the 2 expected workers are alive: start the missing ones or check why they stopped."
    )

    heartbeat("w-2", age_seconds=2)
    status, body = ready(client)
    assert status == 200
    assert (body["checks"]["workers"]["expected"], body["checks"]["workers"]["live"]) == (2, 2)

    embedded.config["EXPECTED_WORKERS"] = 0  # not configured: no counts reported
    assert "expected" not in ready(client)[1]["checks"]["workers"]


def test_heartbeat_rows_of_dead_workers_expire(embedded) -> None:
    # Heartbeat every 10 s (the default), expiry after 10 intervals: 100 s.
    heartbeat("w-alive", age_seconds=5)
    heartbeat("w-quiet", age_seconds=70)  # stale, not yet expired: still counted
    heartbeat("w-gone", age_seconds=101)
    swept(0)
    db.session.rollback()
    assert set(db.session.scalars(sa.select(WorkerHeartbeat.id))) == {"w-alive", "w-quiet"}

    embedded.config["HEARTBEAT_EXPIRY_INTERVALS"] = 5
    swept(0)
    db.session.rollback()
    assert set(db.session.scalars(sa.select(WorkerHeartbeat.id))) == {"w-alive"}


def test_recording_is_throttled_and_upserts_one_row_per_backend(embedded) -> None:
    now = utcnow()
    assert record_sweep("embedded", now)
    assert not record_sweep("embedded", now + timedelta(seconds=1))  # too soon: no write
    assert record_sweep("embedded", now + timedelta(seconds=6))
    db.session.rollback()
    rows = db.session.execute(sa.select(EngineSweep.backend, EngineSweep.last_run_at)).all()
    assert rows == [("embedded", now + timedelta(seconds=6))]


def test_the_embedded_worker_records_its_sweep(embedded, worker) -> None:
    worker.run_once()
    db.session.rollback()
    assert db.session.get(EngineSweep, "embedded") is not None
