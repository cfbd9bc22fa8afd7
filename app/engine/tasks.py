"""The Celery backend's tasks. The database decides; a message only says where to look.

Each worker process also runs the worker loop in a thread (``Worker.start_loop``):
woken by PostgreSQL NOTIFY when an incident event or a run is committed, it starts
runs at once and drives many at a time. The periodic tasks below are the safety
net that keeps runs moving when a wake-up is lost or no process listens.

- ``advance_run(id)`` claims the run in the database (only if it is due, or handed
  to the broker and not yet taken), drives it with the embedded worker's drive
  (``drive.RunDriver.drive``), and when
  its slice is used up hands it back to the broker. A message for a run that has
  ended, waits, or is leased by another worker does nothing, so duplicates are
  harmless.
- ``dispatch_due`` (beat, every 2 s) sends ``advance_run`` for every run whose
  ``due_at`` has come: new runs, runs woken from a delay or a retry backoff, runs
  whose worker's lease expired, and runs whose message was lost. It marks them
  handed to the broker (``lease_owner = "queue"``, ``due_at`` = now + the dispatch
  window), so they are sent once, and again only if nobody took them in time.
- ``consume_events`` (beat, every 2 s) starts runs for incident events and
  dispatches them at once; ``scan_age`` (beat, every 30 s) starts ``age`` runs.

A step that kills its worker cannot loop: each claim counts a delivery of the
current step (``step_deliveries``, reset when a step commits), and the delivery
after ``ENGINE_MAX_DELIVERIES`` ends the run FAILED instead of trying again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from celery import Celery, signals
from flask import Flask, current_app

from app.engine import store, triggers
from app.engine.celery_app import (
    ADVANCE_RUN,
    CONSUME_EVENTS,
    DISPATCH_DUE,
    SCAN_AGE,
    CelerySettings,
    celery_for,
)
from app.engine.clock import Clock, SystemClock
from app.engine.drive import RunDriver
from app.engine.runner import Next
from app.engine.worker import Worker, WorkerSettings, commit_without_waiting
from app.extensions import db
from app.ops.sweep import record_sweep
from app.workflows.models import WorkflowExecution

log = logging.getLogger("incidentflow.engine.tasks")

# ``lease_owner`` of a run handed to the broker and not yet taken by a worker.
QUEUED = "queue"
_PROCESS_WORKER = "incidentflow.celery_process_worker"
# consume_events works through a backlog for at most this long per task.
_CONSUME_BUDGET_SECONDS = 5.0
_DISPATCH_MAX_BATCHES = 10
# A dispatch of up to this many runs goes one run per message.
_SPREAD = 8

Send = Callable[[list[str]], None]


# --- the database side: plain functions, given a clock, a run driver and a sender ----


def dispatch_due(send: Send, clock: Clock, settings: CelerySettings) -> int:
    """Hand every due run to the broker once; returns how many were sent."""
    sent = 0
    for _ in range(_DISPATCH_MAX_BATCHES):
        now = clock.now()
        ids = store.due_ids(now, settings.dispatch_batch)
        if not ids:
            db.session.rollback()
            break
        # Marked first, sent after: a failed send leaves the runs to the next window.
        store.queue_for_broker(ids, now, settings.dispatch_window_seconds, queued=QUEUED)
        send(ids)
        sent += len(ids)
        if len(ids) < settings.dispatch_batch:
            break
    return sent


def take(
    execution_id: str, owner: str, clock: Clock, lease_seconds: float
) -> WorkflowExecution | None:
    """Take one run if it is due or waiting for a worker in the broker (``store.take``)."""
    return store.take(execution_id, owner, clock.now(), lease_seconds, queued=QUEUED)


def claim(execution_id: str, owner: str, clock: Clock, lease_seconds: float) -> int | None:
    """Take one run (see ``take``); returns the deliveries of its current step counting
    this one, or None when the run is not ours to take."""
    taken = take(execution_id, owner, clock, lease_seconds)
    return None if taken is None else taken.step_deliveries


def hand_back(execution_id: str, clock: Clock, settings: CelerySettings) -> bool:
    """Re-queue a run its worker let go of although it can go on now (its slice ended)."""
    return store.requeue_if_free(
        execution_id, clock.now(), settings.dispatch_window_seconds, queued=QUEUED
    )


def advance(execution_id: str, runs: RunDriver, send: Send, settings: CelerySettings) -> str:
    """One delivery of ``advance_run``: claim, drive (``runs``, this process's worker,
    drives it as the embedded worker does), hand back. Returns what happened."""
    taken = take(execution_id, runs.worker_id, runs.clock, runs.settings.lease_seconds)
    if taken is None:
        return "not due"  # ended, waiting, or someone else's: a duplicate or late message
    if taken.step_deliveries > runs.settings.max_deliveries:
        runs.stop_crashing_run(execution_id, taken.step_deliveries - 1)
        return "stopped"
    # Only a run whose slice ended can go on now; one that waits or ended needs no message.
    if runs.drive(execution_id, taken) == Next.CONTINUE and hand_back(
        execution_id, runs.clock, settings
    ):
        send([execution_id])
        return "handed back"
    return "driven"


def advance_each(
    execution_ids: list[str], runs: RunDriver, send: Send, settings: CelerySettings
) -> list[str]:
    """One ``advance_run`` message: each run it names, in turn. Returns what happened to each."""
    outcomes = []
    for execution_id in execution_ids:
        try:
            outcomes.append(advance(execution_id, runs, send, settings))
        except Exception:
            # One run's trouble (its database claim failed) must not hold up the others:
            # it stays handed to the broker and is sent again after the dispatch window.
            db.session.rollback()
            log.exception("advance_run failed", extra={"execution_id": execution_id})
            outcomes.append("failed")
    return outcomes


def consume_events(clock: Clock, settings: CelerySettings) -> int:
    """Start runs for waiting incident events (a backlog in batches); returns events done."""
    done = 0
    deadline = clock.monotonic() + _CONSUME_BUDGET_SECONDS
    while True:
        try:
            count = triggers.consume_events(clock, settings.event_batch)
            db.session.commit()
        except sa.exc.IntegrityError:
            # Another consumer started the same runs first (SQLite has no SKIP LOCKED).
            db.session.rollback()
            break
        done += count
        if count < settings.event_batch or clock.monotonic() >= deadline:
            break
    return done


def scan_age(clock: Clock) -> int:
    try:
        started = triggers.scan_age(clock)
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()  # an overlapping scan started them; each runs once anyway
        return 0
    return started


# --- the Celery side ------------------------------------------------------------------


def _worker_id() -> str:
    host = socket.gethostname()[:32]
    return f"celery:{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def start_process_worker(app: Flask) -> Worker:
    """This process's worker identity: its leases, and a heartbeat that keeps them alive."""
    clock: Clock = app.config.get("ENGINE_CLOCK") or SystemClock()
    commit_without_waiting(app)
    settings = WorkerSettings.from_config(app.config)
    settings.max_deliveries = CelerySettings.from_config(app.config).max_deliveries
    worker = Worker(
        app,
        clock=clock,
        settings=settings,
        worker_id=_worker_id(),
        backend="celery",
    )
    app.extensions[_PROCESS_WORKER] = (os.getpid(), worker)
    # The same loop as the embedded worker, in a thread: woken by committed work
    # (LISTEN/NOTIFY), it starts runs without waiting for beat, and drives many at once.
    worker.start_loop()
    return worker


def process_worker(app: Flask) -> Worker:
    held = app.extensions.get(_PROCESS_WORKER)
    if held is not None and held[0] == os.getpid():
        worker: Worker = held[1]
        return worker
    return start_process_worker(app)


def stop_process_worker(app: Flask) -> None:
    held = app.extensions.pop(_PROCESS_WORKER, None)
    if held is None or held[0] != os.getpid():
        return
    try:
        held[1].forget()
    except Exception:
        log.exception("could not remove the worker's heartbeat")


def run_process_workers(app: Flask) -> None:
    """Give each Celery worker process of ``celery_worker`` its worker (``start_process_worker``)
    when it starts, and hand back its runs when it stops."""

    @signals.worker_process_init.connect(weak=False)
    def start_process(**_: Any) -> None:
        # A forked child must not share its parent's database connections.
        with app.app_context():
            db.engine.dispose(close=False)
            start_process_worker(app)

    @signals.worker_process_shutdown.connect(weak=False)
    def stop_process(**_: Any) -> None:
        with app.app_context():
            stop_process_worker(app)

    @signals.worker_shutdown.connect(weak=False)
    def stop_worker(**_: Any) -> None:
        # The solo pool runs tasks in the main process and sends no process_shutdown.
        with app.app_context():
            stop_process_worker(app)


def messages_for(ids: list[str], settings: CelerySettings) -> list[list[str]]:
    """Split runs over ``advance_run`` messages.

    A few runs go one per message, so idle worker processes take them in
    parallel; a backlog goes up to ``runs_per_message`` per message, so the
    broker passes (and workers decode and acknowledge) fewer messages.
    """
    size = max(1, min(settings.runs_per_message, -(-len(ids) // _SPREAD)))
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def publish(celery: Celery, ids: Iterable[str], settings: CelerySettings | None = None) -> None:
    """Send ``advance_run`` for the runs, over one connection."""
    settings = settings or CelerySettings()
    with celery.producer_or_acquire() as producer:
        for batch in messages_for(list(ids), settings):
            celery.send_task(ADVANCE_RUN, args=[batch], producer=producer)


def _sender() -> Send:
    celery = celery_for(current_app._get_current_object())  # type: ignore[attr-defined]
    settings = _settings()
    return lambda ids: publish(celery, ids, settings)


def _clock() -> Clock:
    clock: Clock = current_app.config.get("ENGINE_CLOCK") or SystemClock()
    return clock


def _settings() -> CelerySettings:
    return CelerySettings.from_config(current_app.config)


def advance_run_task(execution_ids: str | list[str]) -> list[str]:
    """Advance each run the database says is due (``advance_run``; one id or a list)."""
    worker = process_worker(current_app._get_current_object())  # type: ignore[attr-defined]
    ids = [execution_ids] if isinstance(execution_ids, str) else execution_ids
    return advance_each(ids, worker, _sender(), _settings())


def dispatch_due_task() -> int:
    """Send every due run to the workers (``dispatch_due``, periodic)."""
    record_sweep("celery", _clock().now())  # readiness: beat and a worker are running
    return dispatch_due(_sender(), _clock(), _settings())


def consume_events_task() -> int:
    """Start runs for new incident events; this process's loop takes them at once.

    Sent after each commit that adds work (``wake.use_broker``), so one worker process
    wakes per change, and by beat as a safety net."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    done = consume_events(_clock(), _settings())
    process_worker(app).poke()
    return done


def scan_age_task() -> int:
    """Start ``age`` runs for incidents past a workflow's threshold (periodic)."""
    return scan_age(_clock())


def register(celery: Celery) -> None:
    """Register the engine's tasks on this Celery app (not on every app: shared=False)."""
    celery.task(name=ADVANCE_RUN, shared=False)(advance_run_task)
    celery.task(name=DISPATCH_DUE, shared=False)(dispatch_due_task)
    celery.task(name=CONSUME_EVENTS, shared=False)(consume_events_task)
    celery.task(name=SCAN_AGE, shared=False)(scan_age_task)
