"""One embedded worker per SQLite database: a second ``flask worker run`` on the same
file refuses to start and says who holds the lock; the lock goes with its holder,
even when the holder is SIGKILLed (issue 12, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask

from app.ops.worker_lock import WorkerLockHeld, embedded_worker_lock, lock_path

ROOT = Path(__file__).resolve().parents[2]

on_sqlite = pytest.mark.parametrize("app", ["sqlite"], indirect=True)


def worker_env(app: Flask) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=app.config["SECRET_KEY"],
        INCIDENTFLOW_INSTANCE_PATH=app.instance_path,
        INCIDENTFLOW_ENV="testing",
        PYTHONUNBUFFERED="1",
    )
    env.pop("INCIDENTFLOW_ENGINE_BACKEND", None)
    return env


def flask_worker(app: Flask, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "worker", "run", *args],
            cwd=ROOT,
            env=worker_env(app),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for_text(path: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in path.read_text(errors="replace"):
        assert process.poll() is None, path.read_text(errors="replace")
        assert time.monotonic() < deadline, path.read_text(errors="replace")
        time.sleep(0.1)


@on_sqlite
def test_a_second_worker_on_the_same_sqlite_file_refuses_to_start(
    app: Flask, tmp_path: Path
) -> None:
    first = flask_worker(app, log=tmp_path / "first.log")
    try:
        wait_for_text(tmp_path / "first.log", "running", first)

        second = flask_worker(app, "--once", log=tmp_path / "second.log")
        assert second.wait(timeout=60) == 1
        message = (tmp_path / "second.log").read_text()
        assert f"Another embedded worker (process {first.pid})" in message, message
        assert str(lock_path(app.config["SQLALCHEMY_DATABASE_URI"])) in message
        assert "Several workers need PostgreSQL" in message

        # SIGKILL: no clean-up runs, yet the kernel releases the lock with the process.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        third = flask_worker(app, "--once", log=tmp_path / "third.log")
        assert third.wait(timeout=60) == 0, (tmp_path / "third.log").read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)


def test_the_lock_is_per_sqlite_file_and_postgresql_needs_none(tmp_path: Path) -> None:
    one = f"sqlite:///{tmp_path / 'one.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with embedded_worker_lock(one) as held:
        assert held == tmp_path / "one.db.worker.lock"
        assert held.read_text() == str(os.getpid())
        with embedded_worker_lock(other) as other_held:
            assert other_held == tmp_path / "other.db.worker.lock"
        # flock locks belong to the open file: a second open, even in-process, is refused.
        with (
            pytest.raises(WorkerLockHeld, match=f"process {os.getpid()}"),
            embedded_worker_lock(one),
        ):
            pass
    with embedded_worker_lock(one):
        pass  # released when the block ended
    assert lock_path("postgresql+psycopg://u@h/db") is None
    assert lock_path("sqlite://") is None
