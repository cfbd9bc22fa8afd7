"""Liveness and readiness, for load balancers and orchestrators. No sign-in for the status.

``/healthz`` answers 200 whenever the process can serve a request: it touches
nothing else, so a database outage never gets a healthy web process restarted.

``/readyz`` answers 200 only when the service can do its job, 503 otherwise. Anyone
gets the status (``{"status": "ok"}`` or ``"unready"``); the checks below are shown
only to a signed-in admin or with ``Authorization: Bearer <METRICS_TOKEN>``:

* **database**: ``SELECT 1`` on the app's engine;
* **broker**: a Redis ``PING`` (1 s connect and read timeouts), only when
  ``ENGINE_BACKEND`` is ``celery``. A broker URL alone does not make the check
  required: the embedded backend uses no broker, and a stale setting must not
  take it out of service;
* **workers**: heartbeat freshness. A worker is fresh when its last heartbeat
  is at most ``WORKER_STALE_SECONDS`` (default 60) old. Ready needs one fresh
  worker whenever any heartbeat row exists (workers ran and have all gone
  quiet: crashed or hung). With no row at all, the celery backend is unready
  (its workers are separate deployments that must be up) while the embedded
  backend is ready (the single-machine default, where the web may run alone,
  for example ``flask run`` while developing). With ``EXPECTED_WORKERS`` set,
  ready needs at least that many fresh workers (processes: a Celery worker
  with ``--concurrency 4`` counts 4), and the check reports expected vs. live;
* **sweep**: the due-work sweep of the backend (beat's ``dispatch_due`` for
  celery, the embedded worker's pass) ran at most ``READY_SWEEP_SECONDS`` ago
  (``app.ops.sweep``). Before any sweep was ever recorded the check passes,
  saying so: a fresh installation is not "down".

Nothing in a response names a host, a URL or a password: failures give the
exception type only, since a driver's message can carry the connection string.
"""

from __future__ import annotations

import hmac
import socket
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Response, current_app, jsonify, request
from flask_login import current_user

from app.db import utcnow
from app.extensions import db
from app.ops.blueprint import bp
from app.ops.settings import engine_backend, setting, worker_stale_seconds
from app.ops.sweep import last_sweep
from app.workflows.models import WorkerHeartbeat

BROKER_TIMEOUT_SECONDS = 1.0
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _no_store(response: Response, status: int) -> tuple[Response, int]:
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    return _no_store(jsonify({"status": "ok"}), 200)


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    report = readiness()
    status = 200 if report["status"] == "ok" else 503
    if not _may_see_details():
        # Load balancers need the status alone; the details are for operators.
        report = {"status": report["status"]}
    return _no_store(jsonify(report), status)


def _may_see_details() -> bool:
    if metrics_token_given():
        return True
    try:
        return bool(current_user.is_authenticated and current_user.is_admin)
    except sa.exc.SQLAlchemyError:
        return False  # the database is down: a session cannot be checked


def metrics_token_given() -> bool:
    """Whether the request carries ``Authorization: Bearer <METRICS_TOKEN>`` (when set)."""
    token = setting("METRICS_TOKEN")
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def readiness() -> dict[str, Any]:
    """The readiness report: each check, and ``status`` ok only if every check is ok."""
    backend = engine_backend()
    database, workers, sweep = _check_database_and_workers(
        backend, require_worker=backend == "celery"
    )
    checks = {
        "database": database,
        "broker": check_broker(backend),
        "workers": workers,
        "sweep": sweep,
    }
    ready = all(check["ok"] for check in checks.values())
    return {"status": "ok" if ready else "unready", "backend": backend, "checks": checks}


def _check_database_and_workers(
    backend: str, *, require_worker: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    stale_after = worker_stale_seconds()
    expected = int(current_app.config.get("EXPECTED_WORKERS") or 0)
    sweep_max_age = float(current_app.config.get("READY_SWEEP_SECONDS") or 60.0)
    started = time.perf_counter()
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1))).scalar_one()
            latency_ms = (time.perf_counter() - started) * 1000
            now = utcnow()
            fresh_cutoff = now - timedelta(seconds=stale_after)
            total, fresh, newest = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(
                        sa.func.sum(
                            sa.case((WorkerHeartbeat.last_seen_at >= fresh_cutoff, 1), else_=0)
                        ),
                        0,
                    ),
                    sa.func.max(WorkerHeartbeat.last_seen_at),
                ).select_from(WorkerHeartbeat)
            ).one()
            swept_at = last_sweep(conn, backend)
    except sa.exc.SQLAlchemyError as error:
        failed = {"ok": False, "error": _error_name(error)}
        unknown_sweep = {
            "ok": False,
            "error": "The database is unreachable, so the last sweep cannot be read.",
            "maxAgeSeconds": sweep_max_age,
        }
        return (
            failed,
            {
                "ok": False,
                "error": "The database is unreachable, so worker heartbeats cannot be read.",
                "fresh": None,
                "stale": None,
                "newestHeartbeatAgeSeconds": None,
                "staleAfterSeconds": stale_after,
            },
            unknown_sweep,
        )
    database = {"ok": True, "latencyMs": round(latency_ms, 2)}
    fresh = int(fresh)
    enough = fresh >= expected if expected else fresh > 0 or (total == 0 and not require_worker)
    workers: dict[str, Any] = {
        "ok": enough,
        "fresh": fresh,
        "stale": int(total) - fresh,
        "newestHeartbeatAgeSeconds": (
            round(max((now - newest).total_seconds(), 0.0), 1) if newest is not None else None
        ),
        "staleAfterSeconds": stale_after,
    }
    if expected:
        workers.update(expected=expected, live=fresh)
    if not workers["ok"]:
        if expected and fresh:
            workers["error"] = (
                f"{fresh} of the {expected} expected workers are alive: "
                "start the missing ones or check why they stopped."
            )
        else:
            workers["error"] = (
                "Every worker's heartbeat is stale: start a worker or check why it stopped."
                if total
                else "No worker has sent a heartbeat: start a worker."
            )
    return database, workers, _sweep_check(backend, swept_at, now, sweep_max_age)


def _sweep_check(
    backend: str, swept_at: datetime | None, now: datetime, max_age: float
) -> dict[str, Any]:
    who = "beat (dispatch_due)" if backend == "celery" else "the embedded worker"
    if swept_at is None:
        return {
            "ok": True,
            "checked": False,
            "reason": f"No sweep by {who} has been recorded yet.",
            "maxAgeSeconds": max_age,
        }
    age = max((now - swept_at).total_seconds(), 0.0)
    check: dict[str, Any] = {
        "ok": age <= max_age,
        "checked": True,
        "ageSeconds": round(age, 1),
        "maxAgeSeconds": max_age,
    }
    if not check["ok"]:
        check["error"] = (
            f"The due-work sweep by {who} last ran {age:.0f} s ago: due runs are waiting. "
            f"Check that {who} is running."
        )
    return check


def check_broker(backend: str) -> dict[str, Any]:
    if backend != "celery":
        return {"ok": True, "checked": False, "reason": f"The {backend} backend uses no broker."}
    url = setting("CELERY_BROKER_URL")
    if not url:
        return {
            "ok": False,
            "checked": True,
            "error": "No broker URL is configured (INCIDENTFLOW_CELERY_BROKER_URL).",
        }
    started = time.perf_counter()
    try:
        _ping(url)
    except Exception as error:  # any failure means "not ready"; the type is enough to say why
        return {"ok": False, "checked": True, "error": _error_name(error)}
    return {
        "ok": True,
        "checked": True,
        "latencyMs": round((time.perf_counter() - started) * 1000, 2),
    }


def _ping(url: str) -> None:
    """A Redis PING; for another broker (AMQP, ...) a TCP connection to it."""
    parts = urlsplit(url)
    if parts.scheme in REDIS_SCHEMES:
        import redis

        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
            socket_timeout=BROKER_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    if not parts.hostname:
        raise ValueError("broker URL without a host")
    port = parts.port or {"amqp": 5672, "amqps": 5671}.get(parts.scheme)
    if port is None:
        raise ValueError("broker URL without a port")
    with socket.create_connection((parts.hostname, port), timeout=BROKER_TIMEOUT_SECONDS):
        pass


def _error_name(error: BaseException) -> str:
    """What failed, without the message (which may carry a host, user or password)."""
    original = getattr(error, "orig", None)
    kind = type(original if isinstance(original, BaseException) else error)
    return f"{kind.__module__.split('.')[0]}.{kind.__name__}"
