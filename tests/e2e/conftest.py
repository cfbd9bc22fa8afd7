"""Browser tests: system Chromium through Playwright, against the app served by a thread.

The app runs on a file-based SQLite database migrated for the session. Chromium
comes from the system (``/usr/bin/chromium`` or ``CHROMIUM_PATH``); Playwright's
own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from werkzeug.serving import make_server

from app import create_app
from app.auth.models import Team, TeamMembership, User
from app.extensions import db
from tests.conftest import app_config, require_service

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "correct horse battery"


def chromium_path() -> str | None:
    candidate = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if os.path.exists(candidate) else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless system Chromium for the session."""
    path = chromium_path()
    require_service("Chromium", path is not None, "install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite file migrated once for the session; each test works on a copy."""
    directory = tmp_path_factory.mktemp("e2e-template")
    path = directory / "migrated.db"
    app = create_app(app_config(f"sqlite:///{path}", directory / "instance"))
    with app.app_context():
        upgrade()
        db.engine.dispose()  # the last connection closes: the WAL is folded into the file
    return path


@pytest.fixture
def live_app(tmp_path: Path, migrated_sqlite_file: Path) -> Iterator[Flask]:
    """The app on a fresh, migrated SQLite file, with an admin and a team member."""
    shutil.copyfile(migrated_sqlite_file, tmp_path / "e2e.db")
    app = create_app(app_config(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path / "instance"))
    with app.app_context():
        team = Team(name="Payments", chat_channel="#payments")
        member = User(email="mia@example.com", first_name="Mia", last_name="Member")
        admin = User(email="ada@example.com", first_name="Ada", last_name="Admin", is_admin=True)
        for user in (member, admin):
            user.set_password(PASSWORD)
        db.session.add_all([team, member, admin])
        db.session.flush()
        db.session.add(TeamMembership(team_id=team.id, user_id=member.id))
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_server(live_app: Flask) -> Iterator[LiveServer]:
    """The app served over HTTP by a thread in this process."""
    with LiveServer(live_app) as server:
        yield server


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser page (own cookies) pointed at the live server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Anything the Content-Security-Policy blocks (an inline script or style, eval) is
    # reported on the console: no page may depend on it.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert not blocked, f"the Content-Security-Policy blocked: {blocked}"


def sign_in_as(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
