"""The operator's view: liveness, readiness, Prometheus metrics, the audit log, and
structured logs that never carry a secret.

Outages are real, not mocked: the app talks to PostgreSQL and Redis through a
TCP proxy on 127.0.0.1 that the test stops (connections refused, open ones cut)
and starts again on the same port. On SQLite, "the database is unreachable" is
a file in a folder that does not exist yet, and it "returns" when the folder
and a migrated database appear there.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask_migrate import upgrade
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.auth.tokens import create_token
from app.db import utcnow
from app.definition.builders import (
    action_node,
    definition,
    edge,
    trigger_config,
    trigger_node,
    webhook_config,
)
from app.engine.clock import FakeClock
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource, IncidentEventType
from app.incidents.models import IncidentEvent
from app.incidents.schemas import IncidentCreate
from app.ops import audit
from app.ops.logging import (
    ContextFilter,
    JsonFormatter,
    PlainFormatter,
    configure_logging,
    log_context,
)
from app.ops.models import AuditAction, AuditEntry
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.enums import ExecutionStatus, ScopeType, TemplateCategory
from app.workflows.models import (
    ExecutionAttempt,
    Workflow,
    WorkflowExecution,
)
from tests.builders import OPS_TOKEN, heartbeat, ready
from tests.conftest import IsolatedClient, app_config, csrf_token_from, require_service
from tests.factories import SIMPLE_DEFINITION
from tests.fakes.servers import json_reply

REAL_REDIS = ("127.0.0.1", 6379)
REDIS_DB = 15


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """127.0.0.1:<port> forwarded to a real server. ``stop()`` makes the server vanish
    (new connections refused, open ones cut); ``start()`` brings it back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            doomed = [self._listener, *self._open] if self._listener else list(self._open)
            self._listener, self._open = None, []
        for sock in doomed:
            assert sock is not None
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def other_app(url: str, instance: Path, **config: Any) -> Flask:
    other = create_app(app_config(url, instance, **config))
    other.test_client_class = IsolatedClient
    return other


def is_postgres(app: Flask) -> bool:
    return str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql")


def redis_available() -> bool:
    try:
        with socket.create_connection(REAL_REDIS, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def embedded(app: Flask) -> Flask:
    """The app on the embedded backend, whatever the environment says."""
    app.config["ENGINE_BACKEND"] = "embedded"
    app.config["WORKER_STALE_SECONDS"] = 60
    return app


@pytest.fixture
def celery_mode(app: Flask) -> Flask:
    """The app on the celery backend, with a broker URL the test sets."""
    app.config["ENGINE_BACKEND"] = "celery"
    app.config["WORKER_STALE_SECONDS"] = 60
    return app


# --- /healthz and /readyz --------------------------------------------------------------------


def test_healthz_answers_200_without_touching_the_database(app: Flask, tmp_path: Path) -> None:
    broken = other_app(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}", tmp_path / "inst")
    for target in (app, broken):
        response = target.test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok"}
    assert broken.test_client().get("/readyz").status_code == 503


def test_readyz_is_ready_with_a_fresh_worker_and_reports_each_check(embedded, client) -> None:
    heartbeat("w-fresh", age_seconds=5)
    status, body = ready(client)
    assert status == 200, body
    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"]["ok"] is True and checks["database"]["latencyMs"] >= 0
    assert checks["broker"] == {
        "ok": True,
        "checked": False,
        "reason": "The embedded backend uses no broker.",
    }
    workers = checks["workers"]
    assert (workers["ok"], workers["fresh"], workers["stale"]) == (True, 1, 0)
    assert 4 <= workers["newestHeartbeatAgeSeconds"] < 60


def test_readyz_details_only_for_admins_and_the_metrics_token(
    embedded, client, sign_in, make_user
) -> None:
    heartbeat("w-crashed", age_seconds=61)
    anonymous = client.get("/readyz")
    assert (anonymous.status_code, anonymous.get_json()) == (503, {"status": "unready"})
    embedded.config["METRICS_TOKEN"] = OPS_TOKEN
    wrong = client.get("/readyz", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.get_json() == {"status": "unready"}
    with_token = client.get("/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert with_token.status_code == 503 and "checks" in with_token.get_json()
    make_user("member@example.com")
    sign_in("member@example.com")
    assert client.get("/readyz").get_json() == {"status": "unready"}
    client.post("/sign-out", data={"csrf_token": _csrf(client)})
    make_user("admin@example.com", admin=True)
    sign_in("admin@example.com")
    assert client.get("/readyz").get_json()["checks"]["workers"]["stale"] == 1


def _csrf(client: Any) -> str:
    from tests.conftest import csrf_token_from

    return csrf_token_from(client.get("/profile").text)


def test_readyz_turns_unready_when_every_worker_is_stale(embedded, client) -> None:
    heartbeat("w-crashed", age_seconds=61)
    status, body = ready(client)
    assert status == 503 and body["status"] == "unready"
    workers = body["checks"]["workers"]
    assert (workers["ok"], workers["fresh"], workers["stale"]) == (False, 0, 1)
    assert "stale" in workers["error"]
    assert body["checks"]["database"]["ok"] is True

    # A new worker is enough: the crashed one's row stays, counted as stale.
    heartbeat("w-new", age_seconds=1)
    status, body = ready(client)
    assert status == 200 and body["checks"]["workers"]["stale"] == 1


def test_the_stale_threshold_is_configurable(embedded, client) -> None:
    heartbeat("w-slow", age_seconds=90)
    assert ready(client)[0] == 503
    embedded.config["WORKER_STALE_SECONDS"] = 120
    status, body = ready(client)
    assert status == 200 and body["checks"]["workers"]["staleAfterSeconds"] == 120


def test_no_worker_at_all_is_unready_only_on_the_celery_backend(app, client) -> None:
    app.config["ENGINE_BACKEND"] = "embedded"
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["workers"]["fresh"] == 0
    assert body["checks"]["workers"]["newestHeartbeatAgeSeconds"] is None

    app.config["ENGINE_BACKEND"] = "celery"
    app.config["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/{REDIS_DB}"
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["workers"]["error"] == "No worker has sent a heartbeat: start a worker."


def test_readyz_follows_the_database_going_away_and_coming_back(
    app: Flask, postgres_server: Any, tmp_path: Path
) -> None:
    if is_postgres(app):
        real = sa.make_url(str(app.config["SQLALCHEMY_DATABASE_URI"]))
        proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432)).start()
        url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        stop, start = proxy.stop, proxy.start
    else:
        folder = tmp_path / "not-yet"
        url = f"sqlite:///{folder / 'incidentflow.db'}"
        proxy = None

        def stop() -> None:
            pass

        def start() -> None:
            folder.mkdir()
            with target.app_context():
                upgrade()

    target = other_app(url, tmp_path / "inst", ENGINE_BACKEND="embedded")
    client = target.test_client()
    try:
        if proxy is not None:
            assert ready(client)[0] == 200  # through the proxy, before the outage
        stop()
        started = time.monotonic()
        status, body = ready(client)
        assert time.monotonic() - started < 5, "an unreachable database must answer fast"
        assert status == 503 and body["status"] == "unready"
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["database"]["error"] in {
            "psycopg.OperationalError",
            "sqlite3.OperationalError",
        }
        assert body["checks"]["workers"]["ok"] is False
        text = json.dumps(body)
        assert str(proxy.port if proxy else "not-yet") not in text  # no address in the answer
        assert "postgres" not in text.replace("psycopg", "")

        start()
        status, body = ready(client)
        assert status == 200, body
        assert body["checks"]["database"]["ok"] is True
    finally:
        if proxy is not None:
            proxy.stop()
        with target.app_context():
            db.engine.dispose()


def test_the_broker_is_checked_only_on_the_celery_backend(app, client) -> None:
    closed = f"redis://:hunter2@127.0.0.1:{free_port()}/{REDIS_DB}"
    app.config.update(ENGINE_BACKEND="embedded", CELERY_BROKER_URL=closed)
    status, body = ready(client)
    assert status == 200 and body["checks"]["broker"]["checked"] is False

    app.config["ENGINE_BACKEND"] = "celery"
    heartbeat("w-celery", age_seconds=1, backend="celery")
    started = time.monotonic()
    status, body = ready(client)
    assert time.monotonic() - started < 5
    assert status == 503
    broker = body["checks"]["broker"]
    assert broker["ok"] is False and broker["checked"] is True
    assert broker["error"].startswith("redis.")
    assert "hunter2" not in json.dumps(body) and closed not in json.dumps(body)
    assert body["checks"]["workers"]["ok"] is True  # only the broker is wrong

    app.config["CELERY_BROKER_URL"] = ""
    status, body = ready(client)
    assert status == 503 and "No broker URL" in body["checks"]["broker"]["error"]


def test_readyz_follows_redis_going_away_and_coming_back(celery_mode, client) -> None:
    require_service("Redis", redis_available(), "start redis-server on 127.0.0.1:6379")
    heartbeat("w-celery", age_seconds=1, backend="celery")
    celery_mode.config["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{REDIS_DB}"
    status, body = ready(client)
    assert status == 200, body
    assert body["checks"]["broker"]["ok"] is True and body["checks"]["broker"]["checked"] is True

    proxy = TcpProxy(REAL_REDIS).start()
    celery_mode.config["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}"
    try:
        assert ready(client)[0] == 200
        proxy.stop()
        status, body = ready(client)
        assert status == 503 and body["checks"]["broker"]["ok"] is False
        proxy.start()
        status, body = ready(client)
        assert status == 200, body
    finally:
        proxy.stop()


# --- /metrics -------------------------------------------------------------------------------


def scrape(client: Any, **headers: str) -> dict[str, Any]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, Any], family: str, sample: str | None = None, **labels: str) -> float:
    wanted = sample or family
    found = [
        s.value
        for s in families[family].samples
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family, sample, labels, families[family].samples)
    return float(found[0])


@pytest.fixture
def busy_engine(app, make_workflow, make_incident, make_execution) -> dict[str, Any]:
    """Runs in every state, attempts with retries, a backlog, unconsumed events, workers."""
    workflow = make_workflow()  # SIMPLE_DEFINITION: one webhook action node, "notify"
    incident = make_incident()
    now = utcnow()
    started = now - timedelta(minutes=10)
    done = make_execution(
        workflow,
        incident,
        status=ExecutionStatus.COMPLETED,
        started_at=started,
        completed_at=now,
    )
    failed = make_execution(
        workflow, incident, status=ExecutionStatus.FAILED, started_at=started, failed_at=now
    )
    make_execution(
        workflow,
        incident,
        status=ExecutionStatus.RUNNING,
        started_at=started,
        due_at=now - timedelta(seconds=120),  # a lease that ran out two minutes ago
    )
    make_execution(workflow, incident, due_at=now - timedelta(seconds=30))  # due, unclaimed
    make_execution(workflow, incident, due_at=now + timedelta(minutes=5))  # not due yet
    attempts = [
        (done, 1, True, None, 40),
        (failed, 1, False, now - timedelta(minutes=9), 300),
        (failed, 2, False, None, 2000),
    ]
    for run, number, ok, retry_at, ms in attempts:
        db.session.add(
            ExecutionAttempt(
                execution_id=run.id,
                node_id="notify",
                number=number,
                ok=ok,
                retry_at=retry_at,
                started_at=started,
                duration_ms=ms,
            )
        )
    for processed_at, age in ((None, 90), (now, 600)):
        db.session.add(
            IncidentEvent(
                incident_id=incident.id,
                type=IncidentEventType.INCIDENT_CREATED,
                source=ChangeSource.API,
                created_at=now - timedelta(seconds=age),
                processed_at=processed_at,
            )
        )
    db.session.commit()
    heartbeat("w-embedded", age_seconds=3)
    heartbeat("w-gone", age_seconds=600, backend="celery")
    return {"workflow": workflow}


def test_metrics_parse_and_count_runs_attempts_backlog_lag_and_workers(
    app, client, busy_engine
) -> None:
    families = scrape(client)
    for name, kind in {
        "incidentflow_database_up": "gauge",
        "incidentflow_runs": "gauge",
        "incidentflow_runs_created": "counter",
        "incidentflow_runs_started": "counter",
        "incidentflow_runs_finished": "counter",
        "incidentflow_action_attempts": "counter",
        "incidentflow_action_retries": "counter",
        "incidentflow_action_duration_seconds": "histogram",
        "incidentflow_due_runs": "gauge",
        "incidentflow_due_runs_oldest_lateness_seconds": "gauge",
        "incidentflow_unprocessed_events": "gauge",
        "incidentflow_unprocessed_events_oldest_age_seconds": "gauge",
        "incidentflow_workers": "gauge",
        "incidentflow_worker_newest_heartbeat_age_seconds": "gauge",
        "incidentflow_metrics_scrape_duration_seconds": "gauge",
    }.items():
        assert families[name].type == kind, name

    assert value(families, "incidentflow_database_up") == 1
    runs = {s: value(families, "incidentflow_runs", status=s) for s in ExecutionStatus}
    assert runs == {"PENDING": 2, "RUNNING": 1, "COMPLETED": 1, "FAILED": 1, "CANCELLED": 0}
    assert value(families, "incidentflow_runs_created", "incidentflow_runs_created_total") == 5
    assert value(families, "incidentflow_runs_started", "incidentflow_runs_started_total") == 3
    finished = "incidentflow_runs_finished_total"
    assert value(families, "incidentflow_runs_finished", finished, status="COMPLETED") == 1
    assert value(families, "incidentflow_runs_finished", finished, status="FAILED") == 1
    assert value(families, "incidentflow_runs_finished", finished, status="CANCELLED") == 0

    attempts = "incidentflow_action_attempts_total"
    for outcome, expected in {"ok": 1, "retry": 1, "failed": 1}.items():
        got = value(
            families,
            "incidentflow_action_attempts",
            attempts,
            action_type="webhook",
            outcome=outcome,
        )
        assert got == expected, outcome
    jira_ok = value(
        families, "incidentflow_action_attempts", attempts, action_type="jira", outcome="ok"
    )
    assert jira_ok == 0
    retries = "incidentflow_action_retries_total"
    assert value(families, "incidentflow_action_retries", retries, action_type="webhook") == 1

    histogram = "incidentflow_action_duration_seconds"
    buckets = {
        s.labels["le"]: s.value
        for s in families[histogram].samples
        if s.name == histogram + "_bucket" and s.labels["action_type"] == "webhook"
    }
    assert buckets["0.05"] == 1 and buckets["0.25"] == 1 and buckets["0.5"] == 2
    assert buckets["1.0"] == 2 and buckets["2.5"] == 3 and buckets["+Inf"] == 3
    assert value(families, histogram, histogram + "_count", action_type="webhook") == 3
    assert value(families, histogram, histogram + "_sum", action_type="webhook") == 2.34

    assert value(families, "incidentflow_due_runs") == 2
    lateness = value(families, "incidentflow_due_runs_oldest_lateness_seconds")
    assert 120 <= lateness < 180
    assert value(families, "incidentflow_unprocessed_events") == 1
    assert 90 <= value(families, "incidentflow_unprocessed_events_oldest_age_seconds") < 150

    workers = "incidentflow_workers"
    assert value(families, workers, backend="embedded", state="fresh") == 1
    assert value(families, workers, backend="embedded", state="stale") == 0
    assert value(families, workers, backend="celery", state="stale") == 1
    assert 3 <= value(families, "incidentflow_worker_newest_heartbeat_age_seconds") < 60


def test_metrics_follow_the_database_as_runs_end(app, client, busy_engine) -> None:
    """The figures are read at each scrape, not cached."""
    pending = db.session.scalars(
        sa.select(WorkflowExecution).where(WorkflowExecution.status == ExecutionStatus.PENDING)
    ).all()
    for run in pending:
        run.status = ExecutionStatus.CANCELLED
        run.due_at = None
        run.completed_at = utcnow()
    db.session.commit()
    families = scrape(client)
    assert value(families, "incidentflow_runs", status="PENDING") == 0
    finished = "incidentflow_runs_finished_total"
    assert value(families, "incidentflow_runs_finished", finished, status="CANCELLED") == 2
    assert value(families, "incidentflow_due_runs") == 1


def test_metrics_on_an_empty_database_show_zeros(app, client) -> None:
    families = scrape(client)
    assert value(families, "incidentflow_due_runs") == 0
    assert value(families, "incidentflow_due_runs_oldest_lateness_seconds") == 0
    assert value(families, "incidentflow_unprocessed_events") == 0
    assert value(families, "incidentflow_runs", status="RUNNING") == 0
    assert "incidentflow_worker_newest_heartbeat_age_seconds" not in families


def test_metrics_need_the_bearer_token_when_one_is_configured(app, client) -> None:
    app.config["METRICS_TOKEN"] = "scrape-me-0123456789"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "incidentflow_" not in response.text
    families = scrape(client, Authorization="Bearer scrape-me-0123456789")
    assert value(families, "incidentflow_database_up") == 1


def test_metrics_still_answer_when_the_database_is_down(tmp_path: Path, app) -> None:
    broken = other_app(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}", tmp_path / "inst")
    families = scrape(broken.test_client())
    assert value(families, "incidentflow_database_up") == 0
    assert "incidentflow_runs" not in families


# --- the audit log --------------------------------------------------------------------------


def entries(workflow_id: str | None = None) -> list[AuditEntry]:
    db.session.rollback()
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    if workflow_id:
        query = query.where(AuditEntry.workflow_id == workflow_id)
    return list(db.session.scalars(query))


def everything_in_the_audit_log() -> str:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(AuditEntry.__table__)).all()
    return "\n".join(repr(tuple(row)) for row in rows)


def test_every_workflow_change_through_the_services_is_audited(app, make_user, make_team) -> None:
    team = make_team()
    admin = make_user("ada@example.com", admin=True, first_name="Ada", last_name="Lovelace")
    workflow = service.create_workflow(
        admin,
        name="Page on P1",
        description="Pages someone.",
        scope=ScopeType.TEAM,
        team_id=team.id,
        definition=copy.deepcopy(SIMPLE_DEFINITION),
    )
    changed = copy.deepcopy(workflow.definition)
    changed["nodes"][1]["data"]["name"] = "Notify again"
    service.save_version(admin, workflow, changed, base_version=1)
    service.rollback(admin, workflow, 1)
    secret_store.set_secret(workflow, "hook_token", "value-one-XYZ", actor=admin)
    secret_store.set_secret(workflow, "hook_token", "value-two-XYZ", actor=admin)
    service.set_enabled(admin, workflow, True)
    service.set_enabled(admin, workflow, True)  # no change, no entry
    service.set_enabled(admin, workflow, False)
    secret_store.delete_secret(workflow, "hook_token", actor=admin)
    secret_store.set_secret(workflow, "other_token", "value-three-XYZ", actor=admin)
    copied = service.duplicate_workflow(admin, workflow, copy_secrets=True)
    template = service.save_as_template(admin, workflow, TemplateCategory.COMMUNICATION)
    service.update_template(
        admin, template, name="Page template", description="Pages someone.", category="Ticketing"
    )
    used = service.use_template(admin, template, scope=ScopeType.TEAM, team_id=team.id)
    service.retire_template(admin, template)
    service.retire_template(admin, template)  # already retired, no entry
    workflow_id = workflow.id
    service.delete_workflow(admin, workflow)
    db.session.commit()

    log = entries()
    assert [(e.action, e.workflow_id) for e in log] == [
        ("workflow.created", workflow_id),
        ("workflow.version_saved", workflow_id),
        ("workflow.rolled_back", workflow_id),
        ("secret.set", workflow_id),
        ("secret.set", workflow_id),
        ("workflow.enabled", workflow_id),
        ("workflow.disabled", workflow_id),
        ("secret.deleted", workflow_id),
        ("secret.set", workflow_id),
        ("workflow.duplicated", copied.id),
        ("secret.copied", copied.id),
        ("template.saved", template.id),
        ("template.updated", template.id),
        ("template.used", used.id),
        ("template.retired", template.id),
        ("workflow.deleted", workflow_id),
    ]
    # All fourteen workflow actions (replays are audited in tests/engine/test_replay.py).
    assert {e.action for e in log} == {a.value for a in AuditAction} - {"run.replayed"}
    by_action = {e.action: e for e in log}
    assert by_action["workflow.version_saved"].details == {"version": 2}
    assert by_action["workflow.rolled_back"].details == {"version": 3, "to_version": 1}
    assert [e.details for e in log if e.action == "secret.set"] == [
        {"name": "hook_token", "replaced": False},
        {"name": "hook_token", "replaced": True},
        {"name": "other_token", "replaced": False},
    ]
    assert by_action["secret.copied"].details == {
        "name": "other_token",
        "source_workflow_id": workflow_id,
        "source_name": "Page on P1",
    }
    assert by_action["workflow.duplicated"].details["source_workflow_id"] == workflow_id
    assert by_action["template.used"].details["template_id"] == template.id
    assert by_action["template.updated"].details == {
        "version": 2,
        "changed": ["name", "category"],
    }
    assert all(e.actor_id == admin.id for e in log)
    assert all(e.actor_label == "Ada Lovelace <ada@example.com>" for e in log)
    # The deleted workflow's entries stay, under the name it had.
    assert by_action["workflow.deleted"].workflow_name == "Page on P1"
    dump = everything_in_the_audit_log()
    assert "value-one-XYZ" not in dump and "value-two-XYZ" not in dump
    assert "value-three-XYZ" not in dump


def test_a_change_that_fails_leaves_no_entry(app, make_user) -> None:
    admin = make_user(admin=True)
    workflow = service.create_workflow(
        admin,
        name="W",
        description="Pages someone.",
        scope=ScopeType.GLOBAL,
        definition=SIMPLE_DEFINITION,
    )
    db.session.commit()
    before = len(entries())
    with pytest.raises(Exception, match="version 1"):
        service.save_version(admin, workflow, workflow.definition, base_version=0)
    db.session.rollback()
    assert len(entries()) == before


def test_audit_details_refuse_a_secret_value(app, make_workflow) -> None:
    workflow = make_workflow()
    with pytest.raises(ValueError, match="value"):
        audit.record(None, AuditAction.SECRET_SET, workflow, name="x", value="s3cret")
    entry = audit.record(None, "workflow.enabled", workflow)
    assert entry.actor_label == "system" and entry.actor_id is None
    with pytest.raises(ValueError):
        audit.record(None, "workflow.renamed", workflow)


def test_pages_and_the_api_audit_secrets_without_their_values(
    app, client, sign_in, make_user, make_team
) -> None:
    team = make_team()
    member = make_user("mia@example.com", teams=[team], first_name="Mia", last_name="Member")
    workflow = service.create_workflow(
        member,
        name="Team hook",
        description="Pages someone.",
        scope=ScopeType.TEAM,
        team_id=team.id,
        definition=SIMPLE_DEFINITION,
    )
    db.session.commit()
    workflow_id = workflow.id
    page_secret, api_secret = "page-secret-Q1w2E3r4", "api-secret-Z9x8C7v6"

    sign_in(member.email)
    page = client.get(f"/workflows/{workflow_id}/secrets")
    token = csrf_token_from(page.text)
    response = client.post(
        f"/workflows/{workflow_id}/secrets",
        data={"name": "hook_token", "value": page_secret, "csrf_token": token},
    )
    assert response.status_code in (200, 303), response.text
    response = client.post(
        f"/workflows/{workflow_id}/toggle", data={"enabled": "1", "csrf_token": token}
    )
    assert response.status_code == 303

    _, bearer = create_token(member, "audit test")
    db.session.commit()
    auth = {"Authorization": f"Bearer {bearer}"}
    response = client.put(
        f"/api/v1/workflows/{workflow_id}/secrets/other_token",
        json={"value": api_secret},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    response = client.delete(f"/api/v1/workflows/{workflow_id}/secrets/other_token", headers=auth)
    assert response.status_code == 204

    log = entries(workflow_id)
    assert [(e.action, e.details.get("name")) for e in log] == [
        ("workflow.created", None),
        ("secret.set", "hook_token"),
        ("workflow.enabled", None),
        ("secret.set", "other_token"),
        ("secret.deleted", "other_token"),
    ]
    assert {e.actor_id for e in log} == {member.id}
    dump = everything_in_the_audit_log()
    assert page_secret not in dump and api_secret not in dump


@pytest.fixture
def audited(app, make_user, make_workflow) -> dict[str, Any]:
    """An admin, a member, and audit entries on two workflows, one of them deleted."""
    admin = make_user("admin@example.com", admin=True)
    member = make_user("member@example.com")
    kept = make_workflow(name="Kept workflow", created_by=admin)
    gone = make_workflow(name="Gone workflow", created_by=admin)
    audit.record(admin, AuditAction.WORKFLOW_ENABLED, kept)
    audit.record(admin, AuditAction.SECRET_SET, kept, name="api_key", replaced=False)
    audit.record(admin, AuditAction.WORKFLOW_DISABLED, gone)
    db.session.commit()
    gone_id = gone.id
    service.delete_workflow(admin, gone)
    db.session.commit()
    return {"admin": admin, "member": member, "kept": kept.id, "gone": gone_id}


def rows_of(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-action="')[1:]]


def test_the_audit_page_is_for_admins_only(app, client, sign_in, audited) -> None:
    anonymous = client.get("/admin/audit")
    assert anonymous.status_code in (302, 303) and "/sign-in" in anonymous.headers["Location"]
    sign_in(audited["member"].email)
    response = client.get("/admin/audit")
    assert response.status_code == 403
    assert "Gone workflow" not in response.text
    assert 'href="/admin/audit"' not in client.get("/").text


def test_admins_find_the_audit_log_in_the_navigation(app, client, sign_in, audited) -> None:
    sign_in(audited["admin"].email)
    assert '<a href="/admin/audit">Audit log</a>' in client.get("/").text


def test_the_audit_page_lists_newest_first_and_filters(app, client, sign_in, audited) -> None:
    sign_in(audited["admin"].email)
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert rows_of(page.text) == [
        "workflow.deleted",
        "workflow.disabled",
        "secret.set",
        "workflow.enabled",
    ]
    assert "Gone workflow" in page.text and "(deleted)" in page.text
    assert f'href="/workflows/{audited["kept"]}/versions"' in page.text
    assert "<dt>Name</dt><dd>api_key</dd><dt>Replaced</dt><dd>no</dd>" in page.text

    by_action = client.get("/admin/audit?action=secret.set")
    assert rows_of(by_action.text) == ["secret.set"]
    by_workflow = client.get(f"/admin/audit?workflow={audited['gone']}")
    assert rows_of(by_workflow.text) == ["workflow.deleted", "workflow.disabled"]
    both = client.get(f"/admin/audit?workflow={audited['kept']}&action=workflow.disabled")
    assert rows_of(both.text) == [] and "No entries match" in both.text

    fragment = client.get("/admin/audit?action=workflow.enabled", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert rows_of(fragment.text) == ["workflow.enabled"]

    unknown = client.get("/admin/audit?action=workflow.exploded")
    assert unknown.status_code == 422 and "no action called" in unknown.text


def test_the_audit_page_is_paginated(app, client, sign_in, audited) -> None:
    kept = db.session.get(Workflow, audited["kept"])
    for number in range(60):
        audit.record(audited["admin"], AuditAction.WORKFLOW_VERSION_SAVED, kept, version=number)
    db.session.commit()
    sign_in(audited["admin"].email)
    first = client.get("/admin/audit?action=workflow.version_saved")
    second = client.get("/admin/audit?action=workflow.version_saved&page=2")
    assert len(rows_of(first.text)) == 50 and len(rows_of(second.text)) == 10
    assert "Page 1 of 2" in first.text
    assert (
        "action=workflow.version_saved" in first.text.split('rel="next"')[0].rsplit("href=", 1)[1]
    )


# --- structured logs --------------------------------------------------------------------------


def capture(formatter: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    return handler, stream


def test_json_lines_carry_the_run_node_and_worker_ids() -> None:
    handler, stream = capture(JsonFormatter())
    logger = logging.getLogger("incidentflow.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("step done", extra={"execution_id": "run-1", "node_id": "notify"})
        with log_context(worker_id="w-1", workflow_id="wf-1"):
            logger.info("claimed %d runs", 3, extra={"event_id": 7})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("crashed", extra={"execution_id": "run-2"})
    finally:
        logger.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "step done" and first["level"] == "INFO"
    assert (first["execution_id"], first["node_id"]) == ("run-1", "notify")
    assert "worker_id" not in first
    assert second["message"] == "claimed 3 runs"
    assert (second["worker_id"], second["workflow_id"], second["event_id"]) == ("w-1", "wf-1", 7)
    assert third["execution_id"] == "run-2" and "RuntimeError: boom" in third["exception"]
    assert first["ts"].endswith("+00:00") and first["logger"] == "incidentflow.test.json"


def test_plain_lines_name_the_ids_too() -> None:
    handler, stream = capture(PlainFormatter())
    logger = logging.getLogger("incidentflow.test.plain")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("run finished", extra={"execution_id": "run-1", "status": "FAILED"})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert line.endswith("run finished [execution_id=run-1 status=FAILED]"), line


def _log_settings(*, json: str, level: str) -> dict[str, str]:
    """LOG_LEVEL and LOG_FORMAT as app/config.py reads them from the environment."""
    from app.config import load_settings

    environ = {"INCIDENTFLOW_LOG_FORMAT": json, "INCIDENTFLOW_LOG_LEVEL": level}
    settings = load_settings(current_app.instance_path, environ)
    return {name: settings[name] for name in ("LOG_LEVEL", "LOG_FORMAT")}


def test_configure_logging_takes_level_and_format_from_the_environment(
    app, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    saved_level, saved = root.level, list(root.handlers)
    try:
        app.config.update(_log_settings(json="json", level="warning"))
        handler = configure_logging(app)
        assert isinstance(handler.formatter, JsonFormatter)
        assert root.level == logging.WARNING
        assert sum(h.get_name() == "incidentflow" for h in root.handlers) == 1
        app.config.update(_log_settings(json="plain", level="DEBUG"))
        handler = configure_logging(app)
        assert isinstance(handler.formatter, PlainFormatter)
        assert sum(h.get_name() == "incidentflow" for h in root.handlers) == 1  # replaced
        assert logging.getLogger("httpx").level == logging.WARNING
        with pytest.raises(RuntimeError, match="INCIDENTFLOW_LOG_LEVEL"):
            _log_settings(json="plain", level="chatty")
    finally:
        root.handlers[:] = saved
        root.setLevel(saved_level)


def test_engine_log_lines_never_carry_secret_values(
    app, make_user, make_team, webhook_receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose URL, header and body hold a secret, that fails, retries and fails again:
    every line written at DEBUG, in JSON with tracebacks, is free of the secret."""
    secret = "tok-9f8e7d6c5b4a-SECRET"
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    clock = FakeClock()
    app.config["ENGINE_CLOCK"] = clock
    admin = make_user(admin=True)
    team = make_team()
    member = make_user(teams=[team])
    node = action_node(
        "hook",
        "webhook",
        webhook_config(
            url=webhook_receiver.url + "/hook?key={{ secrets.api_token }}",
            body='{"echo": "{{ secrets.api_token }}"}',
            auth={"type": "bearer", "token": "{{ secrets.api_token }}"},
        ),
    )
    node["data"]["retry"]["attempts"] = 2
    workflow = service.create_workflow(
        admin,
        name="Leaky",
        description="Pages someone.",
        scope=ScopeType.GLOBAL,
        definition=definition(
            [trigger_node(), node], [edge("start", "hook")], trigger_config("incident_created")
        ),
    )
    secret_store.set_secret(workflow, "api_token", secret, actor=admin)
    service.set_enabled(admin, workflow, True)
    db.session.commit()
    # The receiver fails loudly, echoing the secret back in its error.
    webhook_receiver.reply(
        json_reply(503, {"error": f"bad key {secret}"}),
        json_reply(500, {"error": f"still bad {secret}"}),
    )

    app.config.update(_log_settings(json="json", level="DEBUG"))
    root = logging.getLogger()
    saved_level, saved = root.level, list(root.handlers)
    installed = configure_logging(app)
    stream = io.StringIO()
    tap = logging.StreamHandler(stream)
    tap.setFormatter(installed.formatter)
    for log_filter in installed.filters:
        tap.addFilter(log_filter)
    root.addHandler(tap)
    try:
        incidents.create_incident(
            incidents.Actor(member, ChangeSource.API),
            IncidentCreate(title="Checkout down", team_id=team.id),
        )
        db.session.commit()
        worker = Worker(app, clock=clock, settings=WorkerSettings(age_scan_seconds=0))
        for _ in range(10):
            worker.run_once()
            clock.advance(seconds=60)
    finally:
        root.handlers[:] = saved
        root.setLevel(saved_level)

    assert webhook_receiver.last.header("Authorization") == f"Bearer {secret}"  # it was sent
    db.session.rollback()
    run = db.session.scalars(
        sa.select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow.id)
    ).one()
    assert run.status == ExecutionStatus.FAILED
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(
        line["message"] == "run finished" and line.get("execution_id") == run.id for line in lines
    ), lines
    assert secret not in stream.getvalue()


def test_the_log_filter_only_adds(app) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.execution_id = "mine"
    with log_context(execution_id="bound", node_id="n"):
        assert ContextFilter().filter(record) is True
    assert record.execution_id == "mine" and record.node_id == "n"
