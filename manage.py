#!/usr/bin/env python3
"""IncidentFlow's two commands, for a fresh machine with Python 3.11+ and nothing else.

    python3 manage.py start          # environment, install, migrate, demo data, serve
    python3 manage.py test           # ruff, ruff format, mypy and the whole test suite
    python3 manage.py test --fast    # the same without process and browser tests, fewer examples

Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# INCIDENTFLOW_VENV: an existing environment to use as it is (neither created nor
# installed into), e.g. for the tests of this script; unset, ``.venv`` as always.
EXISTING_VENV = os.environ.get("INCIDENTFLOW_VENV")
VENV = Path(EXISTING_VENV) if EXISTING_VENV else ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".incidentflow-installed"
# Every package of the dev install, pinned with hashes (see "Updating the lock file" in the
# README); pyproject.toml keeps the ranges the library accepts.
LOCK = ROOT / "requirements-dev.lock"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_environment() -> None:
    """Create .venv and install the project from the lock file (again only when the lock
    file or pyproject.toml changed)."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this file runs before anything checks)
        sys.exit(f"IncidentFlow needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if EXISTING_VENV:
        if not PYTHON.exists():
            sys.exit(f"INCIDENTFLOW_VENV is {EXISTING_VENV}, but {PYTHON} does not exist.")
        return
    if not PYTHON.exists():
        say(f"Creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("Installing IncidentFlow and its tools (first run takes a minute or two)")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # Exactly the locked versions, each checked against its hash; then the project itself,
    # editable, with nothing more (its dependencies are all in the lock).
    run(PYTHON, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(LOCK))
    run(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ".")
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


def _listening_process(port: int) -> str | None:
    """Which process listens on ``port`` (Linux: /proc), as "pid N (command)"."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                return f"pid {proc.name} ({command[:120]})"
        except OSError:
            continue
    return None


def refuse_if_port_taken(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return
        except OSError:
            pass
    holder = _listening_process(port) or "another program"
    sys.exit(
        f"Port {port} on {host} is already taken by {holder}.\n"
        "Stop it (an IncidentFlow left running?) or choose another port: PORT=8001."
    )


def sqlite_worker_lock(env: dict[str, str]) -> Path | None:
    """The embedded worker's lock file (app/ops/worker_lock.py), if the database is SQLite."""
    url = env.get("DATABASE_URL", "")
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :] + ".worker.lock").resolve()
    if url:
        return None  # PostgreSQL: workers coordinate in the database
    instance = Path(env.get("INCIDENTFLOW_INSTANCE_PATH") or ROOT / "instance")
    return (instance / "incidentflow.db.worker.lock").resolve()


def refuse_if_worker_running(env: dict[str, str]) -> None:
    path = sqlite_worker_lock(env)
    if path is None or not path.exists() or os.name == "nt":
        return
    import fcntl

    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            sys.exit(
                f"A workflow worker (pid {pid or '?'}) is already running on this database: "
                f"it holds {path}.\nStop it first (an IncidentFlow left running?)."
            )


def _die_with_parent(parent: int) -> None:
    """In each child before it runs: end when manage.py ends, even by SIGKILL (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent dies
    except (OSError, AttributeError):
        return  # not Linux: Ctrl-C and SIGTERM still take the group down
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def stop_group(group: int, processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every process of the group (gunicorn's workers too), SIGKILL after 10 s."""
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def start() -> None:
    ensure_environment()
    env = app_env()
    env.setdefault("INCIDENTFLOW_ENV", "development")
    host = env.get("HOST", "127.0.0.1")
    port = int(env.get("PORT", "8000"))
    refuse_if_port_taken(host, port)
    refuse_if_worker_running(env)
    flask = BIN / "flask"
    say("Migrating the database")
    run(flask, "db", "upgrade", env=env)
    say("Loading demo data")
    run(flask, "demo", "load", env=env)
    say("Starting the web server and the workflow worker")
    # The children share a process group of their own, which is stopped as one, and
    # each gets SIGTERM from the kernel if this process dies without stopping them.
    parent = os.getpid()
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
        process_group=0,
        preexec_fn=lambda: _die_with_parent(parent),
    )
    group = server.pid
    worker = subprocess.Popen(
        [str(flask), "worker", "run"],
        cwd=ROOT,
        env=env,
        process_group=group,
        preexec_fn=lambda: _die_with_parent(parent),
    )
    processes = [server, worker]
    # SIGTERM (from a supervisor or kill) stops the children as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("Stopped (SIGTERM)."))
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
        stop_group(group, processes)


#: Test worker processes (pytest-xdist) when the command line does not choose: one more
#: than the cores, since the process and browser tests mostly wait on other processes.
TEST_WORKERS = (os.cpu_count() or 1) + 1


def parallel(pytest_args: list[str]) -> list[str]:
    """``pytest_args`` with the suite spread over ``TEST_WORKERS`` processes, slow tests
    handed out one at a time (tests/conftest.py puts them first and schedules), unless the arguments
    choose for themselves (``-n 0`` runs in this one process)."""
    numbers = {"auto", "logical"} | {str(n) for n in range(100)}
    chosen = any(
        arg in {"-n", "--numprocesses", "no:xdist", "-pno:xdist"}
        or arg.startswith("--numprocesses=")
        or (arg.startswith("-n") and arg[2:] in numbers)
        for arg in pytest_args
    )
    if chosen:
        return pytest_args
    return ["-n", str(TEST_WORKERS), "--dist", "load", *pytest_args]


def test(pytest_args: list[str]) -> None:
    """``--fast`` is the suite's own pytest option (tests/conftest.py): no process or
    browser tests, fewer property-test examples. The tests run on several processes
    (``parallel``)."""
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
    run(BIN / "pytest", *parallel(pytest_args), env=env)


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
