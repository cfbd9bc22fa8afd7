"""The run store: every statement that changes who holds a run and when it is due.

Like a job queue's manager module, this is the one place that knows how run state
is claimed, written back, renewed, handed back and cancelled, and how workers'
heartbeats are recorded and expired. The embedded worker, the Celery tasks, the
drive of a run (``drive``) and the run service orchestrate; they do not write
run-state SQL.

A run is *due* when ``due_at <= now``. While a worker holds it, ``lease_owner`` names
the worker and ``due_at`` is the lease's expiry, renewed by the worker's heartbeat
for every run it holds; when the worker dies, the lease runs out and the run is
due again, ahead of newer work.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.engine import runner
from app.extensions import db
from app.workflows.models import WorkerHeartbeat, WorkflowExecution

_RUNS = WorkflowExecution.__table__

# What a step may change on a run; save_progress writes these back.
STEP_COLUMNS = (
    "status",
    "current_node_id",
    "completed_nodes",
    "error",
    "started_at",
    "completed_at",
    "failed_at",
    "due_at",
    "lease_owner",
    "parked_until",
    "attempt",
    "working_ms",
    "step_deliveries",
)
# Built once: constructing the statement per step costs more than running it.
_SAVE_PROGRESS = (
    _RUNS.update()
    .where(
        _RUNS.c.id == sa.bindparam("run_id"),
        _RUNS.c.row_version == sa.bindparam("read_version"),
    )
    .values(
        {name: sa.bindparam(name) for name in STEP_COLUMNS}
        | {"row_version": sa.bindparam("read_version") + 1}
    )
)


def save_progress(execution: WorkflowExecution) -> bool:
    """Write a run driven outside the session back, if nobody changed it since it was read.

    One UPDATE guarded by ``row_version`` (what the ORM's version check does,
    without its unit of work): False when a cancel or another worker changed
    the run meanwhile, and then nothing is written.
    """
    version = execution.row_version
    values = {name: getattr(execution, name) for name in STEP_COLUMNS}
    written = (
        db.session.connection()
        .execute(_SAVE_PROGRESS, values | {"run_id": execution.id, "read_version": version})
        .rowcount
    )
    if written != 1:
        return False
    execution.row_version = version + 1
    return True


def held_run(execution_id: str, owner: str) -> WorkflowExecution | None:
    """The run as the database has it now, if ``owner`` still holds it; else None,
    and the read transaction is ended (cancelled, or taken over after the lease ran out)."""
    execution = db.session.get(WorkflowExecution, execution_id, populate_existing=True)
    if execution is None or execution.lease_owner != owner:
        db.session.rollback()
        return None
    return execution


def cancel(execution: WorkflowExecution, now: datetime, by: str) -> None:
    """End a pending, running or parked run CANCELLED (``runner.cancel``). Flushes.

    The ORM's UPDATE, guarded by ``row_version``: a worker driving the run meanwhile
    has its next ``save_progress`` refused, so the cancel stands.
    """
    runner.cancel(execution, now, by)
    db.session.flush()


def _due_ids(now: datetime, limit: int, *, leased: bool) -> list[str]:
    query = sa.select(WorkflowExecution.id).where(WorkflowExecution.due_at <= now)
    if leased:
        # A lease that ran out: its worker died holding the run.
        query = query.where(WorkflowExecution.lease_owner.is_not(None))
    return list(
        db.session.scalars(
            query.order_by(WorkflowExecution.due_at).limit(limit).with_for_update(skip_locked=True)
        )
    )


def due_ids(now: datetime, limit: int) -> list[str]:
    """Up to ``limit`` due runs, locked (SKIP LOCKED): expired leases first, then the
    rest oldest first, so a run stranded by a dead worker never queues behind a
    backlog of newer work."""
    ids = _due_ids(now, limit, leased=True)
    if len(ids) < limit:
        seen = set(ids)
        ids += [i for i in _due_ids(now, limit, leased=False) if i not in seen][: limit - len(ids)]
    return ids


def queue_for_broker(ids: list[str], now: datetime, window_seconds: float, *, queued: str) -> None:
    """Mark runs handed to the broker: not sent again for ``window_seconds``. Committed."""
    db.session.execute(
        sa.update(WorkflowExecution)
        .where(WorkflowExecution.id.in_(ids))
        .values(
            lease_owner=queued,
            due_at=now + timedelta(seconds=window_seconds),
            # A worker whose lease ran out must not commit a step over this.
            row_version=WorkflowExecution.row_version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def claim(owner: str, limit: int, now: datetime, lease_seconds: float) -> list[WorkflowExecution]:
    """Take up to ``limit`` due runs for ``owner``; committed.

    Returns the runs as the claim left them (one UPDATE ... RETURNING, detached
    from the session and ready to drive: nobody reads them again), oldest due first.
    """
    if limit <= 0:
        return []
    ids = due_ids(now, limit)
    if not ids:
        db.session.rollback()
        return []
    runs = list(
        db.session.scalars(
            sa.update(WorkflowExecution)
            .where(WorkflowExecution.id.in_(ids))
            .values(
                lease_owner=owner,
                due_at=now + timedelta(seconds=lease_seconds),
                row_version=WorkflowExecution.row_version + 1,
                step_deliveries=WorkflowExecution.step_deliveries + 1,
            )
            .returning(WorkflowExecution)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    )
    for run in runs:
        db.session.expunge(run)  # as committed: the commit must not expire them
    db.session.commit()
    order = {run_id: n for n, run_id in enumerate(ids)}
    return sorted(runs, key=lambda run: order[run.id])


def take(
    execution_id: str, owner: str, now: datetime, lease_seconds: float, *, queued: str
) -> WorkflowExecution | None:
    """Take one run if it is due, or handed to the broker (``lease_owner == queued``).

    Returns the run as the claim left it (detached, ready to drive: no second
    read), its ``step_deliveries`` counting this delivery; None when the run is
    not ours to take (ended, waiting, or leased by another worker). Committed.
    """
    taken = db.session.execute(
        sa.update(WorkflowExecution)
        .where(
            WorkflowExecution.id == execution_id,
            WorkflowExecution.due_at.is_not(None),
            sa.or_(WorkflowExecution.due_at <= now, WorkflowExecution.lease_owner == queued),
        )
        .values(
            lease_owner=owner,
            due_at=now + timedelta(seconds=lease_seconds),
            row_version=WorkflowExecution.row_version + 1,
            step_deliveries=WorkflowExecution.step_deliveries + 1,
        )
        .returning(WorkflowExecution)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalar_one_or_none()
    if taken is not None:
        db.session.expunge(taken)  # as committed: the commit must not expire it
    db.session.commit()
    return taken


def requeue_if_free(
    execution_id: str, now: datetime, window_seconds: float, *, queued: str
) -> bool:
    """Hand a run its worker let go of (slice ended) back to the broker. Committed."""
    handed = db.session.execute(
        sa.update(WorkflowExecution)
        .where(
            WorkflowExecution.id == execution_id,
            WorkflowExecution.lease_owner.is_(None),
            WorkflowExecution.due_at <= now,
        )
        .values(
            lease_owner=queued,
            due_at=now + timedelta(seconds=window_seconds),
            row_version=WorkflowExecution.row_version + 1,
        )
        .returning(WorkflowExecution.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    db.session.commit()
    return handed is not None


def hand_back(owner: str, ids: Iterable[str], now: datetime) -> int:
    """Give runs ``owner`` claimed but did not start back to every worker, due now."""
    wanted = list(ids)
    if not wanted:
        return 0
    with db.engine.begin() as conn:
        return conn.execute(
            sa.update(WorkflowExecution)
            .where(WorkflowExecution.id.in_(wanted), WorkflowExecution.lease_owner == owner)
            .values(
                lease_owner=None,
                due_at=now,
                row_version=WorkflowExecution.row_version + 1,
            )
        ).rowcount


def next_due_at() -> datetime | None:
    """When the earliest run becomes due (a wake-up, a backoff, a lease expiry), if any."""
    return db.session.scalar(sa.select(sa.func.min(WorkflowExecution.due_at)))


def renew(owner: str, now: datetime, lease_seconds: float) -> int:
    """Extend the lease of every run ``owner`` holds (running or waiting for a thread),
    and record the worker as alive. Returns how many leases were renewed."""
    with db.engine.begin() as conn:
        renewed = conn.execute(
            sa.update(WorkflowExecution)
            .where(WorkflowExecution.lease_owner == owner)
            .values(due_at=now + timedelta(seconds=lease_seconds))
        ).rowcount
        _beat(conn, owner, now)
    return int(renewed)


def _beat(conn: sa.Connection, owner: str, now: datetime, backend: str | None = None) -> None:
    updated = conn.execute(
        sa.update(WorkerHeartbeat).where(WorkerHeartbeat.id == owner).values(last_seen_at=now)
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(WorkerHeartbeat).values(
                id=owner,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                backend=backend or ("celery" if owner.startswith("celery:") else "embedded"),
                started_at=now,
                last_seen_at=now,
            )
        )


def expire_heartbeats(conn: sa.Connection, before: datetime) -> int:
    """Delete the heartbeat rows of workers silent since before ``before``; returns how many."""
    return int(
        conn.execute(
            sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < before)
        ).rowcount
    )


def register_worker(owner: str, backend: str, now: datetime) -> None:
    with db.engine.begin() as conn:
        _beat(conn, owner, now, backend)


def forget_worker(owner: str, now: datetime) -> None:
    """A clean stop: hand back every run the worker still holds and remove its row."""
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(WorkflowExecution)
            .where(WorkflowExecution.lease_owner == owner)
            .values(
                lease_owner=None,
                due_at=now,
                row_version=WorkflowExecution.row_version + 1,
            )
        )
        conn.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.id == owner))
