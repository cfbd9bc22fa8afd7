"""Database commits per run, counted exactly with SQLAlchemy engine events."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import env
from bench.backends import ALL, Backend
from bench.options import Options
from bench.results import Figure, figure, not_measured

NAME = "commits"
TITLE = "Database commits per run"
METHOD = """\
The engine runs **in the harness process** so that every `COMMIT` it sends can be
counted with a SQLAlchemy `commit` engine event. N P1 incidents are created in
one transaction (not counted), then the engine works until every run has ended:
the embedded worker's `run_once()` in a loop; for Celery, the same database work
its tasks do — `consume_events` then `dispatch_due` (with the broker replaced by
a list), then `advance` for every dispatched run — without the broker. Counted:
every commit from the first pass to the last run's end, divided by N. The JSON
splits them by phase (consuming events, claiming or dispatching, steps) and
counts how many commits wrote anything (a read-only transaction also ends in
`COMMIT`) and how many SQL statements were sent per run. The benchmark workflow
has five nodes with two webhook requests. A run commits before each request (what
it did is durable before a request goes out) and when it waits or ends; the steps
that touch nothing outside the database (trigger, condition, zero delay, the end)
share a transaction with the steps around them, so a run costs three step commits.
Idle polling is not included: an idle embedded worker commits one empty
transaction per poll (every 20 ms)."""


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    for backend in ALL:
        figures.extend(measure(options, backend))
    return figures


STATEMENTS = "SQL statements per run"


def measure(options: Options, backend: Backend) -> list[Figure]:
    key = f"{NAME}.{backend.key}"
    statements_key = f"{NAME}.statements.{backend.key}"
    setup = backend.label + (", engine in-process" if backend.engine == "embedded" else "")
    if backend.engine == "celery":
        setup = backend.label + ", task functions in-process (no broker)"
    reason = backend.unavailable()
    if reason:
        return [
            not_measured(key, NAME, TITLE, setup, "commits/run", reason, None),
            not_measured(statements_key, NAME, STATEMENTS, setup, "statements/run", reason, None),
        ]
    options.log(f"commits: {setup}")
    samples = []
    statements = []
    details = []
    try:
        with env.database(backend.database) as database, env.receiver() as receiver:
            app = env.make_app(database)
            seed = env.seed(app)
            env.enable_workflow(app, seed, env.benchmark_definition(receiver.url))
            drive = drive_celery if backend.engine == "celery" else drive_embedded
            drive(app, seed, 5)  # warm up (plans, connections)
            for _ in range(options.repeats):
                counts = drive(app, seed, options.commit_runs)
                per_run = counts["commits"] / options.commit_runs
                samples.append(per_run)
                statements.append(counts["statements"] / options.commit_runs)
                details.append(
                    {name: round(value / options.commit_runs, 2) for name, value in counts.items()}
                )
                options.log(f"  {per_run:.2f} commits per run ({details[-1]})")
    except Exception as error:
        message = f"failed: {type(error).__name__}: {error}"[:300]
        return [
            not_measured(key, NAME, TITLE, setup, "commits/run", message, None),
            not_measured(statements_key, NAME, STATEMENTS, setup, "statements/run", message, None),
        ]
    return [
        figure(
            key,
            NAME,
            TITLE,
            setup,
            "commits/run",
            samples,
            note=f"{options.commit_runs} runs per repetition; three step commits per run by design",
            extra={"per_run_by_phase": details},
        ),
        figure(statements_key, NAME, STATEMENTS, setup, "statements/run", statements),
    ]


class CommitCounter:
    """Counts commits, by phase, and whether each transaction wrote anything."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.phase = "other"
        self.wrote = False

    def before_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip()[:6].upper()
        if self.phase != "harness":
            self.counts["statements"] += 1
        if verb in {"INSERT", "UPDATE", "DELETE"}:
            self.wrote = True

    def commit(self, conn: Any) -> None:
        self.counts["commits"] += 1
        self.counts[f"{self.phase} commits"] += 1
        if self.wrote:
            self.counts["writing commits"] += 1
        self.wrote = False

    def rollback(self, conn: Any) -> None:
        self.wrote = False

    @contextlib.contextmanager
    def attached(self, engine: sa.Engine) -> Iterator[CommitCounter]:
        sa.event.listen(engine, "before_cursor_execute", self.before_execute)
        sa.event.listen(engine, "commit", self.commit)
        sa.event.listen(engine, "rollback", self.rollback)
        try:
            yield self
        finally:
            sa.event.remove(engine, "before_cursor_execute", self.before_execute)
            sa.event.remove(engine, "commit", self.commit)
            sa.event.remove(engine, "rollback", self.rollback)

    @contextlib.contextmanager
    def during(self, phase: str) -> Iterator[None]:
        previous, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = previous


def _unfinished(since: float) -> int:
    from datetime import UTC, datetime

    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    return int(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Run)
            .where(
                Run.created_at >= datetime.fromtimestamp(since, UTC),
                Run.status.not_in(["COMPLETED", "FAILED", "CANCELLED"]),
            )
        )
        or 0
    )


def drive_embedded(app: Flask, seed: env.Seed, runs: int) -> Counter[str]:
    import time

    from app.engine.runner import Next
    from app.engine.worker import Worker, WorkerSettings
    from app.extensions import db
    from app.workflows.models import WorkflowExecution

    counter = CommitCounter()

    class CountingWorker(Worker):
        def consume_events(self) -> int:
            with counter.during("consume"):
                return super().consume_events()

        def claim_runs(self, limit: int) -> list[WorkflowExecution]:
            with counter.during("claim"):
                return super().claim_runs(limit)

        def drive(self, execution_id: str, taken: WorkflowExecution | None = None) -> Next | None:
            with counter.during("step"):
                return super().drive(execution_id, taken)

    since = time.time()
    time.sleep(0.01)
    env.create_incidents(app, seed, runs)
    # The age scan is not part of a run.
    worker = CountingWorker(app, settings=WorkerSettings(age_scan_seconds=math.inf))
    with app.app_context():
        with counter.attached(db.engine):
            for _ in range(runs * 20):
                worker.run_once()
                db.session.remove()
                with counter.during("harness"):
                    left = _unfinished(since)
                    db.session.rollback()
                if not left:
                    break
            else:
                raise RuntimeError("the runs did not finish")
        db.session.remove()
    counter.counts.pop("harness commits", None)
    return counter.counts


def drive_celery(app: Flask, seed: env.Seed, runs: int) -> Counter[str]:
    import time

    from app.engine import tasks
    from app.engine.celery_app import CelerySettings
    from app.engine.clock import SystemClock
    from app.engine.worker import Worker, WorkerSettings
    from app.extensions import db

    counter = CommitCounter()
    clock = SystemClock()
    settings = CelerySettings.from_config(app.config)
    queue: list[str] = []

    def send(ids: list[str]) -> None:
        queue.extend(ids)

    since = time.time()
    time.sleep(0.01)
    env.create_incidents(app, seed, runs)
    with app.app_context():
        worker = Worker(app, clock=clock, settings=WorkerSettings(), backend="celery")
        with counter.attached(db.engine):
            for _ in range(runs * 20):
                with counter.during("consume"):
                    if tasks.consume_events(clock, settings):
                        with counter.during("dispatch"):
                            tasks.dispatch_due(send, clock, settings)
                db.session.remove()
                while queue:
                    execution_id = queue.pop(0)
                    with counter.during("step"):
                        tasks.advance(execution_id, worker, send, settings)
                    db.session.remove()
                with counter.during("harness"):
                    left = _unfinished(since)
                    db.session.rollback()
                if not left:
                    break
                with counter.during("dispatch"):
                    tasks.dispatch_due(send, clock, settings)
            else:
                raise RuntimeError("the runs did not finish")
        db.session.remove()
    counter.counts.pop("harness commits", None)
    return counter.counts
