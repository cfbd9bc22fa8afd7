"""``python3 manage.py start`` as people run it: its gunicorn and worker go down with
it, even when it is SIGKILLed, and a second one refuses to start beside the first
(port or SQLite worker lock taken) and says what holds it (issue 12, item 5).

The script runs with ``INCIDENTFLOW_VENV`` set to the environment running these
tests, so it neither creates ``.venv`` nor installs anything.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid``."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # a zombie has ended; it only waits for its parent
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Start:
    """One ``manage.py start`` process and its output."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "start"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_running(self, seconds: float = 180) -> None:
        """Until the web server answers and the workflow worker holds its lock (it says
        "running" once it does; on a busy machine that can come after the web server)."""
        deadline = time.monotonic() + seconds
        while "IncidentFlow is running at" not in self.output() or not re.search(
            r"Worker \S+ running", self.output()
        ):
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)


@pytest.fixture
def start_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    env.pop("DATABASE_URL", None)
    env.pop("SECRET_KEY", None)
    env.update(
        INCIDENTFLOW_VENV=str(Path(sys.executable).parent.parent),
        INCIDENTFLOW_INSTANCE_PATH=str(tmp_path / "instance"),
        INCIDENTFLOW_DEMO_PASSWORD="demo-password-for-tests",
        PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def leftovers() -> Iterator[set[int]]:
    """Pids the test saw; any still alive at the end is killed (and the test has failed)."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pids: set[int], seconds: float = 30) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        remaining = {pid for pid in pids if alive(pid)}
        if not remaining:
            return set()
        time.sleep(0.2)
    return {pid for pid in pids if alive(pid)}


def get(port: str, path: str = "/healthz") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=90) as response:
        return int(response.status)


def test_sigkill_of_manage_py_start_leaves_no_orphan_and_a_restart_works(
    start_env: dict[str, str], tmp_path: Path, leftovers: set[int]
) -> None:
    first = Start(start_env, tmp_path / "first.log")
    leftovers.add(first.process.pid)
    first.wait_running()
    children = children_of(first.process.pid)
    leftovers.update(children)
    assert len(children) >= 4, children  # gunicorn, its 2 workers, the workflow worker
    assert get(start_env["PORT"]) == 200

    # A second one beside it refuses: the port, then (on another port) the worker lock.
    again = subprocess.run(
        [sys.executable, "manage.py", "start"],
        cwd=ROOT, env=start_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 1
    assert f"Port {start_env['PORT']} on 127.0.0.1 is already taken by pid " in again.stderr
    assert "gunicorn" in again.stderr
    other_port = {**start_env, "PORT": str(free_port())}
    again = subprocess.run(
        [sys.executable, "manage.py", "start"],
        cwd=ROOT, env=other_port, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 1
    worker_pids = {
        pid for pid in children if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }
    assert "A workflow worker (pid " in again.stderr, again.stderr
    held_by = int(again.stderr.split("(pid ", 1)[1].split(")", 1)[0])
    assert held_by in worker_pids
    assert "incidentflow.db.worker.lock" in again.stderr

    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    assert wait_gone(children) == set(), "orphans left running"

    second = Start(start_env, tmp_path / "second.log")
    leftovers.add(second.process.pid)
    second.wait_running()
    leftovers.update(children_of(second.process.pid))
    assert get(start_env["PORT"]) == 200
    assert "already taken" not in second.output()
    assert "already running" not in second.output()

    # SIGTERM (a supervisor, or kill) takes everything down too, gracefully.
    children = children_of(second.process.pid)
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(timeout=30) != 0
    assert wait_gone(children) == set()
