"""The Celery backend: Celery workers (Redis as broker) instead of the embedded worker.

``ENGINE_BACKEND=celery`` (env ``INCIDENTFLOW_ENGINE_BACKEND``) switches the engine
over. The database stays the source of truth: a message only says "look at run X";
the task claims the run in the database first and does nothing if it is not due,
so a lost message delays a step (the periodic dispatcher sends another) and a
duplicated one is a no-op. Nothing waits in the broker: delays and backoffs are
``due_at`` in the database, which the periodic ``dispatch_due`` task wakes, because
Redis redelivers long-held countdown messages after its visibility timeout.

This module holds the Celery configuration (``make_celery``); the processes start
from the entry point ``celery_worker.py`` beside ``wsgi.py``, from the project
directory::

    celery -A celery_worker:celery worker --concurrency 4
    celery -A celery_worker:celery beat
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from flask import Flask

from app.extensions import db
from app.ops.broker import transport_for
from app.ops.settings import config_setting, engine_overrides

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
RUNS_QUEUE = "incidentflow.runs"
PERIODIC_QUEUE = "incidentflow.periodic"

ADVANCE_RUN = "incidentflow.engine.advance_run"
DISPATCH_DUE = "incidentflow.engine.dispatch_due"
CONSUME_EVENTS = "incidentflow.engine.consume_events"
SCAN_AGE = "incidentflow.engine.scan_age"


def broker_url(config: Mapping[str, Any]) -> str:
    """``CELERY_BROKER_URL`` (env ``INCIDENTFLOW_CELERY_BROKER_URL``), local Redis by default."""
    return str(config_setting(config, "CELERY_BROKER_URL") or DEFAULT_BROKER_URL)


@dataclass(frozen=True)
class CelerySettings:
    """How the periodic tasks pace the engine; ``ENGINE_*`` keys, like WorkerSettings."""

    # How often beat sends ``dispatch_due`` and ``consume_events``: a safety net, since
    # the worker processes' loops are woken by committed work.
    dispatch_interval_seconds: float = 2.0
    # A run handed to the broker is not sent again for this long; if its message is
    # lost, it becomes due again afterwards and is sent again.
    dispatch_window_seconds: float = 60.0
    dispatch_batch: int = 500
    # A backlog goes to the workers in messages of up to this many runs.
    runs_per_message: int = 20
    event_batch: int = 200
    age_scan_seconds: float = 30.0
    # Deliveries that may begin one step; the next one ends the run FAILED.
    max_deliveries: int = 3

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CelerySettings:
        values = engine_overrides(
            config,
            (
                ("dispatch_interval_seconds", float),
                ("dispatch_window_seconds", float),
                ("dispatch_batch", int),
                ("runs_per_message", int),
                ("event_batch", int),
                ("age_scan_seconds", float),
                ("max_deliveries", int),
            ),
        )
        return cls(**values)


def make_celery(app: Flask) -> Celery:
    """A Celery app for this Flask app; its tasks run inside the Flask app context."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    settings = CelerySettings.from_config(app.config)
    celery = Celery(app.import_name, task_cls=FlaskTask)
    periodic = {"queue": PERIODIC_QUEUE, "expires": max(settings.dispatch_interval_seconds, 1) * 5}
    celery.conf.update(
        broker_url=broker_url(app.config),
        # Kombu's Redis transport, minus the crash on a broker outage with tasks in flight.
        broker_transport=transport_for(broker_url(app.config)),
        broker_connection_retry_on_startup=True,
        # No result backend: the database holds every outcome.
        task_ignore_result=True,
        result_backend=None,
        # Acknowledge after the task, and put the message back when its worker dies;
        # the claim in the database makes a redelivery harmless, and bounds crashes.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Only for messages a dead worker held; nothing is ever scheduled in the broker.
        broker_transport_options={"visibility_timeout": 3600},
        # Workers consume both; periodic tasks never wait behind a backlog of runs.
        task_queues={RUNS_QUEUE: {}, PERIODIC_QUEUE: {}},
        task_default_queue=RUNS_QUEUE,
        task_routes={
            DISPATCH_DUE: {"queue": PERIODIC_QUEUE},
            CONSUME_EVENTS: {"queue": PERIODIC_QUEUE},
            SCAN_AGE: {"queue": PERIODIC_QUEUE},
        },
        beat_schedule={
            "dispatch-due-runs": {
                "task": DISPATCH_DUE,
                "schedule": timedelta(seconds=settings.dispatch_interval_seconds),
                "options": periodic,
            },
            "consume-incident-events": {
                "task": CONSUME_EVENTS,
                "schedule": timedelta(seconds=settings.dispatch_interval_seconds),
                "options": periodic,
            },
            "scan-age-triggers": {
                "task": SCAN_AGE,
                "schedule": timedelta(seconds=settings.age_scan_seconds),
                "options": {"queue": PERIODIC_QUEUE, "expires": settings.age_scan_seconds},
            },
        },
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    from app.engine import tasks

    tasks.register(celery)
    app.extensions["celery"] = celery
    return celery


def wake_by_broker(app: Flask) -> None:
    """After each commit that adds work, send one ``consume_events`` message: one worker
    process wakes, consumes the events and drives the runs (see ``wake``)."""
    from app.engine import wake

    def send() -> None:
        celery_for(app).send_task(CONSUME_EVENTS, expires=60)

    wake.use_broker(app, send)


def celery_for(app: Flask) -> Celery:
    """This Flask app's Celery app (made on first use)."""
    existing = app.extensions.get("celery")
    return existing if isinstance(existing, Celery) else make_celery(app)
