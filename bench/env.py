"""The benchmark harness: throwaway databases, the app, seed data, workers, the receiver.

Everything a measurement needs is made here and removed afterwards: a SQLite
file in a temporary folder or a PostgreSQL database ``iflow_bench_<random>``
(dropped at the end), an instance folder of its own, a webhook receiver
process, and worker processes started exactly as an operator starts them
(``flask worker run``; Celery's ``celery worker`` and ``celery beat``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET_KEY = "bench-" + uuid.uuid4().hex
PASSWORD = "correct horse battery"


class Unavailable(Exception):
    """A service a measurement needs is missing: the figure is reported as not measured."""


# --- databases ----------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str
    workdir: Path
    _admin_url: str | None = None
    _name: str | None = None

    @property
    def instance_path(self) -> Path:
        return self.workdir / "instance"

    def drop(self) -> None:
        if self.kind == "postgresql" and self._admin_url and self._name:
            engine = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))
            engine.dispose()
        shutil.rmtree(self.workdir, ignore_errors=True)


def postgres_available() -> str | None:
    """None when the benchmark PostgreSQL answers, otherwise why not."""
    from app.config import normalise_database_url

    try:
        engine = sa.create_engine(
            normalise_database_url(POSTGRES_URL), connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any failure means: not measurable here
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({type(error).__name__})"
    return None


def redis_available() -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as error:
        return f"Redis at {REDIS_URL} is not reachable ({type(error).__name__})"
    return None


def make_database(kind: str) -> Database:
    """A new, migrated database of this kind."""
    from app.config import normalise_database_url

    workdir = Path(tempfile.mkdtemp(prefix="iflow-bench-"))
    if kind == "sqlite":
        database = Database(kind, f"sqlite:///{workdir / 'bench.db'}", workdir)
    else:
        reason = postgres_available()
        if reason:
            shutil.rmtree(workdir, ignore_errors=True)
            raise Unavailable(reason)
        admin_url = normalise_database_url(POSTGRES_URL)
        name = f"iflow_bench_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        database = Database(kind, url, workdir, admin_url, name)
    try:
        app = make_app(database)
        with app.app_context():
            from flask_migrate import upgrade

            from app.extensions import db

            logging.disable(logging.INFO)  # Alembic's line per migration
            try:
                upgrade(revision="heads")  # "head"; also works while a branch is being merged
            finally:
                logging.disable(logging.NOTSET)
            db.engine.dispose()
    except SystemExit as error:  # Flask-Migrate exits on a migration error
        database.drop()
        raise RuntimeError("migrating the benchmark database failed (see above)") from error
    except BaseException:
        database.drop()  # nothing is left behind when migrating fails
        raise
    return database


@contextlib.contextmanager
def database(kind: str) -> Iterator[Database]:
    made = make_database(kind)
    try:
        yield made
    finally:
        made.drop()


def app_settings(database: Database, **extra: Any) -> dict[str, Any]:
    return {
        "INSTANCE_PATH": str(database.instance_path),
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database.url,
        "OUTBOUND_ALLOW": "127.0.0.1",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        **extra,
    }


def make_app(database: Database, **extra: Any) -> Flask:
    from app import create_app

    # The engine logs every run at INFO; the harness wants only its own output.
    logging.getLogger("incidentflow").setLevel(logging.WARNING)
    return create_app(app_settings(database, **extra))


def process_env(database: Database, **extra: str) -> dict[str, str]:
    """The environment a worker process gets: the same settings, through variables."""
    env = dict(os.environ)
    env.update(
        {
            "FLASK_APP": "wsgi",
            "DATABASE_URL": database.url,
            "SECRET_KEY": SECRET_KEY,
            "INCIDENTFLOW_INSTANCE_PATH": str(database.instance_path),
            "INCIDENTFLOW_OUTBOUND_ALLOW": "127.0.0.1",
            "INCIDENTFLOW_ENV": "production",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


# --- seed data ----------------------------------------------------------------


@dataclass
class Seed:
    admin_id: str
    team_id: str
    admin_email: str = "bench-admin@example.com"


def seed(app: Flask) -> Seed:
    """An admin and a team; idempotent."""
    from app.auth.models import Team, TeamMembership, User
    from app.extensions import db

    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.email == "bench-admin@example.com"))
        if admin is None:
            admin = User(
                email="bench-admin@example.com",
                first_name="Bench",
                last_name="Admin",
                is_admin=True,
            )
            admin.set_password(PASSWORD)
            team = Team(name="Bench")
            db.session.add_all([admin, team])
            db.session.flush()
            db.session.add(TeamMembership(team_id=team.id, user_id=admin.id))
            db.session.commit()
        team_id = db.session.scalar(sa.select(Team.id).where(Team.name == "Bench"))
        assert team_id is not None
        return Seed(admin.id, team_id)


def benchmark_definition(receiver_url: str, delay_minutes: int = 0) -> dict[str, Any]:
    """trigger → condition (priority is P1) → webhook → delay → webhook."""
    from app.definition.builders import (
        action_node,
        condition_node,
        definition,
        delay_node,
        edge,
        trigger_config,
        trigger_node,
        webhook_config,
    )

    def webhook(node_id: str, body: str) -> dict[str, Any]:
        node = action_node(
            node_id,
            "webhook",
            webhook_config(url=receiver_url + f"/{node_id}/{{{{ incident.id }}}}", body=body),
            name=f"Call {node_id}",
        )
        node["data"]["retry"]["attempts"] = 1
        return node

    return definition(
        [
            trigger_node(),
            condition_node("is_p1", "priority", "P1"),
            webhook("first", '{"title": {{ incident.title | tojson }}}'),
            delay_node("pause", delay_minutes),
            webhook("second", '{"first": {{ steps.first.result.status | tojson }}}'),
        ],
        [
            edge("start", "is_p1"),
            edge("is_p1", "first", "true"),
            edge("first", "pause"),
            edge("pause", "second"),
        ],
        trigger_config("incident_created"),
        name=f"Benchmark (delay {delay_minutes} min)",
        description="trigger → condition → webhook → delay → webhook",
    )


def enable_workflow(app: Flask, seed_: Seed, definition: dict[str, Any]) -> str:
    """Create and enable a global workflow through the workflow service; returns its id."""
    from app.auth.models import User
    from app.extensions import db
    from app.workflows import service as workflows
    from app.workflows.enums import ScopeType

    with app.app_context():
        admin = db.session.get(User, seed_.admin_id)
        assert admin is not None
        workflow = workflows.create_workflow(
            admin,
            name=definition["name"],
            description=definition["description"],
            scope=ScopeType.GLOBAL,
            definition=definition,
        )
        workflows.set_enabled(admin, workflow, True)
        db.session.commit()
        return str(workflow.id)


def disable_all_workflows(app: Flask) -> None:
    from app.extensions import db
    from app.workflows.models import Workflow

    with app.app_context():
        db.session.execute(sa.update(Workflow).values(is_enabled=False))
        db.session.commit()


def create_incidents(
    app: Flask, seed_: Seed, count: int, *, priority: str = "P1"
) -> tuple[list[str], float]:
    """``count`` incidents through the incident service, in one transaction.

    Returns their ids and the time (``time.time()``) the transaction committed,
    when every event became visible to the workers at once.
    """
    from app.auth.models import User
    from app.extensions import db
    from app.incidents import service as incidents
    from app.incidents.enums import ChangeSource
    from app.incidents.schemas import IncidentCreate

    with app.app_context():
        admin = db.session.get(User, seed_.admin_id)
        actor = incidents.Actor(admin, ChangeSource.API)
        ids = []
        for n in range(count):
            incident = incidents.create_incident(
                actor,
                IncidentCreate(
                    title=f"Benchmark incident {n}",
                    priority=priority,  # type: ignore[arg-type]
                    team_id=seed_.team_id,
                ),
            )
            ids.append(incident.id)
        db.session.commit()
        committed = time.time()
        db.session.remove()
    return ids, committed


# --- processes ----------------------------------------------------------------


@dataclass
class Receiver:
    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arrivals(self) -> list[tuple[float, str, str]]:
        with urllib.request.urlopen(self.url + "/_arrivals", timeout=30) as response:
            return [tuple(item) for item in json.load(response)]  # type: ignore[misc]

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def stop(self) -> None:
        stop_process(self.process)


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.receiver"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("PORT "):
        stop_process(process)
        raise RuntimeError(f"the receiver did not start: {line!r}")
    made = Receiver(process, int(line.split()[1]))
    try:
        yield made
    finally:
        made.stop()


def stop_process(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class Workers:
    """Worker processes of one backend; ``pids`` are the processes doing the work."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(Exception):
                stop_process(process)

    def check_alive(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"a worker exited ({process.returncode}):\n{tail}")


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the harness dies (Linux), so no worker
    outlives an interrupted benchmark."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        handle.close()


FLASK_WORKER = ("flask", "worker", "run")


def embedded_workers(
    database: Database, count: int, command: tuple[str, ...] = FLASK_WORKER, **env_extra: str
) -> Workers:
    """``count`` processes of ``flask worker run`` (or ``python -m <command>``), waiting
    until each has said it is alive."""
    workers = Workers()
    env = process_env(database, **env_extra)
    for n in range(count):
        log = database.workdir / f"worker-{n}-{uuid.uuid4().hex[:6]}.log"
        workers.logs.append(log)
        workers.processes.append(spawn([PYTHON, "-m", *command], env, log))
    try:
        wait_for_heartbeats(database, count, workers)
    except BaseException:
        workers.stop()
        raise
    return workers


def wait_for_heartbeats(
    database: Database, count: int, workers: Workers, timeout: float = 60
) -> None:
    from app.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(database.url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            workers.check_alive()
            with engine.connect() as conn:
                alive = conn.scalar(sa.text("SELECT count(*) FROM worker_heartbeat"))
            if (alive or 0) >= count:
                return
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise RuntimeError("workers did not start in time")


def celery_available() -> str | None:
    """None when the Celery backend exists in this checkout and Redis answers."""
    if not (ROOT / "celery_worker.py").exists():
        return "the Celery backend's entry point (celery_worker.py) is not in this checkout"
    return redis_available()


def celery_workers(
    database: Database, count: int, *, beat: bool = True, **env_extra: str
) -> Workers:
    """``celery worker --concurrency count`` (prefork) plus ``celery beat``, on Redis DB 13."""
    reason = celery_available()
    if reason:
        raise Unavailable(reason)
    flush_redis()
    env = process_env(
        database,
        INCIDENTFLOW_ENGINE_BACKEND="celery",
        ENGINE_BACKEND="celery",
        INCIDENTFLOW_CELERY_BROKER_URL=REDIS_URL,
        **env_extra,
    )
    workers = Workers()
    commands = [
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "celery_worker:celery",
            "worker",
            "--concurrency",
            str(count),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
        ]
    ]
    if beat:
        commands.append(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "celery_worker:celery",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(database.workdir / f"beat-{uuid.uuid4().hex[:6]}"),
            ]
        )
    for n, command in enumerate(commands):
        log = database.workdir / f"celery-{n}-{uuid.uuid4().hex[:6]}.log"
        workers.logs.append(log)
        workers.processes.append(spawn(command, env, log))
    return workers


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


# --- waiting and reading results -------------------------------------------------


def wait_until(
    predicate: Any, timeout: float, interval: float = 0.1, workers: Workers | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if workers is not None:
            workers.check_alive()
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout:.0f}s")


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (Celery's prefork pool), from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if not children.exists():
        return []
    return [int(p) for p in children.read_text().split()]


# --- runs ------------------------------------------------------------------------


@dataclass
class RunRow:
    id: str
    incident_id: str
    status: str
    created_at: float
    started_at: float | None
    completed_at: float | None
    completed_nodes: list[dict[str, Any]]
    error: str | None


def runs_since(app: Flask, since: float, *, details: bool = True) -> list[RunRow]:
    """Runs created at or after ``since`` (unix time), oldest first."""
    from datetime import UTC, datetime

    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    columns = [
        Run.id,
        Run.incident_id,
        Run.status,
        Run.created_at,
        Run.started_at,
        Run.completed_at,
        Run.completed_nodes if details else sa.literal(None),
        Run.error,
    ]
    with app.app_context():
        rows = db.session.execute(
            sa.select(*columns)
            .where(Run.created_at >= datetime.fromtimestamp(since, UTC))
            .order_by(Run.created_at)
        ).all()
        db.session.remove()
    return [
        RunRow(
            id=row[0],
            incident_id=row[1],
            status=str(row[2].value if hasattr(row[2], "value") else row[2]),
            created_at=row[3].timestamp(),
            started_at=row[4].timestamp() if row[4] else None,
            completed_at=row[5].timestamp() if row[5] else None,
            completed_nodes=row[6] or [],
            error=row[7],
        )
        for row in rows
    ]


def count_ended_since(app: Flask, since: float) -> tuple[int, int]:
    """(ended, failed) among runs created since ``since``."""
    from datetime import UTC, datetime

    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    with app.app_context():
        rows = db.session.execute(
            sa.select(Run.status, sa.func.count())
            .where(
                Run.created_at >= datetime.fromtimestamp(since, UTC),
                Run.status.in_(["COMPLETED", "FAILED", "CANCELLED"]),
            )
            .group_by(Run.status)
        ).all()
        db.session.remove()
    counts = {str(getattr(s, "value", s)): n for s, n in rows}
    return sum(counts.values()), counts.get("FAILED", 0) + counts.get("CANCELLED", 0)


def wait_for_runs(
    app: Flask, since: float, expected: int, timeout: float, workers: Workers | None = None
) -> int:
    """Wait until ``expected`` runs created since ``since`` have ended; returns failures."""
    state = {"failed": 0}

    def ended() -> bool:
        done, failed = count_ended_since(app, since)
        state["failed"] = failed
        return done >= expected

    wait_until(ended, timeout, interval=0.2, workers=workers)
    return state["failed"]


def iso_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def step_times(run: RunRow) -> list[tuple[str, float]]:
    """(node id, seconds) for each step of a finished run, from its stored timestamps.

    A step lasts from its node's ``startedAt`` to the next step's start (the run's
    ``completed_at`` for the last node): its own work, its commit, and loading the
    run again for the next step. Parked time (a delay's wait) is not a step.
    """
    records = [r for r in run.completed_nodes if r.get("status") != "skipped"]
    starts: list[tuple[str, float, float]] = []
    for record in records:
        started = iso_time(record["startedAt"])
        finished = iso_time(record.get("completedAt") or record["startedAt"])
        starts.append((record["nodeId"], started, finished))
    result = []
    for (node, started, finished), following in zip(starts, [*starts[1:], None], strict=True):
        end = following[1] if following else run.completed_at
        if end is None:
            continue
        if finished - started > 1 and following is not None:
            # A delay that really waited: the step is from its wake-up on.
            started = finished
        result.append((node, end - started))
    return result
