"""``flask deploy check``: each check says OK, WARN or FAIL and why; any FAIL exits 1."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import redis
from cryptography.fernet import Fernet

from app import create_app
from app.config import instance_secret
from app.extensions import db
from app.ops.deploy import deploy_cli
from app.workflows import secrets as secret_store
from app.workflows.models import WorkerHeartbeat
from tests.conftest import app_config, require_service
from tests.support import REDIS_URL

SECRET_VALUE = "s3cr3t-value-never-printed"


def lines_of(output: str) -> dict[str, tuple[str, str]]:
    """{check name: (status, detail)} from the command's output."""
    return {
        match["name"]: (match["status"], match["detail"])
        for match in re.finditer(
            r"^(?P<status>OK|WARN|FAIL) +(?P<name>[^:]+): (?P<detail>.*)$", output, re.MULTILINE
        )
    }


@pytest.fixture
def production(app, monkeypatch):
    """The test app configured as a sound production deployment (embedded backend)."""
    key = Fernet.generate_key().decode()
    app.config.update(
        SECRET_KEYS=key,
        CELERY_BROKER_URL=None,
        ENV_NAME="production",
        SECRET_KEY="k" * 48,
        SESSION_COOKIE_SECURE=True,
        REMEMBER_COOKIE_SECURE=True,
        OUTBOUND_ALLOW="hooks.internal.example, 10.20.0.0/16",
        ENGINE_BACKEND="embedded",
    )
    return app


def check(app) -> tuple[int, dict[str, tuple[str, str]], str]:
    result = app.test_cli_runner().invoke(deploy_cli, ["check"])
    return result.exit_code, lines_of(result.output), result.output


def heartbeat(backend: str) -> None:
    now = datetime.now(UTC)
    db.session.add(
        WorkerHeartbeat(
            id=f"{backend}-1",
            hostname="h",
            pid=1,
            backend=backend,
            started_at=now,
            last_seen_at=now,
        )
    )
    db.session.commit()


def test_a_sound_deployment_passes(production, make_workflow) -> None:
    workflow = make_workflow()
    secret_store.set_secret(workflow, "token", SECRET_VALUE)
    db.session.commit()
    heartbeat("embedded")
    code, checks, output = check(production)
    postgres = db.engine.dialect.name == "postgresql"
    assert code == 0, output
    assert checks["secret key"][0] == "OK"
    assert checks["secure cookies"][0] == "OK"
    assert checks["outbound allow-list"] == (
        "OK",
        "2 internal destination(s) allowed; everything else internal is refused.",
    )
    assert checks["database"][0] == "OK"
    assert checks["database engine"][0] == ("OK" if postgres else "WARN")
    assert checks["migrations"][0] == "OK"
    assert checks["secret keys"] == (
        "OK",
        "INCIDENTFLOW_SECRET_KEYS decrypts all 1 stored secret(s).",
    )
    assert checks["workers"][0] == "OK"
    assert checks["process layout"][0] == "OK"
    assert SECRET_VALUE not in output
    assert "All checks passed" in output


def test_a_broken_process_layout_fails(production, tmp_path, monkeypatch) -> None:
    from tests.support import ROOT

    (tmp_path / "Procfile").write_text((ROOT / "Procfile").read_text().replace("beat:", "#"))
    monkeypatch.setattr("app.PROJECT_ROOT", str(tmp_path))
    code, checks, output = check(production)
    assert code == 1, output
    status, detail = checks["process layout"]
    assert status == "FAIL"
    assert detail == (
        "deploy/systemd/incidentflow-web.service: missing; "
        "deploy/systemd/incidentflow-worker@.service: missing; "
        "Procfile: no 'beat' process; deploy/systemd/incidentflow-beat.service: missing. "
        "See the README, Production."
    )


def test_celery_needs_a_reachable_broker_and_postgresql(production) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        reachable = bool(client.ping())
    except redis.RedisError:
        reachable = False
    require_service("Redis", reachable, f"start redis-server ({REDIS_URL})")
    production.config.update(ENGINE_BACKEND="celery", CELERY_BROKER_URL=REDIS_URL)
    heartbeat("celery")
    code, checks, output = check(production)
    assert checks["broker"][0] == "OK", output
    if db.engine.dialect.name == "postgresql":
        assert code == 0, output
    else:
        assert code == 1
        assert checks["database engine"][0] == "FAIL"
        assert "cannot share a SQLite file" in checks["database engine"][1]

    production.config["CELERY_BROKER_URL"] = "redis://127.0.0.1:1/0"
    code, checks, output = check(production)
    assert code == 1
    assert checks["broker"][0] == "FAIL"
    assert "unreachable" in checks["broker"][1]


def test_a_generated_secret_key_fails_in_production(production) -> None:
    production.config["SECRET_KEY"] = instance_secret(production.instance_path, "secret_key")
    code, checks, output = check(production)
    assert code == 1
    status, detail = checks["secret key"]
    assert status == "FAIL"
    assert "Set SECRET_KEY in the environment" in detail
    assert production.config["SECRET_KEY"] not in output


def test_insecure_cookies_and_an_allow_everything_list_fail(production) -> None:
    production.config.update(SESSION_COOKIE_SECURE=False, OUTBOUND_ALLOW="0.0.0.0/0")
    code, checks, _ = check(production)
    assert code == 1
    assert checks["secure cookies"][0] == "FAIL"
    assert checks["outbound allow-list"][0] == "FAIL"
    assert "every internal address" in checks["outbound allow-list"][1]

    production.config.update(SESSION_COOKIE_SECURE=True, OUTBOUND_ALLOW="169.254.0.0/16")
    code, checks, _ = check(production)
    assert code == 1
    assert "cloud metadata" in checks["outbound allow-list"][1]


def test_secrets_the_keys_cannot_decrypt_fail(production, make_workflow, monkeypatch) -> None:
    workflow = make_workflow()
    secret_store.set_secret(workflow, "token", SECRET_VALUE)
    db.session.commit()
    production.config["SECRET_KEYS"] = Fernet.generate_key().decode()
    code, checks, output = check(production)
    assert code == 1
    status, detail = checks["secret keys"]
    assert status == "FAIL"
    assert workflow.id in detail and "cannot decrypt" in detail
    assert SECRET_VALUE not in output


def test_keys_from_the_instance_file_fail_in_production(production, monkeypatch) -> None:
    production.config["SECRET_KEYS"] = None
    code, checks, _ = check(production)
    assert code == 1
    assert checks["secret keys"][0] == "FAIL"
    assert "INCIDENTFLOW_SECRET_KEYS" in checks["secret keys"][1]


def test_a_database_behind_the_code_fails(app, make_database_url, tmp_path, monkeypatch) -> None:
    backend = db.engine.dialect.name
    stale = create_app(
        app_config(
            make_database_url(backend),
            tmp_path / "other",
            ENV_NAME="production",
            SECRET_KEYS=Fernet.generate_key().decode(),
        )
    )
    with stale.app_context():
        code, checks, output = check(stale)
        db.engine.dispose()
    assert code == 1
    status, detail = checks["migrations"]
    assert status == "FAIL"
    assert "no revision" in detail and "flask db upgrade" in detail
    assert checks["remaining checks"][0] == "FAIL"


def test_an_unreachable_database_fails(tmp_path) -> None:
    broken = create_app(
        app_config("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "other")
    )
    with broken.app_context():
        code, checks, _ = check(broken)
    assert code == 1
    assert checks["database"][0] == "FAIL"
    assert "Cannot connect" in checks["database"][1]
    assert "migrations" not in checks
