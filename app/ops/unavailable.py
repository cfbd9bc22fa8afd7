"""503 while the database cannot be reached, instead of 500.

A request that fails because the database is down, restarting, refusing
connections or locked answers ``503 service_unavailable`` with ``Retry-After``
(JSON under ``/api/v1``, elsewhere the page of ``error_pages.unavailable_page``), so
that clients can tell an outage from a bug. Any other database error stays a 500: it is
a bug.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time

import psycopg
import sqlalchemy as sa
from flask import Flask, request
from werkzeug.wrappers import Response

from app.error_pages import unavailable_page
from app.extensions import db

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is temporarily unavailable (its database cannot be reached). Try again."

# SQLite's OperationalError also covers bugs ("no such table"); only these are outages.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached now (not that a query is wrong)."""
    if isinstance(error, sa.exc.TimeoutError):  # no pooled connection became free in time
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    if isinstance(original, psycopg.OperationalError | psycopg.InterfaceError):
        # Refused or lost connections, shutdowns, too many connections, recovery mode.
        return True
    if isinstance(original, sqlite3.OperationalError):
        text = str(original).lower()
        return any(marker in text for marker in _SQLITE_UNAVAILABLE)
    return False


_LOG_EVERY_SECONDS = 10.0
_log_state = {"last": float("-inf"), "quiet": 0}
_log_lock = threading.Lock()


def _log_throttled(kind: str) -> None:
    """One line every ten seconds at most, not one per request: an outage under load
    would otherwise flood the log."""
    now = time.monotonic()
    with _log_lock:
        if now - _log_state["last"] < _LOG_EVERY_SECONDS:
            _log_state["quiet"] += 1
            return
        quiet = int(_log_state["quiet"])
        _log_state.update(last=now, quiet=0)
    log.warning(
        "database unavailable: answering 503 (%s; %d more 503s in the last %.0f s)",
        kind,
        quiet,
        _LOG_EVERY_SECONDS,
    )


def _is_api_request() -> bool:
    return request.path == "/api/v1" or request.path.startswith("/api/v1/")


def unavailable_response() -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if _is_api_request():
        from app.api.errors import error_response

        return error_response(503, "service_unavailable", MESSAGE, headers=headers)
    return unavailable_page(RETRY_AFTER_SECONDS, headers)


def register(app: Flask) -> None:
    """App-wide: the API's and the pages' own handlers do not catch database errors."""

    def database_error(error: Exception) -> Response:
        if not database_unavailable(error):
            raise error
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            db.session.rollback()  # may fail too: the session is discarded at teardown
        _log_throttled(type(getattr(error, "orig", error)).__name__)
        return unavailable_response()

    app.register_error_handler(sa.exc.DBAPIError, database_error)
    app.register_error_handler(sa.exc.TimeoutError, database_error)
