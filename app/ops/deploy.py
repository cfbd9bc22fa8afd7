"""``flask deploy check``: is this deployment's configuration fit to run?

Each check prints OK, WARN or FAIL with the reason and what to do; the command
exits non-zero when any check fails. It reads settings and the database and, with
the Celery backend, connects to the broker; it changes nothing. Run it with the
same environment as the web processes and the workers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from app.engine.celery_app import broker_url
from app.extensions import db
from app.ops.settings import engine_backend

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_SECRET_KEY_LENGTH = 32
# A worker that has not reported for this long is taken for gone.
WORKER_SILENT_SECONDS = 60
# Runs this far past their due time suggest nothing dispatches them.
OVERDUE_SECONDS = 120
METADATA_ADDRESSES = tuple(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200")
)

deploy_cli = AppGroup("deploy", help="Checks for a production deployment.")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


class _Stop(Exception):
    """A check that cannot go on (later checks need what it found missing)."""


def _production(app: Flask) -> bool:
    return str(app.config.get("ENV_NAME", "production")) == "production"


def check_environment(app: Flask) -> Iterator[Check]:
    env = app.config.get("ENV_NAME", "production")
    if env == "production":
        yield Check("environment", OK, "INCIDENTFLOW_ENV is production.")
    else:
        yield Check(
            "environment",
            WARN,
            f"INCIDENTFLOW_ENV is {env}: checks are relaxed. Set it to production "
            "(or leave it unset) on a server.",
        )


def check_secret_key(app: Flask) -> Iterator[Check]:
    key = str(app.config.get("SECRET_KEY") or "")
    generated = Path(app.instance_path) / "secret_key"
    from_file = generated.exists() and generated.read_text(encoding="utf-8").strip() == key
    if from_file:
        status = FAIL if _production(app) else WARN
        yield Check(
            "secret key",
            status,
            f"SECRET_KEY is the one generated into {generated}: each machine would have its "
            "own, so sessions signed by one web process fail on another. Set SECRET_KEY in "
            "the environment of every process (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))').",
        )
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        yield Check(
            "secret key",
            FAIL,
            f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters; use a long "
            "random value.",
        )
    else:
        yield Check("secret key", OK, "SECRET_KEY is set explicitly.")


def check_cookies(app: Flask) -> Iterator[Check]:
    insecure = [
        name
        for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE")
        if not app.config.get(name)
    ]
    if not insecure:
        yield Check("secure cookies", OK, "Session cookies are sent over HTTPS only.")
    else:
        yield Check(
            "secure cookies",
            FAIL if _production(app) else WARN,
            f"{' and '.join(insecure)} off: the session cookie would travel over plain HTTP. "
            "Serve over HTTPS with INCIDENTFLOW_ENV=production.",
        )


def check_outbound_allow(app: Flask) -> Iterator[Check]:
    from app.engine.outbound import AllowList

    raw = app.config.get("OUTBOUND_ALLOW")
    try:
        allow = AllowList.parse(raw)
    except ValueError as error:
        yield Check("outbound allow-list", FAIL, str(error))
        return
    if not allow:
        yield Check(
            "outbound allow-list",
            OK,
            "Workflows may reach public addresses only (INCIDENTFLOW_OUTBOUND_ALLOW is empty).",
        )
        return
    for network in allow.networks:
        if network.prefixlen == 0:
            yield Check(
                "outbound allow-list",
                FAIL,
                f"INCIDENTFLOW_OUTBOUND_ALLOW contains {network}, which lets workflows reach "
                "every internal address. List the hosts or networks they need instead.",
            )
            return
        if any(address in network for address in METADATA_ADDRESSES):
            yield Check(
                "outbound allow-list",
                FAIL,
                f"INCIDENTFLOW_OUTBOUND_ALLOW contains {network}, which includes a cloud "
                "metadata service address (it hands out credentials). Narrow it.",
            )
            return
    loopback = [n for n in allow.networks if n.overlaps(ipaddress.ip_network("127.0.0.0/8"))]
    if loopback and _production(app):
        yield Check(
            "outbound allow-list",
            WARN,
            f"INCIDENTFLOW_OUTBOUND_ALLOW lets workflows reach this machine itself "
            f"({', '.join(map(str, loopback))}); make sure that is intended.",
        )
        return
    entries = len(allow.networks) + len(allow.hosts) + len(allow.domains)
    yield Check(
        "outbound allow-list",
        OK,
        f"{entries} internal destination(s) allowed; everything else internal is refused.",
    )


def check_database(app: Flask) -> Iterator[Check]:
    url = db.engine.url
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        yield Check(
            "database",
            FAIL,
            f"Cannot connect to {url.render_as_string(hide_password=True)}: "
            f"{type(getattr(error, 'orig', None) or error).__name__}. Check DATABASE_URL and "
            "that the server runs.",
        )
        raise _Stop from error
    yield Check("database", OK, f"Connected to {url.render_as_string(hide_password=True)}.")
    if url.get_backend_name() == "postgresql":
        yield Check("database engine", OK, "PostgreSQL.")
    elif engine_backend(app.config) == "celery":
        yield Check(
            "database engine",
            FAIL,
            "SQLite with the Celery backend: workers on other machines cannot share a SQLite "
            "file. Set DATABASE_URL=postgresql://...",
        )
    else:
        yield Check(
            "database engine",
            WARN,
            "SQLite: fine for one machine with the embedded worker; for several web "
            "processes or workers use PostgreSQL (DATABASE_URL=postgresql://...).",
        )


def check_migrations(app: Flask) -> Iterator[Check]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    directory = app.extensions["migrate"].directory
    heads = set(ScriptDirectory(directory).get_heads())
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        yield Check("migrations", OK, f"The schema is at the latest revision ({', '.join(heads)}).")
        return
    yield Check(
        "migrations",
        FAIL,
        f"The database is at {', '.join(sorted(current)) or 'no revision'}, the code expects "
        f"{', '.join(sorted(heads))}. Run 'flask db upgrade' (once, before starting the new "
        "version's processes).",
    )
    raise _Stop


def check_secret_keys(app: Flask) -> Iterator[Check]:
    from cryptography.fernet import InvalidToken

    from app.workflows import secrets as secret_store
    from app.workflows.models import WorkflowActionSecret

    configured = app.config.get("SECRET_KEYS")
    key_file = Path(app.instance_path) / secret_store.KEY_FILE
    if not configured:
        if _production(app):
            yield Check(
                "secret keys",
                FAIL,
                f"Workflow secrets are encrypted with the key file {key_file}, which exists on "
                "this machine only: workers elsewhere could not decrypt them. Set "
                "INCIDENTFLOW_SECRET_KEYS (newest key first) for every process.",
            )
        else:
            yield Check("secret keys", WARN, f"Keys come from {key_file} (this machine only).")
        if not key_file.exists():
            return  # nothing encrypted yet; do not create the file from a check
    try:
        cipher = secret_store.cipher()
    except secret_store.SecretKeyError as error:
        yield Check("secret keys", FAIL, str(error))
        return
    rows = db.session.execute(
        sa.select(WorkflowActionSecret.workflow_id, WorkflowActionSecret.value_hash)
    ).all()
    unreadable: set[str] = set()
    for workflow_id, token in rows:
        try:
            cipher.decrypt(token.encode("ascii"))  # the value is dropped at once
        except InvalidToken:
            unreadable.add(workflow_id)
    db.session.rollback()
    if unreadable:
        yield Check(
            "secret keys",
            FAIL,
            f"{len(unreadable)} workflow(s) have secrets the configured keys cannot decrypt "
            f"(e.g. workflow {sorted(unreadable)[0]}). Add the key they were encrypted with "
            "to INCIDENTFLOW_SECRET_KEYS.",
        )
    elif configured:
        yield Check(
            "secret keys",
            OK,
            f"INCIDENTFLOW_SECRET_KEYS decrypts all {len(rows)} stored secret(s).",
        )


def _recent_workers(backend: str) -> int:
    from app.workflows.models import WorkerHeartbeat

    since = datetime.now(UTC) - timedelta(seconds=WORKER_SILENT_SECONDS)
    count = db.session.scalar(
        sa.select(sa.func.count()).where(
            WorkerHeartbeat.backend == backend, WorkerHeartbeat.last_seen_at >= since
        )
    )
    return int(count or 0)


def _overdue_runs() -> int:
    from app.workflows.models import WorkflowExecution

    before = datetime.now(UTC) - timedelta(seconds=OVERDUE_SECONDS)
    count = db.session.scalar(sa.select(sa.func.count()).where(WorkflowExecution.due_at < before))
    return int(count or 0)


def check_backend(app: Flask) -> Iterator[Check]:
    try:
        backend = engine_backend(app.config)
    except RuntimeError as error:
        yield Check("engine backend", FAIL, str(error))
        return
    if backend == "embedded":
        yield Check(
            "engine backend", OK, "embedded: run 'flask worker run' beside the web processes."
        )
        return
    from celery import Celery

    url = broker_url(app.config)
    with Celery(broker=url).connection_for_write() as conn:
        shown = conn.as_uri()  # the password masked
        try:
            conn.ensure_connection(max_retries=0, timeout=5)
        except Exception as error:  # kombu raises the transport's own errors
            yield Check(
                "broker",
                FAIL,
                f"ENGINE_BACKEND=celery but the broker {shown} is unreachable "
                f"({type(error).__name__}). Check INCIDENTFLOW_CELERY_BROKER_URL and Redis.",
            )
            return
    if not url.startswith(("redis://", "rediss://")):
        yield Check("broker", WARN, f"Reached {shown}; IncidentFlow is tested with Redis.")
        return
    yield Check("broker", OK, f"ENGINE_BACKEND=celery; the broker {shown} answers.")


def check_workers(app: Flask) -> Iterator[Check]:
    try:
        backend = engine_backend(app.config)
    except RuntimeError:
        return  # reported by check_backend
    workers = _recent_workers(backend)
    overdue = _overdue_runs()
    db.session.rollback()
    how = "flask worker run" if backend == "embedded" else "celery -A celery_worker:celery worker"
    if workers:
        yield Check("workers", OK, f"{workers} {backend} worker process(es) reported recently.")
    else:
        yield Check(
            "workers",
            WARN,
            f"No {backend} worker has reported in the last {WORKER_SILENT_SECONDS}s: runs "
            f"will not start. Start one ({how}).",
        )
    if overdue:
        beat = " and exactly one 'celery ... beat'" if backend == "celery" else ""
        yield Check(
            "due runs",
            WARN,
            f"{overdue} run(s) are more than {OVERDUE_SECONDS}s past due: check that the "
            f"workers{beat} are running.",
        )


def check_process_layout(app: Flask) -> Iterator[Check]:
    """The shipped Procfile and systemd units (README, Production) are sound and agree."""
    from app import PROJECT_ROOT
    from app.ops.layout import check_layout

    problems = check_layout(Path(PROJECT_ROOT))
    if problems:
        yield Check(
            "process layout",
            FAIL,
            "; ".join(map(str, problems)) + ". See the README, Production.",
        )
        return
    try:
        backend = engine_backend(app.config)
    except RuntimeError:
        return  # reported by check_backend
    note = (
        ""
        if backend == "celery"
        else " (they run the Celery backend; this deployment is embedded: flask worker run)"
    )
    yield Check(
        "process layout",
        OK,
        "Procfile and deploy/systemd agree on web, worker and beat, with restart policies, "
        f"graceful stops and resource limits{note}.",
    )


CHECKS: tuple[Callable[[Flask], Iterator[Check]], ...] = (
    check_environment,
    check_secret_key,
    check_cookies,
    check_outbound_allow,
    check_process_layout,
    check_backend,
    check_database,
    check_migrations,
    check_secret_keys,
    check_workers,
)


def run_checks(app: Flask) -> list[Check]:
    """Every check, in order; those needing the database stop if it is unusable."""
    results: list[Check] = []
    try:
        for check in CHECKS:
            for result in check(app):
                results.append(result)
    except _Stop:
        results.append(
            Check("remaining checks", FAIL, "Skipped: they need a working, migrated database.")
        )
    return results


@deploy_cli.command("check")
def deploy_check() -> None:
    """Check this deployment's configuration; exits 1 if anything fails."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    results = run_checks(app)
    for result in results:
        colour = {OK: "green", WARN: "yellow", FAIL: "red"}[result.status]
        status = click.style(f"{result.status:<4}", fg=colour, bold=True)
        click.echo(f"{status}  {result.name}: {result.detail}")
    failed = sum(1 for r in results if r.status == FAIL)
    warned = sum(1 for r in results if r.status == WARN)
    if failed:
        click.echo(f"\n{failed} check(s) failed, {warned} warning(s).")
        raise SystemExit(1)
    click.echo(f"\nAll checks passed ({warned} warning(s)).")
