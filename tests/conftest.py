"""Shared fixtures: an app on each real database, a client, a CLI runner, factories.

Every test that takes ``app`` runs on SQLite and on PostgreSQL. PostgreSQL comes
from ``TEST_DATABASE_URL``; without it those runs are skipped on a developer's
machine and fail in CI (``CI=true``), so nothing is silently left out there.
"""

from __future__ import annotations

import contextvars
import copy
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
from app.auth.models import User
from app.config import normalise_database_url
from app.extensions import db

pytest_plugins = [
    "tests.factories",
    "tests.fakes.servers",
    "tests.fixtures.engine",
    "tests.fixtures.celery",
    "tests.fixtures.browser",
]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


#: Fixtures whose tests are marked for ``--fast`` to leave out: they start Celery worker
#: and beat processes, or drive a browser.
MARKED_BY_FIXTURE = {"celery_processes": "slow", "browser": "e2e"}
#: What ``--fast`` leaves out.
SLOW_MARKERS = "not slow and not e2e"
_fast = False


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the quick set for development (manage.py test --fast): leave out tests marked "
        "slow (processes) or e2e (browser), property tests try a fifth of their examples",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _fast
    _fast = bool(config.getoption("--fast"))
    if _fast:
        chosen = config.option.markexpr
        config.option.markexpr = f"({chosen}) and {SLOW_MARKERS}" if chosen else SLOW_MARKERS


def property_examples(full: int) -> int:
    """How many examples a property test tries: ``full``, or a fifth of it with ``--fast``."""
    return max(10, full // 5) if _fast else full


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a slow fixture, so no new one is forgotten.

    Under pytest-xdist (``manage.py test`` runs the suite on several worker processes)
    the slow and browser tests go first, handed out one at a time
    (``pytest_xdist_make_scheduler``): each starts at once on its own worker, and the
    many quick tests fill the gaps, instead of a long test starting last and the others
    waiting.
    """
    for item in items:
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: not any(item.iter_markers(name) for name in ("slow", "e2e")))


#: Modules whose tests must run in order in one process (they check what one test
#: leaves for the next). pytest-xdist's own ``xdist_group`` does not group with pytest
#: 9.2 (pytest-xdist#1386), so the suite's scheduler does it.
SAME_WORKER_MODULES = frozenset({"tests/db/test_isolation.py"})


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` (what ``-n`` chooses): one test at a time, in collection order
    (slow tests first, see ``pytest_collection_modifyitems``), except that the tests of
    a module in ``SAME_WORKER_MODULES`` go to one worker together."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class InOrderScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in SAME_WORKER_MODULES else nodeid

    return InOrderScheduling(config, log)


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


#: The test hook's cheap hash (scrypt costs ~150 ms a hash and a check); tests of
#: sign-in itself take ``real_password_hashing`` to keep scrypt.
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1"


def app_config(database_url: str, instance_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance_path),
        "SECRET_KEY": "test-" + uuid.uuid4().hex,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "TEST_HOOK_PASSWORD_HASH_METHOD": CHEAP_PASSWORD_HASH,
        **extra,
    }


class IsolatedClient(FlaskClient):
    """Runs each request in its own app context, as a server would.

    The ``app`` fixture keeps an app context open for the test body; without
    this, Flask would reuse it for every request, sharing ``g`` (the signed-in
    user, the CSRF token) and the database session between requests and clients.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


class SessionApps:
    """One app per backend for the whole session, on a database migrated once.

    Building an app costs ~75 ms, migrating a database far more, so tests share
    them: after each test the tables are emptied and the config restored. A test
    that leaves state in ``app.extensions`` (a Celery app, a metrics registry, a
    worker process's connection settings) cannot be undone that way: its app is
    dropped and the next test gets a new one on the same database.
    """

    def __init__(self, urls: dict[str, str], instance_path: Path) -> None:
        self.urls = urls
        self.instance_path = instance_path
        self.apps: dict[str, Flask] = {}

    def get(self, backend: str) -> Flask:
        app = self.apps.get(backend)
        if app is None:
            app = create_app(app_config(self.urls[backend], self.instance_path))
            app.test_client_class = IsolatedClient
            self.apps[backend] = app
        return app

    def drop(self, backend: str) -> None:
        app = self.apps.pop(backend, None)
        if app is not None:
            with app.app_context():
                db.engine.dispose()

    def drop_all(self) -> None:
        for backend in list(self.apps):
            self.drop(backend)


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


@pytest.fixture(scope="session")
def session_apps(
    migrated_databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionApps]:
    """The shared apps, one per backend (see SessionApps)."""
    apps = SessionApps(migrated_databases, tmp_path_factory.mktemp("instance"))
    yield apps
    apps.drop_all()


@pytest.fixture(params=BACKENDS)
def app(
    request: pytest.FixtureRequest, session_apps: SessionApps, tmp_path: Path
) -> Iterator[Flask]:
    """The app on a migrated database (SQLite, then PostgreSQL), emptied after the test."""
    backend = request.param
    require_service("PostgreSQL", backend in session_apps.urls, "set TEST_DATABASE_URL")
    app = session_apps.get(backend)
    config = copy.deepcopy(dict(app.config))
    extensions = dict(app.extensions)
    # Files the app writes (generated secret keys) go to this test's own folder.
    app.instance_path = str(tmp_path / "instance")
    os.makedirs(app.instance_path)
    try:
        with app.app_context():
            yield app
            db.session.remove()
            empty_tables()
    finally:
        app.config.clear()
        app.config.update(config)
        if app.extensions.keys() != extensions.keys() or any(
            app.extensions[name] is not value for name, value in extensions.items()
        ):
            session_apps.drop(backend)


def empty_tables() -> None:
    """Delete every row of every table, children first, in one round trip.

    Not TRUNCATE: on PostgreSQL it makes new files for every table and syncs them at
    commit, 130-370 ms a test on this machine against 4-12 ms for these DELETEs.
    """
    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Fail clearly, rather than hang, if something the test left still holds a row.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            preparer = conn.dialect.identifier_preparer
            conn.exec_driver_sql(
                "; ".join(f"DELETE FROM {preparer.format_table(table)}" for table in tables)
            )
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def real_password_hashing(app: Flask) -> None:
    """The app hashes passwords with its real method (scrypt), not the tests' cheap one."""
    app.config["TEST_HOOK_PASSWORD_HASH_METHOD"] = None


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


def sign_in_client(client: FlaskClient, email: str, password: str | None = None) -> User:
    """Sign ``client`` in as the user with this email, as the sign-in form would.

    Checks what the form checks (the user exists, is active, the password is right)
    and writes the session ``login_user`` writes, without rendering and posting the
    form. Tests of sign-in itself use ``sign_in_through_form``. The password is the
    factories' shared one unless given.
    """
    from tests.factories import PASSWORD  # a plugin: imported once pytest has registered it

    app = client.application
    user = db.session.scalar(sa.select(User).where(User.email == User.normalise_email(email)))
    assert user is not None, f"no user {email} to sign in as"
    assert user.is_active, f"{email} is deactivated and could not sign in"
    assert user.check_password(password or PASSWORD), f"wrong password for {email}"
    with app.test_request_context(environ_base=client.environ_base):
        identifier = app.login_manager._session_identifier_generator()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["_id"] = identifier
    return user


@pytest.fixture
def sign_in(client: FlaskClient) -> Callable[..., User]:
    """Factory: sign the test client in as a user (a session, not the form)."""

    def do_sign_in(email: str, password: str | None = None) -> User:
        return sign_in_client(client, email, password)

    return do_sign_in


@pytest.fixture
def sign_in_through_form(client: FlaskClient) -> Callable[..., Any]:
    """Factory: sign the test client in through the real form; returns the response."""

    def do_sign_in(email: str, password: str = "correct horse battery") -> Any:
        page = client.get("/sign-in")
        return client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
        )

    return do_sign_in
