"""The shared app does not carry one test's changes into the next.

Each first test leaves something behind; the test after it (pytest runs a
module's tests in order; under pytest-xdist, tests/conftest.py's
SAME_WORKER_MODULES keeps them on one worker)
finds none of it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.auth.models import Team
from app.extensions import db

LEFT_BEHIND: dict[str, object] = {}


def test_a_test_changes_config_rows_and_files(app, make_team, make_user) -> None:
    backend = db.engine.dialect.name
    app.config["OUTBOUND_ALLOW"] = "10.0.0.0/8"
    app.config["ISOLATION_PROBE"] = backend
    app.config["SQLALCHEMY_ENGINE_OPTIONS"]["probe"] = True  # a nested value, changed in place
    make_user("left@example.com", teams=[make_team("Left behind")])
    (Path(app.instance_path) / "probe").write_text(backend)
    LEFT_BEHIND[backend] = app


def test_the_next_test_shares_the_app_but_finds_none_of_it(app) -> None:
    backend = db.engine.dialect.name
    assert app is LEFT_BEHIND.pop(backend), "the same app, after the test above"
    assert app.config["OUTBOUND_ALLOW"] != "10.0.0.0/8"
    assert "ISOLATION_PROBE" not in app.config
    assert "probe" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Team)) == 0
    assert not (Path(app.instance_path) / "probe").exists()


def test_a_test_leaves_an_extension_behind(app) -> None:
    app.extensions["isolation_probe"] = True
    LEFT_BEHIND[db.engine.dialect.name] = app


def test_the_next_test_gets_a_new_app(app) -> None:
    # What an extension holds (a Celery app, connection settings) cannot be undone.
    assert app is not LEFT_BEHIND.pop(db.engine.dialect.name)
    assert "isolation_probe" not in app.extensions
