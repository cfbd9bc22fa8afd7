"""The embedded worker: claims due runs with a lease, advances them, starts new ones.

One loop does everything the engine needs on one machine: consume incident
events, scan for ``age`` triggers, claim runs whose ``due_at`` has come (new,
woken from a delay or a backoff, or abandoned by a worker whose lease expired)
and advance each one step at a time, committing before every action and
whenever a run waits or ends.

Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never
take the same run; SQLite serialises writers, so one worker at a time there.
A heartbeat thread keeps the leases of runs in progress alive and records the
worker in ``worker_heartbeat``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.engine import triggers
from app.engine.clock import Clock, SystemClock
from app.engine.runner import Engine, Next, RunMemo, advance, fail, next_action
from app.extensions import db
from app.ops.settings import engine_overrides
from app.ops.sweep import record_sweep
from app.workflows.models import WorkerHeartbeat, WorkflowExecution

log = logging.getLogger("incidentflow.engine.worker")


# What a step may change on a run; save_progress writes these back.
_STEP_COLUMNS = (
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
_RUNS = WorkflowExecution.__table__
# Built once: constructing the statement per step costs more than running it.
_SAVE_PROGRESS = (
    _RUNS.update()
    .where(
        _RUNS.c.id == sa.bindparam("run_id"),
        _RUNS.c.row_version == sa.bindparam("read_version"),
    )
    .values(
        {name: sa.bindparam(name) for name in _STEP_COLUMNS}
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
    values = {name: getattr(execution, name) for name in _STEP_COLUMNS}
    written = (
        db.session.connection()
        .execute(_SAVE_PROGRESS, values | {"run_id": execution.id, "read_version": version})
        .rowcount
    )
    if written != 1:
        return False
    execution.row_version = version + 1
    return True


_ASYNC_COMMIT = "incidentflow.async_commit"


def commit_without_waiting(app: Flask) -> bool:
    """Whether this worker process's database connections commit without waiting for
    the disk, and if so, set them up to. ``ENGINE_ASYNC_COMMIT`` (env
    ``INCIDENTFLOW_ENGINE_ASYNC_COMMIT``): ``1``/``0``; unset means on for SQLite (the
    embedded default) and off for PostgreSQL.

    For worker processes only (``flask worker run``, Celery workers): their commits
    are the engine's bookkeeping. SQLite gets ``synchronous = NORMAL`` (with WAL, what
    SQLite recommends), PostgreSQL ``synchronous_commit = off``. A crash of the worker
    loses nothing; a crash of the operating system, the machine or the database server
    can lose the last fraction of a second of step commits, which are then done again
    (a request again, with its Idempotency-Key). Incident changes are committed by the
    web processes, which always wait for the disk, and a later durable commit makes
    earlier ones durable too, so no run is lost.

    Raises RuntimeError for a value that is neither yes nor no.
    """
    from app.ops.settings import config_setting

    raw = str(config_setting(app.config, "ENGINE_ASYNC_COMMIT") or "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        wanted = True
    elif raw in ("0", "false", "no", "off"):
        wanted = False
    elif raw == "":
        with app.app_context():
            wanted = db.engine.dialect.name == "sqlite"
    else:
        raise RuntimeError(f"ENGINE_ASYNC_COMMIT must be 1 or 0 (yes or no), not {raw!r}.")
    if not wanted:
        return False
    if app.extensions.get(_ASYNC_COMMIT):
        return True
    app.extensions[_ASYNC_COMMIT] = True
    with app.app_context():
        engine = db.engine
        statement = (
            "PRAGMA synchronous=NORMAL"
            if engine.dialect.name == "sqlite"
            else "SET synchronous_commit TO off"
        )

        def relax(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(statement)
            cursor.close()
            if engine.dialect.name != "sqlite":
                dbapi_connection.commit()  # a session setting, kept after the transaction

        sa.event.listen(engine, "connect", relax)
        engine.dispose(close=False)  # connections opened before get it when replaced
    return True


@dataclass
class WorkerSettings:
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    idle_poll_seconds: float = 0.02
    claim_batch: int = 20
    event_batch: int = 200
    age_scan_seconds: float = 30.0
    # A run is handed back after this long, so one busy run cannot starve the others.
    slice_seconds: float = 2.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkerSettings:
        """Settings from ``ENGINE_*`` config keys (env ``INCIDENTFLOW_ENGINE_*``)."""
        names = (
            "lease_seconds",
            "heartbeat_seconds",
            "idle_poll_seconds",
            "age_scan_seconds",
            "slice_seconds",
        )
        values = engine_overrides(config, ((name, float) for name in names))
        return cls(**values)


@dataclass
class Worker:
    app: Flask
    clock: Clock = field(default_factory=SystemClock)
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    backend: str = "embedded"

    def __post_init__(self) -> None:
        self.engine = Engine(clock=self.clock)
        self.stopping = threading.Event()
        self._in_progress: set[str] = set()
        self._lock = threading.Lock()
        self._next_age_scan = 0.0

    # --- one pass ---------------------------------------------------------

    def run_once(self) -> int:
        """Do whatever is due now; returns how much work was found (0 = idle)."""
        record_sweep("embedded", self.clock.now())  # readiness: the sweep runs
        work = self.consume_events()
        if self.clock.monotonic() >= self._next_age_scan:
            work += self.scan_age()
            self._next_age_scan = self.clock.monotonic() + self.settings.age_scan_seconds
        for execution_id in self.claim(self.settings.claim_batch):
            work += 1
            self.drive(execution_id)
        return work

    def consume_events(self) -> int:
        count = triggers.consume_events(self.clock, self.settings.event_batch)
        db.session.commit()
        return count

    def scan_age(self) -> int:
        count = triggers.scan_age(self.clock)
        db.session.commit()
        return count

    def claim(self, limit: int) -> list[str]:
        """Take up to ``limit`` due runs: this worker holds each until its lease expires."""
        now = self.clock.now()
        due = (
            sa.select(WorkflowExecution.id)
            .where(WorkflowExecution.due_at <= now)
            .order_by(WorkflowExecution.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(db.session.scalars(due))
        if not ids:
            db.session.rollback()
            return []
        db.session.execute(
            sa.update(WorkflowExecution)
            .where(WorkflowExecution.id.in_(ids))
            .values(
                lease_owner=self.worker_id,
                due_at=now + timedelta(seconds=self.settings.lease_seconds),
                row_version=WorkflowExecution.row_version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return ids

    def drive(self, execution_id: str, taken: WorkflowExecution | None = None) -> Next | None:
        """Advance one claimed run until it waits, ends, or its slice is used.

        Returns the last step's outcome (CONTINUE: handed back when the slice
        ended), or None when the run was not driven to a commit (cancelled,
        taken over, or a step failed).

        The run is read once; steps without outside effects share the commit of
        the steps around them, and a commit comes before every action (so the
        run says where it is, and all it did before, before a request goes out)
        and when the run stops. ``taken``: the run as this worker's claim returned it,
        detached from the session (it is not read again).
        """
        with self._lock:
            self._in_progress.add(execution_id)
        slice_end = self.clock.monotonic() + self.settings.slice_seconds
        memo = RunMemo()
        try:
            execution = taken or db.session.get(
                WorkflowExecution, execution_id, populate_existing=True
            )
            if execution is None or execution.lease_owner != self.worker_id:
                db.session.rollback()
                return None  # cancelled, or taken over after our lease ran out
            if taken is None:
                # Written back by save_progress, one UPDATE per commit, not by the session.
                db.session.expunge(execution)
            while True:
                outcome = advance(execution, self.engine, memo)
                go_on = outcome == Next.CONTINUE and self.clock.monotonic() < slice_end
                upcoming = next_action(execution) if go_on else None
                if go_on and upcoming is None:
                    continue  # nothing has left this process yet: no commit needed
                if go_on:
                    execution.current_node_id = upcoming
                    execution.due_at = self.clock.now() + timedelta(
                        seconds=self.settings.lease_seconds
                    )
                elif outcome == Next.CONTINUE:
                    execution.due_at = self.clock.now()  # slice used: back in line
                    execution.lease_owner = None
                else:
                    execution.lease_owner = None
                # The step is done: only a delivery that begins the next one counts for it.
                execution.step_deliveries = 1 if go_on else 0
                if not save_progress(execution):
                    # Someone else changed the run meanwhile (a cancel): theirs stands.
                    db.session.rollback()
                    log.info(
                        "step discarded: run changed meanwhile",
                        extra={"execution_id": execution_id},
                    )
                    return None
                db.session.commit()
                if not go_on:
                    return outcome
        except sa.exc.DBAPIError:
            db.session.rollback()
            log.exception("database error during a step", extra={"execution_id": execution_id})
            # Leave the lease to expire: the step is retried after it, by any worker.
            return None
        except Exception as error:
            db.session.rollback()
            log.exception("step crashed", extra={"execution_id": execution_id})
            self._fail_after_crash(execution_id, error)
            return None
        finally:
            with self._lock:
                self._in_progress.discard(execution_id)

    def _fail_after_crash(self, execution_id: str, error: Exception) -> None:
        """A bug, not a passing outage: end the run rather than crash on it forever."""
        execution = db.session.get(WorkflowExecution, execution_id, populate_existing=True)
        if execution is None or execution.lease_owner != self.worker_id:
            db.session.rollback()
            return
        node = execution.current_node_id or "?"
        # The type only: an exception's text could carry a secret.
        fail(
            execution,
            self.clock.now(),
            f"Internal error at node {node} ({type(error).__name__}); see the worker log.",
        )
        try:
            db.session.commit()
        except sa.exc.SQLAlchemyError:
            db.session.rollback()

    # --- liveness ---------------------------------------------------------

    def heartbeat(self) -> None:
        """Record this worker as alive and extend the leases of runs in progress."""
        now = self.clock.now()
        with self._lock:
            running = list(self._in_progress)
        with db.engine.begin() as conn:
            if running:
                conn.execute(
                    sa.update(WorkflowExecution)
                    .where(
                        WorkflowExecution.id.in_(running),
                        WorkflowExecution.lease_owner == self.worker_id,
                    )
                    .values(due_at=now + timedelta(seconds=self.settings.lease_seconds))
                )
            updated = conn.execute(
                sa.update(WorkerHeartbeat)
                .where(WorkerHeartbeat.id == self.worker_id)
                .values(last_seen_at=now)
            ).rowcount
            if not updated:
                conn.execute(
                    sa.insert(WorkerHeartbeat).values(
                        id=self.worker_id,
                        hostname=socket.gethostname(),
                        pid=os.getpid(),
                        backend=self.backend,
                        started_at=now,
                        last_seen_at=now,
                    )
                )

    def start_heartbeat(self) -> threading.Thread:
        """Record this worker now, then keep it and its leases alive from a daemon thread."""
        try:
            self.heartbeat()
        except Exception:
            log.exception("heartbeat failed")
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        return beat

    def forget(self) -> None:
        """Stop the heartbeat and remove this worker's row (a clean stop)."""
        self.stopping.set()
        with db.engine.begin() as conn:
            conn.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.id == self.worker_id))

    def _heartbeat_loop(self) -> None:
        with self.app.app_context():
            while not self.stopping.is_set():
                try:
                    self.heartbeat()
                except Exception:
                    log.exception("heartbeat failed")
                self.clock.sleep(self.settings.heartbeat_seconds, until=self.stopping)

    # --- the loop ---------------------------------------------------------

    def run_forever(self) -> None:
        """Work until ``stop()``; sleeps briefly only when there is nothing to do."""
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        with self.app.app_context():
            self.heartbeat()
            beat.start()
            log.info("worker started", extra={"worker_id": self.worker_id})
            try:
                while not self.stopping.is_set():
                    try:
                        idle = self.run_once() == 0
                    except Exception:
                        db.session.rollback()
                        log.exception("worker pass failed")
                        idle = True
                    finally:
                        db.session.remove()
                    if idle:
                        self.clock.sleep(self.settings.idle_poll_seconds, until=self.stopping)
            finally:
                self.stopping.set()
                beat.join(timeout=5)
                with db.engine.begin() as conn:
                    conn.execute(
                        sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.id == self.worker_id)
                    )
                log.info("worker stopped", extra={"worker_id": self.worker_id})

    def stop(self) -> None:
        self.stopping.set()
