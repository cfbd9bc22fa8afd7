"""Trigger-to-first-request latency at a steady 20 runs/s, and engine overhead per step."""

from __future__ import annotations

import time

from flask import Flask

from bench import env
from bench.backends import ALL, SQLITE_NOTE, Backend
from bench.options import Options
from bench.results import Figure, Target, figure, not_measured, percentile

NAME = "latency"
TITLE = "Latency and step overhead"
METHOD = """\
**Trigger to first request.** One worker (SQLite, PostgreSQL) or one Celery
worker process with beat. The harness opens P1 incidents through the incident
service at a fixed rate of 20 per second (an absolute schedule, each incident
committed on its own) for 10 seconds per repetition (3 in a smoke run), after a
short warm-up. For each incident, latency = the time
the receiver got the run's first webhook request (`time.time()` in the receiver
process when the request's headers had arrived) − the time the incident's
transaction committed (`time.time()` in the harness right after `commit()`
returned); both clocks are the same host clock. p50 and p99 are taken over the
incidents of one repetition; the figure is the median over repetitions. The
harness's app is configured as the web app would be (for Celery: its broker), so a
committed incident wakes the workers as in production: NOTIFY on PostgreSQL, the
worker's socket on SQLite, one `consume_events` message for Celery. The embedded
worker's idle poll (5 s) and beat's `consume_events` every
`dispatch_interval_seconds` (0.25 s) are only safety nets.

**Engine overhead per step** comes from the same runs, with a receiver that
answers instantly. Every node a run settles stores when its step started
(`startedAt` in `completed_nodes`, from the worker's clock); a step's time is
from its start to the next step's start (to the run's `completed_at` for the
last node). That is everything the engine does for a step — loading the run,
the node's work (for a webhook: templating, the outbound guard, a new HTTP
connection and the exchange with the instant receiver), the commit — with no
waiting for a slow service. Five steps per run (trigger, condition, webhook,
delay 0, webhook); p50 and p99 over all steps of a repetition, median over
repetitions. `extra.by_node` in the JSON splits them by node."""

LATENCY_TARGET = Target("<", 100.0, "p99 < 100 ms (embedded default, 20 runs/s)")
OVERHEAD_TARGET = Target("<", 20.0, "p99 < 20 ms")


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    for backend in ALL:
        figures.extend(measure_backend(options, backend))
    return figures


def _labels(backend: Backend) -> list[tuple[str, str, Target | None]]:
    return [
        (
            f"{NAME}.first_request.p50.{backend.key}",
            "Trigger → first webhook request, p50",
            None,
        ),
        (
            f"{NAME}.first_request.p99.{backend.key}",
            "Trigger → first webhook request, p99",
            LATENCY_TARGET if backend.key == "sqlite-embedded" else None,
        ),
        (f"{NAME}.step.p50.{backend.key}", "Engine overhead per step, p50", None),
        (f"{NAME}.step.p99.{backend.key}", "Engine overhead per step, p99", OVERHEAD_TARGET),
    ]


def measure_backend(options: Options, backend: Backend) -> list[Figure]:
    setup = backend.setup(1) + f", {options.latency_rate:.0f} runs/s"
    labels = _labels(backend)
    reason = backend.unavailable()
    if reason:
        return [not_measured(k, NAME, label, setup, "ms", reason, t) for k, label, t in labels]
    options.log(f"latency: {setup}")
    samples: dict[str, list[float]] = {key: [] for key, _, _ in labels}
    details: list[dict[str, object]] = []
    by_node: dict[str, list[float]] = {}
    try:
        with env.database(backend.database) as database, env.receiver() as receiver:
            app = env.make_app(database, **backend.app_settings())  # as the web app is
            seed = env.seed(app)
            env.enable_workflow(app, seed, env.benchmark_definition(receiver.url))
            with backend.workers(database, 1) as workers:
                paced(app, seed, receiver, workers, rate=5, seconds=1)  # warm up
                for _ in range(options.repeats):
                    latencies, steps, info = paced(
                        app,
                        seed,
                        receiver,
                        workers,
                        rate=options.latency_rate,
                        seconds=options.latency_seconds,
                    )
                    step_values = [s for _, s in steps]
                    row = [
                        percentile(latencies, 50),
                        percentile(latencies, 99),
                        percentile(step_values, 50),
                        percentile(step_values, 99),
                    ]
                    for (key, _, _), value in zip(labels, row, strict=True):
                        samples[key].append(value * 1000)
                    for node, seconds in steps:
                        by_node.setdefault(node, []).append(seconds)
                    details.append(info)
                    options.log(
                        f"  first request p50 {row[0] * 1000:.1f} ms, p99 {row[1] * 1000:.1f} ms;"
                        f" step p50 {row[2] * 1000:.1f} ms, p99 {row[3] * 1000:.1f} ms"
                    )
    except Exception as error:
        message = f"failed: {type(error).__name__}: {error}"[:300]
        return [not_measured(k, NAME, label, setup, "ms", message, t) for k, label, t in labels]
    extra = {
        "repetitions": details,
        "by_node": {
            node: {
                "p50_ms": round(percentile(values, 50) * 1000, 2),
                "p99_ms": round(percentile(values, 99) * 1000, 2),
                "steps": len(values),
            }
            for node, values in by_node.items()
        },
    }
    note = SQLITE_NOTE if backend.database == "sqlite" else ""
    return [
        figure(key, NAME, label, setup, "ms", samples[key], target=t, note=note, extra=extra)
        for key, label, t in labels
    ]


def paced(
    app: Flask,
    seed: env.Seed,
    receiver: env.Receiver,
    workers: env.Workers,
    *,
    rate: float,
    seconds: float,
) -> tuple[list[float], list[tuple[str, float]], dict[str, object]]:
    """Open incidents at ``rate`` per second; (latencies, step times, details)."""
    from app.auth.models import User
    from app.extensions import db
    from app.incidents import service as incidents
    from app.incidents.enums import ChangeSource
    from app.incidents.schemas import IncidentCreate

    receiver.reset()
    since = time.time()
    time.sleep(0.01)
    count = max(1, round(rate * seconds))
    committed: dict[str, float] = {}
    behind = 0.0
    with app.app_context():
        admin = db.session.get(User, seed.admin_id)
        actor = incidents.Actor(admin, ChangeSource.API)
        start = time.monotonic()
        for n in range(count):
            due = start + n / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                behind = max(behind, -wait)
            incident = incidents.create_incident(
                actor,
                IncidentCreate(
                    title=f"Paced incident {n}",
                    priority="P1",  # type: ignore[arg-type]
                    team_id=seed.team_id,
                ),
            )
            incident_id = incident.id
            db.session.commit()
            committed[incident_id] = time.time()
        db.session.remove()
    failed = env.wait_for_runs(app, since, count, timeout=120 + count, workers=workers)
    if failed:
        raise RuntimeError(f"{failed} of {count} runs did not complete")
    first: dict[str, float] = {}
    for arrived, _method, path in receiver.arrivals():
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "first":
            first.setdefault(parts[1], arrived)
    missing = [i for i in committed if i not in first]
    if missing:
        raise RuntimeError(f"{len(missing)} first requests never arrived")
    latencies = [first[i] - committed[i] for i in committed]
    runs = env.runs_since(app, since)
    steps = [step for run in runs for step in env.step_times(run)]
    return (
        latencies,
        steps,
        {"incidents": count, "harness_fell_behind_ms": round(behind * 1000, 1)},
    )
