"""``flask worker run``: the embedded worker on its own."""

from __future__ import annotations

import signal
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup

from app.engine.worker import Worker, WorkerSettings

worker_cli = AppGroup("worker", help="The workflow engine's worker.")


@worker_cli.command("run")
@click.option("--once", is_flag=True, help="Do what is due now, then exit (for cron or tests).")
def run_worker(once: bool) -> None:
    """Run the embedded worker until interrupted (SIGINT or SIGTERM)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
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
