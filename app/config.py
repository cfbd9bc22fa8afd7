"""Every setting of the app, read here once: from the environment, else its default.

One precedence: the environment over the defaults, and the mapping a caller passes
to ``create_app`` (tests) over both. No other module of ``app/`` reads
``os.environ`` (tests/unit/test_config.py checks): they read ``app.config``.
Processes without an app of their own (a Celery worker or beat, the logging of
``manage.py``'s children) build one with ``create_app`` and so get the same values.
The README's configuration table lists every variable.

Everything has a default that works on one machine with nothing else installed:
SQLite in the instance folder and a secret key generated there on first run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HTMX_VERSION = "2.0.11"
ENVIRONMENTS = ("production", "development", "testing")
#: Settings that only tests may set (through ``create_app``'s mapping, with ``TESTING``).
TEST_HOOKS = ("TEST_HOOK_PASSWORD_HASH_METHOD",)
#: ``INCIDENTFLOW_<NAME>`` -> ``config[NAME]`` as text (None when unset); the code that
#: uses each parses it where it is used (app/ops/settings.py, the engine's settings).
TEXT_SETTINGS = (
    "SECRET_KEYS",  # Fernet keys for workflow secrets, newest first (workflows/secrets.py)
    "DEMO_PASSWORD",  # the demo users' password (flask demo load)
    "CELERY_BROKER_URL",
    "OUTBOUND_REQUEST_TIMEOUT",
    "OUTBOUND_CONNECT_TIMEOUT",
    "WORKER_STALE_SECONDS",
)
#: Every ``INCIDENTFLOW_ENGINE_<FIELD>`` becomes ``config["ENGINE_<FIELD>"]``: the engine's
#: settings (``WorkerSettings.from_config`` and friends) type and check them.
ENGINE_PREFIX = "INCIDENTFLOW_ENGINE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def environment() -> Mapping[str, str]:
    """The process environment: the one place the app reads it."""
    return os.environ


def instance_path_from_environment() -> str | None:
    return os.environ.get("INCIDENTFLOW_INSTANCE_PATH") or None


def normalise_database_url(url: str) -> str:
    """Accept the usual PostgreSQL spellings and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def instance_secret(instance_path: str, filename: str, nbytes: int = 48) -> str:
    """Read a secret from the instance folder, generating it (mode 0600) on first use."""
    path = Path(instance_path) / filename
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    # O_EXCL: if two processes start at once, the second reads what the first wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    return value


def load_settings(instance_path: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Every setting, from ``environ`` (the process environment, or a test's mapping)."""
    env = environ.get("INCIDENTFLOW_ENV", "production")
    if env not in ENVIRONMENTS:
        raise RuntimeError(
            f"INCIDENTFLOW_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}"
        )
    default_db = "sqlite:///" + str(Path(instance_path) / "incidentflow.db")
    database_url = normalise_database_url(environ.get("DATABASE_URL") or default_db)
    secret_key = environ.get("SECRET_KEY") or instance_secret(instance_path, "secret_key")
    secure_cookies = env != "development" and env != "testing"
    return {
        "ENV_NAME": env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "HTMX_VERSION": HTMX_VERSION,
        # Hosts and networks outgoing workflow requests may reach although they are
        # internal (loopback, private, ...): comma-separated names, IPs or CIDRs.
        "OUTBOUND_ALLOW": environ.get("INCIDENTFLOW_OUTBOUND_ALLOW", ""),
        # Where OUTBOUND_ALLOW came from, for the admin page (a create_app mapping that
        # sets OUTBOUND_ALLOW should set this too).
        "OUTBOUND_ALLOW_SOURCE": (
            "the INCIDENTFLOW_OUTBOUND_ALLOW environment variable"
            if "INCIDENTFLOW_OUTBOUND_ALLOW" in environ
            else "nowhere (INCIDENTFLOW_OUTBOUND_ALLOW is not set)"
        ),
        "LINEAR_API_URL": environ.get(
            "INCIDENTFLOW_LINEAR_API_URL", "https://api.linear.app/graphql"
        ),
        # Test hook: a werkzeug hash method for new passwords instead of scrypt (the
        # suite uses "pbkdf2:sha256:1"; scrypt costs ~150 ms a hash). Never from the
        # environment; refused unless TESTING is on (see check_test_hooks).
        "TEST_HOOK_PASSWORD_HASH_METHOD": None,
        # How many reverse proxies stand before the app: their X-Forwarded-For/-Proto/
        # -Host/-Port are believed (the client's address for sign-in limits, HTTPS for
        # HSTS). 0 (the default) believes none: a client could forge them.
        "TRUSTED_PROXIES": _count(environ, "INCIDENTFLOW_TRUSTED_PROXIES"),
        # When set, /metrics needs "Authorization: Bearer <token>", and the token also
        # shows /readyz's details.
        "METRICS_TOKEN": environ.get("INCIDENTFLOW_METRICS_TOKEN", ""),
        # /readyz: 503 when the due-work sweep (beat's dispatch, or the embedded
        # worker's pass) has not run for this long.
        "READY_SWEEP_SECONDS": _number(
            environ, "INCIDENTFLOW_READY_SWEEP_SECONDS", 60.0, minimum=1
        ),
        # /readyz: 503 while fewer worker processes than this send heartbeats (0: any).
        "EXPECTED_WORKERS": int(
            _number(environ, "INCIDENTFLOW_EXPECTED_WORKERS", 0, minimum=0, whole=True)
        ),
        # The loop guard: a run started by a change that a workflow run made is linked to
        # that run; a chain of more runs than this within LOOP_GUARD_MINUTES is cut (the
        # next run is not started, and the incident's timeline says why).
        "LOOP_GUARD_DEPTH": int(
            _number(environ, "INCIDENTFLOW_LOOP_GUARD_DEPTH", 5, minimum=1, whole=True)
        ),
        "LOOP_GUARD_MINUTES": _number(environ, "INCIDENTFLOW_LOOP_GUARD_MINUTES", 60.0, minimum=1),
        # A worker's heartbeat row is deleted once it is this many heartbeat
        # intervals old: the worker is gone.
        "HEARTBEAT_EXPIRY_INTERVALS": _number(
            environ, "INCIDENTFLOW_HEARTBEAT_EXPIRY_INTERVALS", 10.0, minimum=2
        ),
        # Bulk replays start at most this many runs a second (their due times are
        # staggered), so re-sending after an outage cannot flood the destination.
        "REPLAY_RUNS_PER_SECOND": _number(
            environ, "INCIDENTFLOW_REPLAY_RUNS_PER_SECOND", 2.0, minimum=0.01
        ),
        # Logging (app/ops/logging.py): a level name, and "json" or "plain".
        "LOG_LEVEL": _log_level(environ),
        "LOG_FORMAT": "json"
        if (environ.get("INCIDENTFLOW_LOG_FORMAT") or "").strip().lower() == "json"
        else "plain",
        **{name: environ.get(f"INCIDENTFLOW_{name}") or None for name in TEXT_SETTINGS},
        **{
            name.removeprefix("INCIDENTFLOW_"): value
            for name, value in environ.items()
            if name.startswith(ENGINE_PREFIX) and value != ""
        },
    }


def _log_level(environ: Mapping[str, str]) -> str:
    level = (environ.get("INCIDENTFLOW_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise RuntimeError(
            f"INCIDENTFLOW_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}"
        )
    return level


def check_test_hooks(config: Mapping[str, Any]) -> None:
    """Refuse a test hook in an app that is not under test: it would weaken it."""
    if config.get("TESTING"):
        return
    for name in TEST_HOOKS:
        if config.get(name) is not None:
            raise RuntimeError(f"{name} is a test hook; it is only allowed with TESTING on.")


def _count(environ: Mapping[str, str], name: str) -> int:
    raw = environ.get(name, "").strip() or "0"
    if not raw.isdigit():
        raise RuntimeError(f"{name} must be a whole number of 0 or more, not {raw!r}")
    return int(raw)


def _number(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float = 0,
    whole: bool = False,
) -> float:
    """A number from the environment; a clear start-up error for anything else."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    kind = "a whole number" if whole else "a number"
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be {kind}, not {raw!r}") from None
    if value < minimum:
        raise RuntimeError(f"{name} must be at least {minimum:g}, not {raw!r}")
    return float(value)


def engine_options(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        # Several threads (web + embedded worker) share the file; wait for locks.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}
