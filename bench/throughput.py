"""Runs completed per second, with 1, 2 and 4 workers, on every back end."""

from __future__ import annotations

import time

from flask import Flask

from bench import env
from bench.backends import ALL, CELERY_ASYNC, SQLITE_DURABLE, SQLITE_NOTE, Backend
from bench.options import Options
from bench.results import Figure, Target, figure, not_measured

NAME = "throughput"
TITLE = "Runs completed per second"
METHOD = """\
The workflow is trigger → condition (priority is P1) → webhook → delay(0) →
webhook, every webhook answered at once by the local receiver
(`bench/receiver.py`, a raw asyncio HTTP responder in its own process). Worker
processes are started as an operator starts them (`flask worker run`, or
`celery worker --concurrency N` plus `celery beat` on Redis) and left idle.
Each repetition then creates N P1 incidents through the incident service **in one
transaction**, so all N events become visible at the same instant, and measures
from that commit to the last run's `completed_at`:
runs/s = N ÷ (last completion − commit). N is sized from an untimed warm-up
batch so that a repetition lasts several seconds. The figure is the median of
the repetitions; every run must end COMPLETED and the receiver must have seen
2 N requests. On SQLite only one worker runs: SQLite serialises writers, and
that is the supported embedded set-up; its worker commits without waiting for the
disk (`INCIDENTFLOW_ENGINE_ASYNC_COMMIT` unset: SQLite's `synchronous=NORMAL` with
WAL for the worker's connections; the web's commits always wait). Two extra lines,
without targets, show the setting's effect: the embedded worker on SQLite with
`INCIDENTFLOW_ENGINE_ASYNC_COMMIT=0` (every commit waits for its fsync), and
Celery's 4 worker processes with `INCIDENTFLOW_ENGINE_ASYNC_COMMIT=1`
(PostgreSQL's `synchronous_commit = off` for the workers' commits, opt-in); the
README describes the trade-off."""

EMBEDDED_TARGET = Target(">=", 100, "≥ 100 runs/s (embedded default)")
CELERY_TARGET = Target(">=", 250, "≥ 250 runs/s (PostgreSQL + Celery)")


def target_for(backend: Backend, workers: int) -> Target | None:
    if backend.key == "sqlite-embedded":
        return EMBEDDED_TARGET
    if backend.proposed:
        return None
    if backend.engine == "celery" and workers == max(backend.worker_counts):
        return CELERY_TARGET
    return None


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    extra = (ALL[0], SQLITE_DURABLE, *ALL[1:], CELERY_ASYNC)
    backends = extra if options.all_worker_counts else ALL
    for backend in backends:
        figures.extend(measure_backend(options, backend))
    return figures


def measure_backend(options: Options, backend: Backend) -> list[Figure]:
    reason = backend.unavailable()
    counts = backend.worker_counts if options.all_worker_counts else backend.worker_counts[:1]
    keys = [(f"{NAME}.{backend.key}.{n}", n) for n in counts]
    if reason:
        return [
            not_measured(
                key,
                NAME,
                TITLE,
                backend.setup(n),
                "runs/s",
                reason,
                target_for(backend, n),
            )
            for key, n in keys
        ]
    figures = []
    with env.database(backend.database) as database, env.receiver() as receiver:
        app = env.make_app(database, **backend.app_settings())  # as the web app is
        seed = env.seed(app)
        env.enable_workflow(app, seed, env.benchmark_definition(receiver.url))
        for key, count in keys:
            options.log(f"throughput: {backend.setup(count)}")
            try:
                with backend.workers(database, count) as workers:
                    samples, extra = repetitions(options, app, seed, receiver, workers)
            except Exception as error:  # one set-up failing must not lose the others
                figures.append(
                    not_measured(
                        key,
                        NAME,
                        TITLE,
                        backend.setup(count),
                        "runs/s",
                        f"failed: {type(error).__name__}: {error}"[:300],
                        target_for(backend, count),
                    )
                )
                continue
            figures.append(
                figure(
                    key,
                    NAME,
                    TITLE,
                    backend.setup(count),
                    "runs/s",
                    samples,
                    target=target_for(backend, count),
                    note=SQLITE_NOTE if backend.database == "sqlite" else "",
                    extra=extra,
                )
            )
    return figures


def one_batch(
    app: Flask, seed: env.Seed, receiver: env.Receiver, workers: env.Workers, size: int
) -> tuple[float, dict[str, float]]:
    """Create ``size`` incidents at once; runs/s from their commit to the last completion."""
    receiver.reset()
    since = time.time()
    time.sleep(0.01)  # created_at of this batch's runs is strictly after ``since``
    _, committed = env.create_incidents(app, seed, size)
    failed = env.wait_for_runs(app, since, size, timeout=max(120.0, size / 2), workers=workers)
    runs = env.runs_since(app, since, details=False)
    if failed:
        errors = {r.error for r in runs if r.status != "COMPLETED"}
        raise RuntimeError(f"{failed} of {size} runs did not complete: {sorted(errors)[:3]}")
    last = max(r.completed_at or 0.0 for r in runs)
    first_created = min(r.created_at for r in runs)
    arrivals = len(receiver.arrivals())
    if arrivals != 2 * size:
        raise RuntimeError(f"the receiver saw {arrivals} requests, expected {2 * size}")
    elapsed = last - committed
    return size / elapsed, {
        "runs": size,
        "seconds": round(elapsed, 3),
        "first_run_created_after_s": round(first_created - committed, 3),
    }


def repetitions(
    options: Options,
    app: Flask,
    seed: env.Seed,
    receiver: env.Receiver,
    workers: env.Workers,
) -> tuple[list[float], dict[str, object]]:
    warm_rate, _ = one_batch(app, seed, receiver, workers, 10 if options.quick else 40)
    size = int(min(3000, max(30 if options.quick else 100, warm_rate * options.throughput_seconds)))
    samples: list[float] = []
    details = []
    for _ in range(options.repeats):
        rate, info = one_batch(app, seed, receiver, workers, size)
        samples.append(rate)
        details.append(info)
        options.log(f"  {rate:.1f} runs/s ({size} runs in {info['seconds']}s)")
    return samples, {"batch": size, "repetitions": details, "warm_up_runs_per_s": warm_rate}
