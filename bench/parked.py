"""100,000 runs parked in delays: worker memory, finding due work, lateness on waking."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import env
from bench.backends import CELERY, POSTGRES, SQLITE, Backend
from bench.options import Options
from bench.results import Figure, Target, figure, not_measured, percentile

NAME = "parked"
TITLE = "Runs parked in delays"
METHOD = """\
The workflow is the benchmark workflow with a 60-minute delay. Parked runs are
inserted in bulk with SQL (`INSERT … executemany` in chunks, not the ORM): each
has run trigger, condition and the first webhook, waits at the delay node, and
has `parked_until = due_at` a day ahead (spread over a minute). One worker
process runs throughout: `flask worker run`, or for Celery one prefork pool
process plus beat (the PostgreSQL database, with its parked runs, serves both).

**Worker memory.** The worker is started on the empty database and left idle
for a few seconds; its resident set size (`VmRSS` from `/proc/<pid>/status`,
median of 5 readings; for Celery, the pool process that runs the tasks) is
"before". The parked runs are inserted while it runs, it is left for 5 more
seconds (about 250 polls for the embedded worker), and the RSS is read again:
"after". The target is that memory stays flat: growth under 5 MiB. The JSON also
has the RSS after the wake-ups below.

**Lateness on waking.** Draining all 100,000 woken runs at once would take many
minutes at the rates above, so lateness is measured on a bounded sample: in each
repetition, a fresh sample of the parked runs is made due at the same instant two
seconds ahead, the other parked runs staying in the table. The change is committed
with the engine's own wake-up (`wake.signal_work`: NOTIFY, the SQLite worker's
socket, or for Celery the broker message), so the worker knows the new due time as
it knows a delay it parked itself; without it the worker would only see the change
at its 5-second safety-net poll, and the figure would measure that poll.
A run's lateness =
when its delay node completed (`completedAt`, the worker's clock) − its
`parked_until`. p50/p99 over the sample, median over repetitions. Because all
sample runs wake together, lateness is bound by how fast one worker drains them;
the table also gives the p99 that drain rate implies if all 100,000 woke at once
(0.99 × 100,000 ÷ rate, an extrapolation), and the JSON the drain rates.

**Time to find due work.** Then, with the worker stopped, in the harness process,
the embedded worker's own `claim(20)` is called 200 times with nothing due and
100 times with 100 runs due (the 20 it takes are made due again, untimed, after
each call); for Celery, the dispatcher's `dispatch_due` (the same query with a
limit of 500; the hand-over to the broker replaced by a list). Afterwards those runs
are put back as they were (due time, lease, and the step delivery count each claim
adds), so the next set-up measured on the database wakes untouched runs. "Find" is the
engine's due-work query itself (`SELECT … WHERE due_at <= now ORDER BY due_at
LIMIT n FOR UPDATE SKIP LOCKED`), timed with SQLAlchemy events from the moment it
is sent until the engine's next statement, commit or rollback (so fetching its
rows counts), and the measured statement is exactly the engine's; "find and take"
is the whole call (the query, the lease `UPDATE`, the commit). p50 and p99 of the
calls; the target applies to the p99 of "find"."""

MEMORY_TARGET = Target("<", 5.0, "flat: growth < 5 MiB")
LOOKUP_TARGET = Target("<", 10.0, "p99 < 10 ms")


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    figures += measure_database(options, "sqlite", [SQLITE])
    figures += measure_database(options, "postgresql", [POSTGRES, CELERY])
    return figures


def _keys(backend: Backend) -> dict[str, tuple[str, str, str, Target | None]]:
    k = backend.key
    return {
        "rss_before": (f"{NAME}.rss_before.{k}", "Worker memory (RSS), idle, empty", "MiB", None),
        "rss_after": (f"{NAME}.rss_after.{k}", "Worker memory (RSS), runs parked", "MiB", None),
        "rss_growth": (
            f"{NAME}.rss_growth.{k}",
            "Worker memory growth with runs parked",
            "MiB",
            MEMORY_TARGET,
        ),
        "idle_p50": (f"{NAME}.lookup_idle.p50.{k}", "Find due work, none due, p50", "ms", None),
        "idle_p99": (
            f"{NAME}.lookup_idle.p99.{k}",
            "Find due work, none due, p99",
            "ms",
            LOOKUP_TARGET,
        ),
        "due_p50": (f"{NAME}.lookup_due.p50.{k}", "Find due work, 100 due, p50", "ms", None),
        "due_p99": (
            f"{NAME}.lookup_due.p99.{k}",
            "Find due work, 100 due, p99",
            "ms",
            LOOKUP_TARGET,
        ),
        "claim_p50": (
            f"{NAME}.claim_due.p50.{k}",
            "Find and take due work (query, lease, commit), 100 due, p50",
            "ms",
            None,
        ),
        "claim_p99": (
            f"{NAME}.claim_due.p99.{k}",
            "Find and take due work (query, lease, commit), 100 due, p99",
            "ms",
            None,
        ),
        "late_p50": (f"{NAME}.lateness.p50.{k}", "Lateness on waking, p50", "ms", None),
        "late_p99": (f"{NAME}.lateness.p99.{k}", "Lateness on waking, p99", "ms", None),
        "late_all": (
            f"{NAME}.lateness_all.p99.{k}",
            "Lateness if all parked runs woke at once, p99 (estimate)",
            "s",
            None,
        ),
    }


def measure_database(options: Options, kind: str, backends: list[Backend]) -> list[Figure]:
    setups = {b.key: f"{b.setup(1)}, {options.parked_runs:,} parked" for b in backends}
    reasons = {b.key: b.unavailable() for b in backends}
    wanted = [b for b in backends if not reasons[b.key]]
    figures: list[Figure] = []
    for backend in backends:
        if reasons[backend.key]:
            figures += _unmeasured(backend, setups[backend.key], str(reasons[backend.key]))
    if not wanted:
        return figures
    try:
        with env.database(kind) as database, env.receiver() as receiver:
            app = env.make_app(database)
            seed = env.seed(app)
            workflow_id = env.enable_workflow(
                app, seed, env.benchmark_definition(receiver.url, delay_minutes=60)
            )
            incidents, _ = env.create_incidents(app, seed, 100)
            inserted = False
            for backend in wanted:
                setup = setups[backend.key]
                options.log(f"parked: {setup}")
                try:
                    values, extra = measure_backend(
                        options, backend, database, app, workflow_id, incidents, inserted
                    )
                except Exception as error:
                    message = f"failed: {type(error).__name__}: {error}"[:300]
                    figures += _unmeasured(backend, setup, message)
                    continue
                finally:
                    inserted = True
                for name, (key, label, unit, target) in _keys(backend).items():
                    fig = figure(key, NAME, label, setup, unit, values.get(name, []), target=target)
                    if name in ("late_p50", "late_p99"):
                        fig.note = (
                            f"sample of {options.wake_sample} runs woken at once per repetition"
                        )
                        fig.extra = extra
                    if name == "late_all":
                        fig.note = (
                            f"0.99 × {options.parked_runs:,} ÷ the sample's drain rate "
                            "(one worker): an extrapolation, not a measurement"
                        )
                    if name.startswith(("idle", "due", "claim")) and backend.engine == "celery":
                        fig.note = "the dispatcher (dispatch_due); the broker replaced by a list"
                    figures.append(fig)
    except Exception as error:
        message = f"failed: {type(error).__name__}: {error}"[:300]
        for backend in wanted:
            if not any(f.key.endswith(backend.key) for f in figures):
                figures += _unmeasured(backend, setups[backend.key], message)
    return figures


def _unmeasured(backend: Backend, setup: str, reason: str) -> list[Figure]:
    return [
        not_measured(key, NAME, label, setup, unit, reason, target)
        for key, label, unit, target in _keys(backend).values()
    ]


def measure_backend(
    options: Options,
    backend: Backend,
    database: env.Database,
    app: Flask,
    workflow_id: str,
    incidents: list[str],
    inserted: bool,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    values: dict[str, list[float]] = {}
    extra: dict[str, Any] = {}
    with backend.workers(database, 1) as workers:
        pid = worker_pid(backend, workers)
        time.sleep(options.settle_seconds)
        before = rss_mib(pid)
        if not inserted:
            started = time.monotonic()
            park(app, workflow_id, incidents, options.parked_runs)
            extra["insert_seconds"] = round(time.monotonic() - started, 1)
            options.log(f"  inserted {options.parked_runs:,} parked runs")
        time.sleep(options.settle_seconds + 2)
        workers.check_alive()
        after = rss_mib(pid)
        values["rss_before"] = [before]
        values["rss_after"] = [after]
        values["rss_growth"] = [after - before]
        options.log(f"  RSS {before:.1f} MiB -> {after:.1f} MiB")
        values["late_p50"], values["late_p99"], values["late_all"] = [], [], []
        drains = []
        # The app that wakes them is configured as the workers are (for Celery: its broker).
        settings = backend.app_settings()
        waker = env.make_app(database, **settings) if settings else app
        for _ in range(options.repeats):
            lateness, drain_rate = wake(waker, options.wake_sample, workers)
            values["late_p50"].append(percentile(lateness, 50) * 1000)
            values["late_p99"].append(percentile(lateness, 99) * 1000)
            drains.append(drain_rate)
            values["late_all"].append(0.99 * options.parked_runs / drain_rate)
            options.log(
                f"  woke {len(lateness)}: lateness p50 {values['late_p50'][-1]:.0f} ms, "
                f"p99 {values['late_p99'][-1]:.0f} ms ({drain_rate:.1f} runs/s)"
            )
        extra["rss_after_waking_mib"] = round(rss_mib(pid), 1)
    # The worker is stopped now, so it cannot take the runs made due below.
    lookups = time_lookups(app, backend)
    for name, samples in lookups.items():
        values[f"{name}_p50"] = [percentile(samples, 50) * 1000]
        values[f"{name}_p99"] = [percentile(samples, 99) * 1000]
    options.log(
        f"  find, none due: p50 {values['idle_p50'][0]:.2f} ms p99 {values['idle_p99'][0]:.2f} ms;"
        f" 100 due: p50 {values['due_p50'][0]:.2f} ms p99 {values['due_p99'][0]:.2f} ms;"
        f" claim: p50 {values['claim_p50'][0]:.2f} ms"
    )
    extra["wake_drain_runs_per_s"] = [round(d, 1) for d in drains]
    return values, extra


def worker_pid(backend: Backend, workers: env.Workers) -> int:
    main = workers.processes[0].pid
    if backend.engine != "celery":
        return main
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = env.child_pids(main)
        if children:
            return children[0]
        time.sleep(0.2)
    raise RuntimeError("the Celery pool process did not appear")


def rss_mib(pid: int) -> float:
    readings = []
    for _ in range(5):
        readings.append(env.rss_kib(pid) / 1024)
        time.sleep(0.2)
    return statistics.median(readings)


def park(app: Flask, workflow_id: str, incidents: list[str], count: int) -> None:
    """Insert ``count`` runs waiting at the delay node, a day ahead."""
    from app.db import new_id
    from app.extensions import db
    from app.workflows.models import Workflow, WorkflowExecution

    with app.app_context():
        snapshot = db.session.scalar(
            sa.select(Workflow.definition).where(Workflow.id == workflow_id)
        )
        now = datetime.now(UTC)
        base = now + timedelta(days=1)
        iso = now.isoformat().replace("+00:00", "Z")
        done_nodes = [
            {"nodeId": "start", "status": "completed", "startedAt": iso, "completedAt": iso},
            {"nodeId": "is_p1", "status": "completed", "startedAt": iso, "completedAt": iso},
            {
                "nodeId": "first",
                "status": "completed",
                "startedAt": iso,
                "completedAt": iso,
                "result": {"status": 200},
            },
        ]
        table = WorkflowExecution.__table__
        chunk = 5000
        for offset in range(0, count, chunk):
            rows = []
            for n in range(offset, min(count, offset + chunk)):
                wake_at = base + timedelta(milliseconds=(n * 60_000) // count)
                rows.append(
                    {
                        "id": new_id(),
                        "workflow_id": workflow_id,
                        "workflow_version": 1,
                        "definition_snapshot": snapshot,
                        "incident_id": incidents[n % len(incidents)],
                        "triggered_by": "event",
                        "trigger_event": "incident_created",
                        "status": "RUNNING",
                        "current_node_id": "pause",
                        "completed_nodes": done_nodes,
                        "started_at": now,
                        "created_at": now,
                        "updated_at": now,
                        "due_at": wake_at,
                        "parked_until": wake_at,
                        "attempt": 0,
                        "working_ms": 5,
                        "row_version": 1,
                    }
                )
            db.session.execute(sa.insert(table), rows)
            db.session.commit()
        db.session.remove()


class DueQueryTimer:
    """Times the engine's own due-work query, without copying it: from the moment the
    ``SELECT … due_at <= …`` is sent (a SQLAlchemy cursor event) until the engine moves
    on — its next statement, commit or rollback — so fetching the rows counts too."""

    def __init__(self) -> None:
        self.first: float | None = None
        self._open: float | None = None

    def _close(self) -> None:
        if self._open is not None:
            elapsed = time.perf_counter() - self._open
            self._open = None
            if self.first is None:
                self.first = elapsed

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._close()
        is_due_query = statement.lstrip().startswith("SELECT workflow_execution.id")
        if is_due_query and "due_at <=" in statement and self.first is None:
            self._open = time.perf_counter()

    def ended(self, conn: Any) -> None:
        self._close()

    def take(self) -> float:
        self._close()
        if self.first is None:
            raise RuntimeError("the due-work query was not seen")
        value, self.first = self.first, None
        return value

    @contextlib.contextmanager
    def attached(self, engine: sa.Engine) -> Iterator[DueQueryTimer]:
        events = (("before_cursor_execute", self.before), ("commit", self.ended))
        events += (("rollback", self.ended),)
        for name, handler in events:
            sa.event.listen(engine, name, handler)
        try:
            yield self
        finally:
            for name, handler in events:
                sa.event.remove(engine, name, handler)


def time_lookups(app: Flask, backend: Backend) -> dict[str, list[float]]:
    """Seconds: the due query with nothing due and with 100 due; a whole claim with 100 due."""
    from app.engine.worker import Worker
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    worker = Worker(app)
    if backend.engine == "celery":
        lookup = _celery_lookup(app)
    else:

        def lookup() -> list[str]:
            return worker.claim(20)

    samples: dict[str, list[float]] = {"idle": [], "due": [], "claim": []}
    with app.app_context(), DueQueryTimer().attached(db.engine) as timer:
        try:
            for _ in range(20):
                lookup()  # warm up: statement caches, connection
                timer.take()
            for _ in range(200):
                found = lookup()
                samples["idle"].append(timer.take())
                assert not found, "nothing should be due"
            chosen = list(
                db.session.scalars(
                    sa.select(Run.id).where(Run.parked_until.is_not(None)).limit(100)
                )
            )
            past = datetime.now(UTC) - timedelta(seconds=1)

            def make_due(ids: list[str]) -> None:
                db.session.execute(
                    sa.update(Run).where(Run.id.in_(ids)).values(due_at=past, lease_owner=None)
                )
                db.session.commit()

            originals = claim_state(chosen)
            try:
                make_due(chosen)
                timer.first = None
                for _ in range(100):
                    started = time.perf_counter()
                    found = lookup()
                    samples["claim"].append(time.perf_counter() - started)
                    samples["due"].append(timer.take())
                    assert found, "runs should be due"
                    make_due(found)
            finally:
                db.session.rollback()
                restore_claim_state(originals)
        finally:
            db.session.remove()
    return samples


# What a claim (or a dispatch) changes on a run. A claim also counts a delivery of the
# run's current step, as a worker's claim does: the lookups above claim the same 100
# runs about 20 times each without driving them, and left so, the next set-up measured
# on this database would wake them as steps that crashed their worker 20 times (more
# than ENGINE_MAX_DELIVERIES) and end them FAILED.
CLAIM_COLUMNS = ("due_at", "lease_owner", "step_deliveries")


def claim_state(ids: list[str]) -> list[dict[str, Any]]:
    """The runs' ``CLAIM_COLUMNS`` as they are now (to put back with ``restore_claim_state``)."""
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    columns = [getattr(Run, name) for name in CLAIM_COLUMNS]
    rows = db.session.execute(sa.select(Run.id, *columns).where(Run.id.in_(ids))).all()
    return [dict(row._mapping) for row in rows]


def restore_claim_state(originals: list[dict[str, Any]]) -> None:
    """Put the runs' ``CLAIM_COLUMNS`` back as ``claim_state`` read them. Committed."""
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    for original in originals:
        values = {name: original[name] for name in CLAIM_COLUMNS}
        db.session.execute(sa.update(Run).where(Run.id == original["id"]).values(**values))
    db.session.commit()


def _celery_lookup(app: Flask) -> Any:
    from app.engine import tasks
    from app.engine.celery_app import CelerySettings
    from app.engine.clock import SystemClock

    settings = CelerySettings.from_config(app.config)
    clock = SystemClock()

    def lookup() -> list[str]:
        sent: list[str] = []
        tasks.dispatch_due(sent.extend, clock, settings)
        return sent

    return lookup


def wake(app: Flask, sample: int, workers: env.Workers) -> tuple[list[float], float]:
    """Make ``sample`` parked runs due at one instant; (lateness per run, drain runs/s)."""
    from app.engine.wake import signal_work
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    with app.app_context():
        ids = list(
            db.session.scalars(
                sa.select(Run.id)
                .where(Run.parked_until.is_not(None), Run.status == "RUNNING")
                .order_by(Run.due_at)
                .limit(sample)
            )
        )
        wake_at = datetime.now(UTC) + timedelta(seconds=2)
        db.session.execute(
            sa.update(Run).where(Run.id.in_(ids)).values(due_at=wake_at, parked_until=wake_at)
        )
        signal_work(db.session)  # as the engine tells its workers of new work
        db.session.commit()
        deadline = time.monotonic() + 120 + sample
        while time.monotonic() < deadline:
            workers.check_alive()
            done = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Run)
                .where(Run.id.in_(ids), Run.status.in_(["COMPLETED", "FAILED"]))
            )
            db.session.rollback()
            if done == len(ids):
                break
            time.sleep(0.2)
        else:
            raise TimeoutError("the woken runs did not finish")
        rows = db.session.execute(
            sa.select(Run.status, Run.completed_nodes, Run.completed_at, Run.error).where(
                Run.id.in_(ids)
            )
        ).all()
        db.session.remove()
    lateness = []
    last = 0.0
    for status, nodes, completed_at, error in rows:
        if status != "COMPLETED":
            raise RuntimeError(f"a woken run ended {status}: {error}")
        pause = next(n for n in nodes if n["nodeId"] == "pause")
        lateness.append(env.iso_time(pause["completedAt"]) - wake_at.timestamp())
        last = max(last, completed_at.timestamp())
    return lateness, len(ids) / max(last - wake_at.timestamp(), 1e-6)
