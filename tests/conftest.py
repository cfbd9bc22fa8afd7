"""Shared fixtures: an app on each real database, a client, a CLI runner, factories.

Every test that takes ``app`` runs on SQLite and on PostgreSQL. PostgreSQL comes
from ``TEST_DATABASE_URL``; without it those runs are skipped on a developer's
machine and fail in CI (``CI=true``), so nothing is silently left out there.
"""

from __future__ import annotations

import contextvars
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade

from app import create_app
from app.config import normalise_database_url
from app.extensions import db

pytest_plugins = ["tests.factories", "tests.fakes.servers"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def require_service(name: str, available: bool, how: str) -> None:
    """Skip locally, fail in CI: a missing service must never pass silently there."""
    if available:
        return
    message = f"{name} is not available ({how})"
    if IN_CI:
        pytest.fail(message + " and CI=true: every test must run in CI", pytrace=False)
    pytest.skip(message)


class PostgresServer:
    """Creates throwaway databases on the server named by TEST_DATABASE_URL."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(normalise_database_url(url))
        self.engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create_database(self, prefix: str = "iflow_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self.engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The PostgreSQL server for tests, or None when TEST_DATABASE_URL is unset."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield None
        return
    server = PostgresServer(url)
    yield server
    server.drop_all()


@pytest.fixture
def make_database_url(
    postgres_server: PostgresServer | None, tmp_path: Path
) -> Callable[[str], str]:
    """Factory: a URL for a fresh, empty database of the given backend."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        require_service("PostgreSQL", postgres_server is not None, "set TEST_DATABASE_URL")
        assert postgres_server is not None
        return normalise_database_url(postgres_server.create_database())

    return make


def app_config(database_url: str, instance_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance_path),
        "SECRET_KEY": "test-" + uuid.uuid4().hex,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        **extra,
    }


@pytest.fixture(scope="session")
def migrated_databases(
    postgres_server: PostgresServer | None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """One migrated database per backend for the whole session (tables emptied per test)."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('db') / 'session.db'}"}
    if postgres_server is not None:
        urls["postgresql"] = normalise_database_url(postgres_server.create_database())
    for url in urls.values():
        app = create_app(app_config(url, tmp_path_factory.mktemp("instance")))
        with app.app_context():
            upgrade()
            db.engine.dispose()
    return urls


class IsolatedClient(FlaskClient):
    """Runs each request in its own app context, as a server would.

    The ``app`` fixture keeps an app context open for the test body; without
    this, Flask would reuse it for every request, sharing ``g`` (the signed-in
    user, the CSRF token) and the database session between requests and clients.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(params=BACKENDS)
def app(
    request: pytest.FixtureRequest, migrated_databases: dict[str, str], tmp_path: Path
) -> Iterator[Flask]:
    """The app on a migrated database (SQLite, then PostgreSQL), emptied after the test."""
    backend = request.param
    require_service("PostgreSQL", backend in migrated_databases, "set TEST_DATABASE_URL")
    app = create_app(app_config(migrated_databases[backend], tmp_path / "instance"))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables() -> None:
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner for the app's CLI commands."""
    return app.test_cli_runner()


CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


@pytest.fixture
def sign_in(client: FlaskClient) -> Callable[[str, str], Any]:
    """Factory: sign the test client in through the real form."""

    def do_sign_in(email: str, password: str = "correct horse battery") -> Any:
        page = client.get("/sign-in")
        return client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
        )

    return do_sign_in
