"""A request that cannot reach the database answers 503 with Retry-After, never 500:
JSON ``service_unavailable`` under /api/v1, a plain "temporarily unavailable" page
elsewhere (issue 12, item 3). Any other database error is still a 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db
from app.ops.unavailable import database_unavailable
from tests.conftest import app_config
from tests.support import free_port

on_postgresql = pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def assert_api_503(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"]["code"] == "service_unavailable"
    assert "database" in response.json["error"]["message"]


def assert_page_503(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.mimetype == "text/html"
    assert "temporarily unavailable" in response.text


@contextmanager
def connections_refused(app: Flask) -> Iterator[None]:
    """The app's PostgreSQL database refuses new connections and drops its open ones
    (as during a restart), until the block ends."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    name = url.database
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()


@on_postgresql
def test_postgresql_refusing_connections_answers_503_then_recovers(
    app, client, make_user, make_token, sign_in
) -> None:
    user = make_user("outage@example.com")
    token = make_token(user)
    auth = {"Authorization": f"Bearer {token}"}
    sign_in("outage@example.com")
    assert client.get("/api/v1/incidents", headers=auth).status_code == 200
    assert client.get("/incidents").status_code == 200

    db.session.remove()  # the test's own session lets go of its connection first
    with connections_refused(app):
        for _ in range(3):
            assert_api_503(client.get("/api/v1/incidents", headers=auth))
            body = {"title": "Down", "teamId": "x"}
            assert_api_503(client.post("/api/v1/incidents", headers=auth, json=body))
            assert_page_503(client.get("/incidents"))

    # Back: the same clients go on without anyone restarting the app.
    assert client.get("/api/v1/incidents", headers=auth).status_code == 200
    assert client.get("/incidents").status_code == 200


def test_nothing_listening_on_the_database_port_answers_503(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(app_config(url, tmp_path / "instance"))
    client = app.test_client()
    assert_api_503(
        client.get("/api/v1/incidents", headers={"Authorization": "Bearer ifl_" + "a" * 43})
    )
    with client.session_transaction() as session:
        session["_user_id"] = "someone:0"  # a signed-in browser: the page loads its user
    assert_page_503(client.get("/incidents"))


def operational(original: Exception) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, original)


def test_only_unreachable_databases_count_as_unavailable() -> None:
    assert database_unavailable(operational(psycopg.OperationalError("connection refused")))
    assert database_unavailable(operational(sqlite3.OperationalError("database is locked")))
    assert database_unavailable(sa.exc.TimeoutError("QueuePool limit reached"))
    # Bugs stay bugs (500): a wrong query, a missing table, a violated constraint.
    assert not database_unavailable(operational(sqlite3.OperationalError("no such table: x")))
    assert not database_unavailable(
        sa.exc.ProgrammingError("SELECT", {}, psycopg.errors.UndefinedTable("no table"))
    )
    assert not database_unavailable(
        sa.exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate"))
    )
    assert not database_unavailable(ValueError("not a database error"))
