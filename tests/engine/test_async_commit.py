"""ENGINE_ASYNC_COMMIT: a worker process's connections commit without waiting for the disk
(by default on SQLite, opt-in on PostgreSQL); the web's commits always wait."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.engine.worker import commit_without_waiting
from app.extensions import db


def durability(app) -> str:
    """What a new connection of the app's engine does at commit."""
    db.session.remove()
    db.engine.dispose()
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
                conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
            ]
        return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())


def waits(app) -> bool:
    return durability(app) in ("FULL", "on")


def test_the_web_waits_for_the_disk(app) -> None:
    # No worker set-up in this process: commits wait, whatever the database.
    assert waits(app)


def test_by_default_a_sqlite_worker_relaxes_and_a_postgresql_worker_waits(app) -> None:
    sqlite = db.engine.dialect.name == "sqlite"
    assert commit_without_waiting(app) is sqlite
    assert durability(app) == ("NORMAL" if sqlite else "on")


def test_a_value_that_is_neither_yes_nor_no_is_refused(app) -> None:
    app.config["ENGINE_ASYNC_COMMIT"] = "sometimes"
    with pytest.raises(RuntimeError, match="ENGINE_ASYNC_COMMIT must be 1 or 0"):
        commit_without_waiting(app)
    assert waits(app)


def test_the_setting_relaxes_the_workers_connections(app) -> None:
    app.config["ENGINE_ASYNC_COMMIT"] = "true"
    assert commit_without_waiting(app) is True
    assert durability(app) in ("NORMAL", "off")
    assert commit_without_waiting(app) is True  # a second call adds nothing
    # The work still lands: a commit on the relaxed connection is visible to others.
    with db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS relaxed_probe (n integer)"))
        conn.execute(sa.text("INSERT INTO relaxed_probe VALUES (1)"))
    other = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM relaxed_probe")).scalar_one() == 1
    finally:
        other.dispose()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE relaxed_probe"))


def test_flask_worker_run_applies_it(app, runner) -> None:
    app.config["ENGINE_ASYNC_COMMIT"] = "1"
    result = runner.invoke(args=["worker", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert durability(app) in ("NORMAL", "off")


def test_no_keeps_every_commit_waiting(app) -> None:
    app.config["ENGINE_ASYNC_COMMIT"] = "0"
    assert commit_without_waiting(app) is False
    assert waits(app)
