"""Celery backend fixtures: real ``celery worker`` and ``celery beat`` processes.

The workers run as subprocesses against the test's database (the ``app``
fixture's, so SQLite and PostgreSQL) and a Redis database of their own
(``TEST_REDIS_URL``, DB 15 by default, emptied around each test). They reach the
fake servers on 127.0.0.1. Every process is killed, with its children, when the
test ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from flask import Flask

from app.engine import tasks
from app.engine.celery_app import ADVANCE_RUN, RUNS_QUEUE, CelerySettings, make_celery
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from tests.conftest import require_service
from tests.engine import conftest as engine_fixtures

# The engine's fixtures: engine time, an admin and a responder, enabled workflows, and
# incidents opened through the incident service.
admin = engine_fixtures.admin
clock = engine_fixtures.clock
make_enabled_workflow = engine_fixtures.make_enabled_workflow
open_incident = engine_fixtures.open_incident
responder = engine_fixtures.responder

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def wait_for(
    predicate: Callable[[], Any],
    seconds: float,
    what: str,
    logs: Callable[[], str] | None = None,
    every: float = 0.1,
) -> Any:
    """Poll until ``predicate()`` is truthy (and return it), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n--- process logs ---\n{logs()}" if logs else ""
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}{detail}")
        time.sleep(every)


@pytest.fixture
def broker(app: Flask) -> Iterator[redis.Redis]:
    """The tests' Redis database, empty at the start and at the end of the test."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        available = bool(client.ping())
    except redis.RedisError:
        available = False
    require_service("Redis", available, f"start redis-server or set TEST_REDIS_URL ({REDIS_URL})")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def celery_app(app: Flask, broker: redis.Redis) -> Celery:
    """The test app switched to the Celery backend, publishing to the tests' Redis."""
    app.config.update(
        ENGINE_BACKEND="celery", CELERY_BROKER_URL=REDIS_URL, OUTBOUND_ALLOW="127.0.0.1"
    )
    return make_celery(app)


def advance_run_messages(client: redis.Redis) -> int:
    """``advance_run`` messages in Redis: waiting in the queue or held by a worker."""
    count = 0
    for raw in client.lrange(RUNS_QUEUE, 0, -1):
        if json.loads(raw)["headers"]["task"] == ADVANCE_RUN:
            count += 1
    for raw in client.hvals("unacked"):
        message = json.loads(raw)[0]
        if message["headers"]["task"] == ADVANCE_RUN:
            count += 1
    return count


def no_messages_left(client: redis.Redis) -> bool:
    """No ``advance_run`` waiting or running, twice in a row (a worker that has just
    popped a message holds it a moment before Redis records it as unacknowledged)."""
    if advance_run_messages(client):
        return False
    time.sleep(0.2)
    return advance_run_messages(client) == 0


class CeleryDriver:
    """The Celery backend driven from the test process, with engine time in hand.

    ``run_once`` does what beat and a worker would: the periodic tasks
    (``consume_events``, ``scan_age``, ``dispatch_due``), then every
    ``advance_run`` message waiting in Redis, executed as a worker process does.
    It stands in for the embedded worker in the engine's end-to-end tests.
    """

    def __init__(self, app: Flask, engine_clock: Any, celery: Celery) -> None:
        self.clock = engine_clock
        self.celery = celery
        self.settings = CelerySettings()
        self.worker = Worker(
            app,
            clock=engine_clock,
            settings=WorkerSettings(),
            worker_id="celery:test:1:driver",
            backend="celery",
        )

    def send(self, ids: list[str]) -> None:
        tasks.publish(self.celery, ids)

    def consume_events(self) -> int:
        return tasks.consume_events(self.clock, self.settings)

    def run_once(self) -> int:
        work = tasks.consume_events(self.clock, self.settings)
        work += tasks.scan_age(self.clock)
        tasks.dispatch_due(self.send, self.clock, self.settings)
        return work + self.deliver()

    def deliver(self) -> int:
        """Run every waiting ``advance_run``; returns how many found work to do."""
        advanced = 0
        with self.celery.connection_for_read() as conn:
            while True:
                message = conn.default_channel.basic_get(RUNS_QUEUE, no_ack=True)
                if message is None:
                    return advanced
                assert message.headers["task"] == ADVANCE_RUN
                (execution_ids,), _kwargs, _embed = message.decode()
                for execution_id in execution_ids:
                    outcome = tasks.advance(execution_id, self.worker, self.send, self.settings)
                    advanced += outcome != "not due"


@pytest.fixture
def worker(app: Flask, clock: Any, celery_app: Celery) -> CeleryDriver:
    """Replaces the embedded worker of the engine's tests with the Celery backend."""
    app.config["ENGINE_CLOCK"] = clock
    return CeleryDriver(app, clock, celery_app)


class CeleryProcesses:
    """Starts ``celery worker`` / ``celery beat`` subprocesses configured like production."""

    def __init__(
        self, app: Flask, directory: Path, settings: dict[str, Any], broker_url: str = REDIS_URL
    ) -> None:
        self.app = app
        self.directory = directory
        self.settings = settings
        self.broker_url = broker_url
        # More environment for the processes started from now on.
        self.environment: dict[str, str] = {}
        self.processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.app.config["SQLALCHEMY_DATABASE_URI"],
                "SECRET_KEY": self.app.config["SECRET_KEY"],
                "INCIDENTFLOW_INSTANCE_PATH": self.app.instance_path,
                "INCIDENTFLOW_ENV": "testing",
                "INCIDENTFLOW_ENGINE_BACKEND": "celery",
                "INCIDENTFLOW_CELERY_BROKER_URL": self.broker_url,
                "INCIDENTFLOW_OUTBOUND_ALLOW": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for key, value in self.settings.items():
            env[f"INCIDENTFLOW_ENGINE_{key.upper()}"] = str(value)
        env.update(self.environment)
        return env

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        # stderr (the log) apart from stdout (Celery's start-up banner).
        log_path = self.directory / f"{name}.log"
        with open(log_path, "wb") as log, open(self.directory / f"{name}.stdout", "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "app.engine.celery_app:celery", *args],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=log,
                start_new_session=True,  # its own process group: killed with its children
            )
        self.processes.append((name, process, log_path))
        return process

    def worker(
        self, pool: str = "solo", concurrency: int = 1, quick: bool = True
    ) -> subprocess.Popen[bytes]:
        """``quick=False``: with mingle, gossip and heartbeats, as the README starts it."""
        name = f"worker{sum(1 for n, *_ in self.processes if n.startswith('worker')) + 1}"
        quick_flags = ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        return self._start(
            name,
            [
                "worker",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--loglevel",
                "INFO",
                # Quicker start; these only serve monitoring and remote control.
                *(quick_flags if quick else []),
            ],
        )

    def beat(self) -> subprocess.Popen[bytes]:
        return self._start(
            "beat",
            ["beat", "--schedule", str(self.directory / "beat-schedule"), "--loglevel", "INFO"],
        )

    def stderr(self, name: str) -> str:
        """Everything process ``name`` (``worker1``, ``beat``) wrote to its stderr."""
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def logs(self, tail: int = 40) -> str:
        parts = []
        for name, process, path in self.processes:
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"[{name} pid {process.pid} exit {process.poll()}]\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop_all(self) -> None:
        for _, process, _ in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for _, process, _ in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def celery_processes(
    app: Flask, broker: redis.Redis, tmp_path: Path
) -> Iterator[Callable[..., CeleryProcesses]]:
    """Factory: ``celery_processes(**engine_settings)`` -> CeleryProcesses (killed at the end).

    ``engine_settings`` become ``INCIDENTFLOW_ENGINE_<NAME>`` in the processes'
    environment (``lease_seconds=3``, ``dispatch_window_seconds=2``, ...);
    ``broker_url=`` points them at another Redis than the tests' database.
    """
    made: list[CeleryProcesses] = []

    def make(broker_url: str = REDIS_URL, **settings: Any) -> CeleryProcesses:
        processes = CeleryProcesses(app, tmp_path, settings, broker_url)
        made.append(processes)
        return processes

    try:
        yield make
    finally:
        for processes in made:
            processes.stop_all()
        db.session.remove()
