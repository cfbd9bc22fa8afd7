"""``flask worker run``: the embedded worker on its own (refused with the Celery backend)."""

from __future__ import annotations

import contextlib
import signal
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.engine.worker import Worker, WorkerSettings, commit_without_waiting
from app.ops.settings import engine_backend
from app.ops.worker_lock import WorkerLockHeld, embedded_worker_lock

worker_cli = AppGroup("worker", help="The workflow engine's worker.")


@worker_cli.command("run")
@click.option("--once", is_flag=True, help="Do what is due now, then exit (for cron or tests).")
def run_worker(once: bool) -> None:
    """Run the embedded worker until interrupted (SIGINT or SIGTERM)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if engine_backend(app.config) == "celery":
        raise click.ClickException(
            "ENGINE_BACKEND is celery: the embedded worker must not run beside Celery workers.\n"
            "Start Celery workers and exactly one beat instead:\n"
            "  celery -A celery_worker:celery worker --concurrency 4\n"
            "  celery -A celery_worker:celery beat\n"
            "(or unset INCIDENTFLOW_ENGINE_BACKEND to use the embedded worker)."
        )
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(embedded_worker_lock(app.config["SQLALCHEMY_DATABASE_URI"]))
        except WorkerLockHeld as error:
            raise click.ClickException(str(error)) from None
        _run(app, once)


def _run(app: Flask, once: bool) -> None:
    commit_without_waiting(app)
    worker = Worker(app, settings=WorkerSettings.from_config(app.config))
    if once:
        worker.run_once()
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Worker {worker.worker_id} running; Ctrl-C to stop.")
    worker.run_forever()
