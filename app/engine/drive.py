"""Driving a claimed run: the one place both engine backends advance runs.

A worker that holds a run (claimed by the embedded loop, ``store.claim``, or taken
by a Celery ``advance_run`` message, ``store.take``) drives it with
``RunDriver.drive``: ``runner.advance`` one node at a time, a commit
(``store.save_progress``) before every action and whenever the run waits (a delay
parks it) or ends, and the run handed back, due now, when its slice is used up. A
step that crashes ends the run FAILED; a step that crashed its worker more than
``max_deliveries`` times is not tried again (``stop_crashing_run``).

The embedded worker (``worker.Worker``, which is a ``RunDriver`` with a loop around
it) and the Celery tasks (``tasks.advance``) call the same code here; neither
drives a run on its own. Run-state SQL stays in ``store``.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from app.engine import store
from app.engine.clock import Clock
from app.engine.driver import DestinationSlots
from app.engine.runner import (
    Engine,
    Next,
    RunMemo,
    advance,
    fail,
    next_action,
    next_node,
    plan_for,
    results_of,
)
from app.extensions import db
from app.workflows.models import WorkflowExecution

# The worker's logger: these lines are what a worker did with a run, whichever backend.
log = logging.getLogger("incidentflow.engine.worker")


class DriveSettings(Protocol):
    """What driving a run needs of the worker's settings (``worker.WorkerSettings``)."""

    lease_seconds: float
    slice_seconds: float
    per_destination: int
    request_timeout: float
    max_deliveries: int


def _step_node(execution: WorkflowExecution) -> str:
    """The node the run's next step works on (what the crashing step was doing)."""
    if execution.parked_until is not None and execution.current_node_id:
        return execution.current_node_id
    try:
        plan = plan_for(execution)
        return next_node(plan, results_of(execution)) or execution.current_node_id or "?"
    except Exception:  # a snapshot that does not parse: say what we know
        return execution.current_node_id or "?"


class RunDriver:
    """Drives the runs one worker (``worker_id``) holds, one step at a time."""

    worker_id: str
    clock: Clock
    settings: DriveSettings

    def __init__(self, worker_id: str, clock: Clock, settings: DriveSettings) -> None:
        self.worker_id = worker_id
        self.clock = clock
        self.settings = settings
        self.engine = Engine(
            clock=clock,
            max_request_seconds=settings.request_timeout,
            slots=DestinationSlots(settings.per_destination),
        )
        # Set when the worker stops: a run in progress stops at its next commit.
        self.stopping = threading.Event()

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
        slice_end = self.clock.monotonic() + self.settings.slice_seconds
        memo = RunMemo()
        try:
            execution = taken or store.held_run(execution_id, self.worker_id)
            if execution is None or execution.lease_owner != self.worker_id:
                db.session.rollback()
                return None  # cancelled, or taken over after our lease ran out
            if execution.step_deliveries > self.settings.max_deliveries:
                db.session.rollback()
                self.stop_crashing_run(execution_id, execution.step_deliveries - 1)
                return None
            if taken is None:
                # Written back by save_progress, one UPDATE per commit, not by the session.
                db.session.expunge(execution)
            while True:
                outcome = advance(execution, self.engine, memo)
                go_on = (
                    outcome == Next.CONTINUE
                    and self.clock.monotonic() < slice_end
                    and not self.stopping.is_set()
                )
                upcoming = next_action(execution) if go_on else None
                if go_on and upcoming is None:
                    continue  # nothing has left this process yet: no commit needed
                if go_on:
                    # What the action will read, read now, in the transaction that commits
                    # before its request: one round trip fewer than reading after it.
                    memo.current_incident(execution)
                    memo.workflow_facts(execution)
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
                if not store.save_progress(execution):
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
            log.warning(
                "database error during a step; the run is retried after its lease",
                extra={"execution_id": execution_id},
            )
            return None
        except Exception as error:
            db.session.rollback()
            log.exception("step crashed", extra={"execution_id": execution_id})
            self._fail_after_crash(execution_id, error)
            return None

    def stop_crashing_run(self, execution_id: str, crashes: int) -> None:
        """End a run whose step took its worker down ``crashes`` times."""
        execution = store.held_run(execution_id, self.worker_id)
        if execution is None:
            return
        node = _step_node(execution)
        fail(
            execution,
            self.clock.now(),
            f"The step at node {node} crashed its worker {crashes} times, so it was not tried "
            "again (the worker died, or lost its database, while running it; see its log).",
        )
        execution.step_deliveries = 0
        try:
            db.session.commit()
        except StaleDataError:
            db.session.rollback()
        log.error(
            "run stopped: its step kept crashing its worker",
            extra={"execution_id": execution_id, "node_id": node, "crashes": crashes},
        )

    def _fail_after_crash(self, execution_id: str, error: Exception) -> None:
        """A bug, not a passing outage: end the run rather than crash on it forever."""
        execution = store.held_run(execution_id, self.worker_id)
        if execution is None:
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
