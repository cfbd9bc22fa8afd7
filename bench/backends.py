"""The engine set-ups measured: the embedded default, embedded on PostgreSQL, Celery."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from bench import env


@dataclass(frozen=True)
class Backend:
    key: str
    database: str  # "sqlite" or "postgresql"
    engine: str  # "embedded" or "celery"
    label: str
    worker_counts: tuple[int, ...]
    # A configuration measured for comparison (proposed, or opt-in): no target applies.
    proposed: bool = False
    command: tuple[str, ...] = env.FLASK_WORKER
    # Extra environment for the worker processes.
    worker_env: tuple[tuple[str, str], ...] = ()

    def setup(self, workers: int) -> str:
        if self.engine == "celery":
            noun = "process" if workers == 1 else "processes"
            return f"{self.label}, {workers} worker {noun} (--concurrency {workers}) + beat"
        noun = "worker" if workers == 1 else "workers"
        return f"{self.label}, {workers} {noun}"

    def web_env(self) -> dict[str, str]:
        """What the web processes need to know of the engine: with Celery, the broker, so
        that a committed incident wakes one worker process with a message (as every
        process gets the same environment in production)."""
        if self.engine == "celery":
            return {
                "INCIDENTFLOW_ENGINE_BACKEND": "celery",
                "INCIDENTFLOW_CELERY_BROKER_URL": env.REDIS_URL,
            }
        return {}

    def app_settings(self) -> dict[str, str]:
        """``web_env`` as an app's config keys (for an app built in the harness)."""
        prefix = "INCIDENTFLOW_"
        return {name.removeprefix(prefix): value for name, value in self.web_env().items()}

    def unavailable(self) -> str | None:
        """Why this set-up cannot be measured here, or None."""
        if self.database == "postgresql":
            reason = env.postgres_available()
            if reason:
                return reason
        if self.engine == "celery":
            return env.celery_available()
        return None

    @contextlib.contextmanager
    def workers(self, database: env.Database, count: int) -> Iterator[env.Workers]:
        if self.engine == "celery":
            started = env.celery_workers(database, count, **dict(self.worker_env))
            try:
                env.wait_for_heartbeats(database, count, started, timeout=90)
            except BaseException:
                started.stop()
                raise
        else:
            started = env.embedded_workers(database, count, self.command, **dict(self.worker_env))
        try:
            yield started
        finally:
            started.stop()
            _forget_heartbeats(database)
            if self.engine == "celery":
                env.flush_redis()  # leave the benchmark's Redis database empty


def _forget_heartbeats(database: env.Database) -> None:
    """Workers stopped hard leave their heartbeat row; the next start counts fresh ones."""
    import sqlalchemy as sa

    from app.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(database.url))
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM worker_heartbeat"))
    engine.dispose()


SQLITE = Backend("sqlite-embedded", "sqlite", "embedded", "Embedded worker, SQLite", (1,))
POSTGRES = Backend(
    "postgresql-embedded", "postgresql", "embedded", "Embedded workers, PostgreSQL", (1, 2, 4)
)
CELERY = Backend(
    "postgresql-celery", "postgresql", "celery", "Celery + Redis, PostgreSQL", (1, 2, 4)
)
SQLITE_DURABLE = Backend(
    "sqlite-embedded-durable",
    "sqlite",
    "embedded",
    "Embedded worker, SQLite, worker commits wait for the disk "
    "(INCIDENTFLOW_ENGINE_ASYNC_COMMIT=0)",
    (1,),
    proposed=True,
    worker_env=(("INCIDENTFLOW_ENGINE_ASYNC_COMMIT", "0"),),
)
CELERY_ASYNC = Backend(
    "postgresql-celery-async",
    "postgresql",
    "celery",
    "Celery + Redis, PostgreSQL, INCIDENTFLOW_ENGINE_ASYNC_COMMIT=1 (opt-in)",
    (4,),
    proposed=True,
    worker_env=(("INCIDENTFLOW_ENGINE_ASYNC_COMMIT", "1"),),
)
ALL = (SQLITE, POSTGRES, CELERY)
SQLITE_NOTE = "1 worker; SQLite serialises writers"
