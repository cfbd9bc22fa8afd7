#!/usr/bin/env python3
"""IncidentFlow's two commands, for a fresh machine with Python 3.11+ and nothing else.

    python3 manage.py start          # environment, install, migrate, demo data, serve
    python3 manage.py test           # ruff, ruff format, mypy and the whole test suite
    python3 manage.py test --fast    # the same without process and browser tests, fewer examples

Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".incidentflow-installed"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_environment() -> None:
    """Create .venv and install the project (again only when pyproject.toml changed)."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this file runs before anything checks)
        sys.exit(f"IncidentFlow needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        say(f"Creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("Installing IncidentFlow and its tools (first run takes a minute or two)")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def app_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("FLASK_APP", "wsgi")
    env.update(extra)
    return env


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def start() -> None:
    ensure_environment()
    env = app_env()
    env.setdefault("INCIDENTFLOW_ENV", "development")
    flask = BIN / "flask"
    say("Migrating the database")
    run(flask, "db", "upgrade", env=env)
    say("Loading demo data")
    run(flask, "demo", "load", env=env)
    host = env.get("HOST", "127.0.0.1")
    port = int(env.get("PORT", "8000"))
    say("Starting the web server and the workflow worker")
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"{host}:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    worker = subprocess.Popen([str(flask), "worker", "run"], cwd=ROOT, env=env)
    processes = [server, worker]
    try:
        if not wait_for_port(host, port, server, 60):
            sys.exit(f"The server did not start on {host}:{port}; see the messages above.")
        print(
            f"\n  IncidentFlow is running at http://{host}:{port}/  (Ctrl-C to stop)\n", flush=True
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        sys.exit("A process stopped; see the messages above.")
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test(pytest_args: list[str]) -> None:
    """``--fast`` is the suite's own pytest option (tests/conftest.py): no process or
    browser tests, fewer property-test examples."""
    fast = "--fast" in pytest_args
    ensure_environment()
    env = app_env()
    say("ruff check")
    run(BIN / "ruff", "check", ".", env=env)
    say("ruff format --check")
    run(BIN / "ruff", "format", "--check", ".", env=env)
    say("mypy")
    run(BIN / "mypy", env=env)
    say("pytest" + (" (fast: no process or browser tests)" if fast else ""))
    run(BIN / "pytest", *pytest_args, env=env)


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "help"
    if command == "start":
        start()
    elif command == "test":
        test(argv[1:])
    else:
        print(__doc__)
        sys.exit(0 if command in {"help", "-h", "--help"} else 2)


if __name__ == "__main__":
    main(sys.argv[1:])
