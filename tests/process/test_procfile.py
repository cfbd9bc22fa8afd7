"""The Procfile as a process manager runs it: ``release``, then ``web``, ``worker``
and ``beat`` from their lines, against PostgreSQL and Redis. A run goes through,
``/readyz`` says ready, and SIGTERM stops every process gracefully (exit 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from app.ops.layout import read_procfile
from tests.builders import OPS_TOKEN, one_webhook
from tests.support import REDIS_URL, free_port, runs_of, wait_for

ROOT = Path(__file__).resolve().parents[2]


on_postgresql = pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@on_postgresql
def test_the_procfile_runs_incidentflow_and_stops_gracefully(
    app, webhook_receiver, make_enabled_workflow, open_incident, tmp_path: Path
) -> None:
    broker = redis.Redis.from_url(REDIS_URL)
    try:
        broker.ping()
    except redis.RedisError:
        pytest.skip(f"Redis at {REDIS_URL} is not available")
    broker.flushdb()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PORT=str(port),
        FLASK_APP="wsgi",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=app.config["SECRET_KEY"],
        INCIDENTFLOW_INSTANCE_PATH=app.instance_path,
        INCIDENTFLOW_ENV="testing",
        INCIDENTFLOW_ENGINE_BACKEND="celery",
        INCIDENTFLOW_CELERY_BROKER_URL=REDIS_URL,
        INCIDENTFLOW_OUTBOUND_ALLOW="127.0.0.1",
        INCIDENTFLOW_LOG_FORMAT="json",
        INCIDENTFLOW_METRICS_TOKEN=OPS_TOKEN,  # /readyz shows its details to this token
        PYTHONUNBUFFERED="1",
    )
    procfile = read_procfile(ROOT / "Procfile")
    release = subprocess.run(
        ["sh", "-c", procfile["release"]], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert release.returncode == 0, release.stderr
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def logs() -> str:
        return "\n".join(
            f"[{name}]\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in processes
        )

    try:
        for name in ("web", "worker", "beat"):
            with open(tmp_path / f"{name}.log", "wb") as log:
                processes[name] = subprocess.Popen(
                    # exec: the process manager's signals reach the program, not a shell
                    ["sh", "-c", "exec " + procfile[name]],
                    cwd=tmp_path if name == "beat" else ROOT,
                    env={**env, "PYTHONPATH": str(ROOT)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        workflow = make_enabled_workflow(one_webhook(webhook_receiver.url + "/hook"))
        open_incident(title="Procfile")

        def completed() -> bool:
            from app.extensions import db

            db.session.rollback()
            runs = runs_of(workflow)
            return bool(runs) and runs[0].status == "COMPLETED"

        wait_for(completed, 120, "the run to complete", logs)

        def ready() -> bool:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/readyz",
                    headers={"Authorization": f"Bearer {OPS_TOKEN}"},
                )
                with urllib.request.urlopen(request, timeout=30) as r:
                    body = json.loads(r.read())
            except OSError:
                return False
            return body["status"] == "ok" and body["checks"]["sweep"]["checked"]

        wait_for(ready, 60, "/readyz 200 from the web process", logs, every=0.5)

        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        for name, process in processes.items():
            code = process.wait(timeout=max(deadline - time.monotonic(), 1))
            assert code == 0, f"{name} exited {code}\n{logs()}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        broker.flushdb()
        broker.close()
