"""Evidence that the engine's due-work sweep runs, and expiry of dead workers' heartbeats.

``record_sweep(backend, now)`` is called by whatever sweeps for due work: beat's
``dispatch_due`` task (``celery``) and the embedded worker's pass (``embedded``).
``/readyz`` fails when the sweep of the configured backend is older than
``READY_SWEEP_SECONDS``. The same short transaction deletes the heartbeat rows of
workers silent for ``HEARTBEAT_EXPIRY_INTERVALS`` heartbeat intervals, so the
stale-worker count shows workers that went quiet recently, not every worker
that ever ran.

The sweep runs several times a second; the row is written at most once every
``RECORD_EVERY_SECONDS`` (or a quarter of ``READY_SWEEP_SECONDS``) per process
and backend, in its own transaction, so the caller's transaction is untouched and
the hot path gains no commit most of the time.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.engine import store
from app.extensions import db
from app.ops.models import EngineSweep

log = logging.getLogger(__name__)

RECORD_EVERY_SECONDS = 5.0  # or a quarter of READY_SWEEP_SECONDS, if that is shorter

_last_recorded: dict[str, datetime] = {}
_lock = threading.Lock()


def heartbeat_expiry_seconds() -> float:
    from app.engine.worker import WorkerSettings

    heartbeat = WorkerSettings.from_config(current_app.config).heartbeat_seconds
    return float(current_app.config["HEARTBEAT_EXPIRY_INTERVALS"]) * heartbeat


def record_sweep(backend: str, now: datetime) -> bool:
    """Note that ``backend``'s sweep ran at ``now``; returns whether a row was written.

    Never raises: readiness evidence must not break the engine's work.
    """
    every = min(RECORD_EVERY_SECONDS, float(current_app.config["READY_SWEEP_SECONDS"]) / 4)
    with _lock:
        last = _last_recorded.get(backend)
        if last is not None and timedelta(0) <= now - last < timedelta(seconds=every):
            return False
        _last_recorded[backend] = now
    try:
        expired_before = now - timedelta(seconds=heartbeat_expiry_seconds())
        with db.engine.begin() as conn:
            conn.execute(_upsert(conn.dialect.name, backend, now))
            expired = store.expire_heartbeats(conn, expired_before)
        if expired:
            log.info("expired %d heartbeat row(s) of workers gone quiet", expired)
    except sa.exc.SQLAlchemyError:
        with _lock:
            _last_recorded.pop(backend, None)  # try again next time
        log.warning("could not record the %s sweep", backend, exc_info=True)
        return False
    return True


def _upsert(dialect: str, backend: str, now: datetime) -> sa.Executable:
    """One statement, so that two processes recording at once cannot collide."""
    values = {"backend": backend, "last_run_at": now}
    keys = [EngineSweep.backend]
    if dialect == "postgresql":
        pg = postgresql_insert(EngineSweep).values(values)
        return pg.on_conflict_do_update(index_elements=keys, set_={"last_run_at": now})
    lite = sqlite_insert(EngineSweep).values(values)
    return lite.on_conflict_do_update(index_elements=keys, set_={"last_run_at": now})


def forget_recorded() -> None:
    """Write on the next call again (tests, and a process that changed databases)."""
    with _lock:
        _last_recorded.clear()


def last_sweep(conn: sa.Connection, backend: str) -> datetime | None:
    value: datetime | None = conn.scalar(
        sa.select(EngineSweep.last_run_at).where(EngineSweep.backend == backend)
    )
    return value
