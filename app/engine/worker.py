"""The worker: claims due runs with a lease, advances them, starts new ones.

One loop does everything the engine needs: consume incident events, scan for
``age`` triggers, claim runs whose ``due_at`` has come (new, woken from a delay
or a backoff, or abandoned by a worker whose lease expired) and drive each one
on a pool of threads (``driver.ConcurrentDriver``) with ``drive.RunDriver.drive``,
the drive the Celery tasks use too. The embedded worker
(``flask worker run``) runs this loop in its main thread; each Celery worker
process runs it in a thread of its own (``tasks``).

The loop sleeps until there may be work: a commit that adds work wakes it
(``wake``), as does a run finishing (a thread is free) and the next ``due_at``;
a slow poll is only a safety net. Claims use ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several workers never take the same run; SQLite serialises
writers, so one worker at a time there. A heartbeat thread renews the lease of
every run the worker holds and records the worker in ``worker_heartbeat``; all
run-state SQL is in ``store``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.engine import store, triggers
from app.engine.clock import Clock, SystemClock
from app.engine.drive import RunDriver
from app.engine.driver import ConcurrentDriver
from app.engine.wake import Waker
from app.extensions import db
from app.ops.settings import config_setting, engine_overrides
from app.ops.sweep import record_sweep
from app.workflows.models import WorkflowExecution

log = logging.getLogger("incidentflow.engine.worker")


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
    # The safety net: the loop looks for work at least this often even if nothing
    # woke it (a lost wake-up, a worker on another machine without LISTEN).
    idle_poll_seconds: float = 5.0
    claim_batch: int = 20
    event_batch: int = 200
    # math.inf: never (a benchmark that measures runs alone).
    age_scan_seconds: float = 30.0
    # A run is handed back after this long, so one busy run cannot starve the others.
    slice_seconds: float = 2.0
    # Runs driven at once by one worker process, each in its own thread.
    concurrency: int = 50
    # Requests in flight to one destination (scheme, host, port) per worker process.
    per_destination: int = 8
    # Seconds one request may take (a run's own timeout may cut it shorter).
    request_timeout: float = 30.0
    # The longest pause between tries while the database is unreachable.
    backoff_max_seconds: float = 30.0
    # Deliveries that may begin one step; the next one ends the run FAILED (a step
    # that kills its worker process every time must not loop forever).
    max_deliveries: int = 3

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkerSettings:
        """Settings from ``ENGINE_*`` config keys (env ``INCIDENTFLOW_ENGINE_*``);
        the request timeout from ``OUTBOUND_REQUEST_TIMEOUT``."""
        names: tuple[tuple[str, type], ...] = (
            ("lease_seconds", float),
            ("heartbeat_seconds", float),
            ("idle_poll_seconds", float),
            ("age_scan_seconds", float),
            ("slice_seconds", float),
            ("concurrency", int),
            ("per_destination", int),
            ("backoff_max_seconds", float),
            ("max_deliveries", int),
        )
        values = engine_overrides(config, names)
        timeout = config_setting(config, "OUTBOUND_REQUEST_TIMEOUT")
        if timeout is not None:
            values["request_timeout"] = float(timeout)
        settings = cls(**values)
        if settings.concurrency < 1 or settings.per_destination < 1:
            raise RuntimeError("ENGINE_CONCURRENCY and ENGINE_PER_DESTINATION must be at least 1.")
        if settings.request_timeout <= 0:
            raise RuntimeError("OUTBOUND_REQUEST_TIMEOUT must be a number of seconds above 0.")
        return settings


class Outage:
    """Backs off while the database is unreachable, and says so once each way."""

    def __init__(self, cap: float, rng: random.Random) -> None:
        self.cap = cap
        self.rng = rng
        self.failures = 0

    def failed(self, error: BaseException) -> float:
        """Count a failure; returns how long to pause (exponential, capped, with jitter)."""
        if self.failures == 0:
            log.error(
                "database unreachable; retrying with backoff",
                extra={"error": type(error).__name__},
            )
        self.failures += 1
        ceiling = min(self.cap, 0.1 * 2 ** min(self.failures, 16))
        return self.rng.uniform(ceiling / 2, ceiling)

    def recovered(self) -> None:
        if self.failures:
            log.info("database reachable again", extra={"failures": self.failures})
            self.failures = 0


@dataclass
class Worker(RunDriver):
    """A worker process's loop around ``RunDriver``: claims due runs and drives each in
    a thread of its own, starts runs for incident events, and keeps its leases alive."""

    app: Flask
    clock: Clock = field(default_factory=SystemClock)
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    backend: str = "embedded"

    def __post_init__(self) -> None:
        RunDriver.__init__(self, self.worker_id, self.clock, self.settings)
        self._next_age_scan = 0.0
        self._waker: Waker | None = None
        self.driver: ConcurrentDriver[WorkflowExecution] | None = None

    # --- one pass (synchronous: tests and ``flask worker run --once``) -----

    def run_once(self) -> int:
        """Do whatever is due now, one run after another; returns how much work was found."""
        record_sweep("embedded", self.clock.now())  # readiness: the sweep runs
        work = self.consume_events() + self._maybe_scan_age()
        claimed = self.claim_runs(self.settings.claim_batch)
        for index, run in enumerate(claimed):
            if self.stopping.is_set():
                # Stopping: runs not started go back to every worker at once.
                store.hand_back(self.worker_id, [r.id for r in claimed[index:]], self.clock.now())
                break
            work += 1
            self.drive(run.id, run)
        return work

    def consume_events(self) -> int:
        count = triggers.consume_events(self.clock, self.settings.event_batch)
        db.session.commit()
        return count

    def scan_age(self) -> int:
        count = triggers.scan_age(self.clock)
        db.session.commit()
        return count

    def _maybe_scan_age(self) -> int:
        if self.settings.age_scan_seconds == float("inf"):
            return 0
        if self.clock.monotonic() < self._next_age_scan:
            return 0
        self._next_age_scan = self.clock.monotonic() + self.settings.age_scan_seconds
        return self.scan_age()

    def claim(self, limit: int) -> list[str]:
        """Take up to ``limit`` due runs: this worker holds each until its lease expires."""
        return [run.id for run in self.claim_runs(limit)]

    def claim_runs(self, limit: int) -> list[WorkflowExecution]:
        """``claim``, returning the runs ready to drive (detached, not read again)."""
        return store.claim(self.worker_id, limit, self.clock.now(), self.settings.lease_seconds)

    # --- liveness ---------------------------------------------------------

    def heartbeat(self) -> None:
        """Record this worker as alive and extend the lease of every run it holds."""
        store.renew(self.worker_id, self.clock.now(), self.settings.lease_seconds)

    def start_heartbeat(self) -> threading.Thread:
        """Record this worker now, then keep it and its leases alive from a daemon thread."""
        try:
            with self.app.app_context():
                store.register_worker(self.worker_id, self.backend, self.clock.now())
        except Exception:
            log.exception("heartbeat failed")
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        return beat

    def forget(self) -> None:
        """Stop, hand back the runs still held and remove this worker's row (a clean stop).

        Runs being driven finish their current step first (they stop at their next
        commit), so a request in flight is not sent again by another worker."""
        self.stop()
        if self.driver is not None:
            self.driver.wait_idle(timeout=min(self.settings.request_timeout + 5, 60))
        with self.app.app_context():
            store.forget_worker(self.worker_id, self.clock.now())

    def _heartbeat_loop(self) -> None:
        with self.app.app_context():
            while not self.stopping.is_set():
                try:
                    self.heartbeat()
                except Exception:
                    log.warning("heartbeat failed; retrying", exc_info=True)
                self.clock.sleep(self.settings.heartbeat_seconds, until=self.stopping)

    # --- the loop ---------------------------------------------------------

    def _drive_in_thread(self, run: WorkflowExecution) -> None:
        with self.app.app_context():
            try:
                self.drive(run.id, run)
            finally:
                db.session.remove()

    def start_loop(self) -> threading.Thread:
        """Run the loop in a daemon thread (a Celery worker process), with a heartbeat."""
        self.start_heartbeat()
        loop = threading.Thread(target=self._loop, name="engine-loop", daemon=True)
        loop.start()
        return loop

    def run_forever(self) -> None:
        """Work until ``stop()``, then hand back what was not started and leave."""
        self.start_heartbeat()
        log.info("worker started", extra={"worker_id": self.worker_id})
        try:
            self._loop()
        finally:
            try:
                self.forget()  # runs in progress finish their step first
            except Exception:
                log.exception("could not hand back runs on stop")
            log.info("worker stopped", extra={"worker_id": self.worker_id})

    def _loop(self) -> None:
        with self.app.app_context():
            # Celery processes are woken by a broker message (one process per change);
            # a NOTIFY would wake every one of them.
            self._waker = Waker(
                db.engine.url.render_as_string(hide_password=False),
                listen=self.backend != "celery",
            )
        self.driver = ConcurrentDriver(
            self._drive_in_thread, self.settings.concurrency, on_free=self._waker.poke
        )
        outage = Outage(self.settings.backoff_max_seconds, random.Random())
        try:
            while not self.stopping.is_set():
                pause = self._pass(outage)
                if pause > 0 and not self.stopping.is_set():
                    self._waker.wait(pause)
        finally:
            self.driver.shutdown()
            self._waker.close()

    def _pass(self, outage: Outage) -> float:
        """Start what can start now; returns how long to sleep (0: go round again)."""
        assert self.driver is not None
        with self.app.app_context():
            try:
                record_sweep("embedded", self.clock.now())  # readiness: the sweep runs
                events = self.consume_events()
                self._maybe_scan_age()
                free = self.driver.free()
                claimed = self.claim_runs(min(free, self.settings.claim_batch)) if free else []
                for index, run in enumerate(claimed):
                    if not self.driver.submit(run):
                        left = [r.id for r in claimed[index:]]
                        store.hand_back(self.worker_id, left, self.clock.now())
                        break
                outage.recovered()
                if events >= self.settings.event_batch or (
                    claimed and len(claimed) == min(free, self.settings.claim_batch)
                ):
                    return 0 if self.driver.free() else self.settings.idle_poll_seconds
                return self._until_next_due()
            except (sa.exc.DBAPIError, sa.exc.InvalidRequestError) as error:
                db.session.rollback()
                return outage.failed(error)
            except Exception:
                db.session.rollback()
                log.exception("worker pass failed")
                return self.settings.idle_poll_seconds
            finally:
                db.session.remove()

    def _until_next_due(self) -> float:
        due = store.next_due_at()
        db.session.rollback()
        wait = self.settings.idle_poll_seconds
        if due is not None:
            wait = min(wait, (due - self.clock.now()).total_seconds())
        return max(wait, 0.001)

    def poke(self) -> None:
        """Make the loop look for work now (from any thread)."""
        if self._waker is not None:
            self._waker.poke()

    def stop(self) -> None:
        self.stopping.set()
        self.poke()
