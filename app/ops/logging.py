"""Structured logs: one JSON object a line, carrying the run, node, workflow, event and
worker a line is about.

``configure_logging(app)`` (called from ``create_app``) sets up the root logger:

* level from ``LOG_LEVEL`` (``INCIDENTFLOW_LOG_LEVEL``, read by app/config.py; default ``INFO``);
* JSON lines when ``LOG_FORMAT`` is ``json`` (``INCIDENTFLOW_LOG_FORMAT``), plain text otherwise;
* the context ids (``execution_id``, ``node_id``, ``workflow_id``, ``event_id``,
  ``worker_id``, ...) come from a record's ``extra={...}``, or from
  :func:`log_context` around a block of work;
* httpx and httpcore are held at WARNING: at INFO they log every request's full
  URL, and a workflow may put a secret in a URL's query string.

Nothing here redacts: secrets are kept out of log lines where they are made
(the engine's scrubber, exception types instead of messages), and the tests
check the lines the engine writes.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask

CONTEXT_FIELDS = (
    "execution_id",
    "node_id",
    "workflow_id",
    "event_id",
    "worker_id",
    "incident_id",
    "trigger_key",
    "status",
)
# Libraries whose INFO lines would carry request URLs (and so, possibly, secrets).
QUIET_LOGGERS = ("httpx", "httpcore")

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "incidentflow_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach ids to every line logged inside the block (by this thread or task)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the ids bound with :func:`log_context` onto each record that lacks them.

    It adds; it never removes or rewrites anything, and never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value if isinstance(value, int | float | bool) else str(value)
    return found


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <context ids>, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger: message [execution_id=... node_id=...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context_of(record)
        if not context:
            return line
        ids = " ".join(f"{name}={value}" for name, value in context.items())
        first, newline, rest = line.partition("\n")
        return f"{first} [{ids}]{newline}{rest}"


def _real_stderr() -> TextIO:
    """``sys.stderr``, unless Celery has replaced it with its logging proxy: then the
    process's own stderr. A record written to the proxy is logged again, and the
    proxy's recursion guard drops it, so nothing would reach the log at all."""
    stream = sys.stderr
    if type(stream).__module__.startswith("celery.") and sys.__stderr__ is not None:
        return sys.__stderr__
    return stream


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return _real_stderr()

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(app: Flask) -> logging.Handler:
    """Send every logger's records to stderr, in the configured format and level.

    Calling it again (several apps in one process, as in tests) replaces the
    handler it installed before rather than adding another.
    """
    level_name = str(app.config.get("LOG_LEVEL") or "INFO").strip().upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise RuntimeError(
            f"INCIDENTFLOW_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
            f"not {level_name!r}"
        )
    as_json = str(app.config.get("LOG_FORMAT") or "").strip().lower() == "json"

    handler = _StderrHandler()
    handler.set_name("incidentflow")
    handler.setFormatter(JsonFormatter() if as_json else PlainFormatter())
    handler.addFilter(ContextFilter())

    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "incidentflow":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    app.logger.setLevel(level)
    # Warnings become records of the ``py.warnings`` logger: lines of the same format.
    logging.captureWarnings(True)
    if "celery" in sys.modules:
        # A ``celery worker`` or ``celery beat`` process (they import celery before
        # they build the app): keep this set-up instead of Celery's.
        _keep_logging_under_celery()
    return handler


broker_log = logging.getLogger("incidentflow.broker")


class _BrokerConnectionLines(logging.Filter):
    """Adds a stable ``broker connection lost`` / ``broker connection restored`` line
    next to Celery's own wording, so that operators and alerts can match one text."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Connection to broker lost" in message:
            self.lost = True
            broker_log.warning("broker connection lost")
        elif self.lost and message.startswith("Connected to "):
            self.lost = False
            broker_log.info("broker connection restored")
        return True


_broker_lines = _BrokerConnectionLines()


def _keep_logging_under_celery() -> None:
    from celery import signals

    # A receiver of ``setup_logging`` tells Celery the logging is configured: it adds
    # no handlers of its own and leaves sys.stdout and sys.stderr alone.
    signals.setup_logging.connect(_celery_setup_logging, weak=False, dispatch_uid="incidentflow")
    logging.getLogger("celery.worker.consumer.consumer").addFilter(_broker_lines)
    logging.getLogger("celery.worker.consumer.connection").addFilter(_broker_lines)


def _celery_setup_logging(**_: Any) -> None:
    """Celery's ``--loglevel`` is ignored: ``INCIDENTFLOW_LOG_LEVEL`` decides."""
