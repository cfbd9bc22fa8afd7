"""End to end, as users see it: the HTTP API under gunicorn → workflow → webhook.

Three set-ups (the embedded default on SQLite, PostgreSQL with two embedded
workers, PostgreSQL with Celery), each with the real web server, a load generator
in its own process, and the receiver counting arrivals. Plus head-of-line
blocking (a destination that never answers) and takeover after a SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import env, procstat
from bench.backends import CELERY, POSTGRES, SQLITE, Backend
from bench.options import Options
from bench.results import Figure, Target, figure, not_measured, percentile

NAME = "endtoend"
TITLE = "End to end: HTTP API → workflow → webhook"
METHOD = """\
What a user sees, on three set-ups: **(a)** the embedded default (SQLite, one
`flask worker run`), **(b)** PostgreSQL with two `flask worker run`, **(c)**
PostgreSQL with Celery (`celery worker --concurrency 4` plus `celery beat`, Redis
broker). Each has the web server as deployed: `gunicorn --workers 2 --threads 4
wsgi:app` on 127.0.0.1 (the environment of `bench/env.py` `process_env`, outbound
requests allowed to 127.0.0.1), engine settings at their defaults. The workflow:
trigger *incident created* → condition (priority is P1) → webhook POST with a
templated JSON body to the receiver (`bench/receiver.py`, its own process) at
`/e2e/{{ incident.title }}`; every title is unique, so each arrival maps to the
POST that caused it.

**Load.** A load generator in its own process (`bench/loadgen.py`, standard
library, one keep-alive `http.client` connection per client thread) POSTs
`/api/v1/incidents` with a bearer token (a token of the seeded admin, made with
`app.auth.tokens.create_token`). Its own CPU is reported (`extra.loadgen_core`,
the share of one core it used): well below 1, it was not the bottleneck.
*Closed loop*: 8 clients, each sending its next POST when the previous one is
answered, for 30 s (8 s in a smoke run). *Runs/s while the load runs* = arrivals
at the receiver between the first send and the last answer ÷ that window; *runs/s
overall* = all runs ÷ (last arrival − first send); *drain* = last arrival − end
of the load; *API* = 201 answers ÷ window. *Backlog growth*: backlog(t) = POSTs
answered by t − arrivals by t; growth = (backlog at the end − backlog half-way)
÷ half the window, in runs/s (0 when the engine keeps up). Latency = the
receiver's arrival time (`time.time()` when the request's headers arrived) −
the load generator's `time.time()` just before it wrote the POST: p50 / p99 over
the phase. *Fixed rates*: POST n is due at start + n ÷ rate (open loop, 5/s and
20/s, 30 s; 8 s in a smoke run), taken by whichever client thread is free (10
threads at 5/s, 40 at 20/s, so slow answers do not hold up the schedule);
`extra.behind_ms` says how late the generator ever was, `api_answer_p50/p99`
how long the API took to answer.

**CPU and memory.** Every half second a sampler reads `utime + stime` from
`/proc/<pid>/stat` of every app process — the gunicorn master and its workers,
the worker processes, Celery's pool children and beat (descendants found through
`/proc/<pid>/task/*/children`, so a process born mid-phase counts from 0) — and
of the PostgreSQL backends serving the benchmark database (pids from
`pg_stat_activity`, the harness's own connections excluded by their
`application_name`). *CPU per run* = CPU of all app processes (web included)
from the first send of the closed loop until every run has ended ÷ runs; the
PostgreSQL backends' share is a line of its own. *API CPU per request*: the
same closed loop with every workflow disabled (the workers still consume the
events and find nothing to start), gunicorn's CPU ÷ 201 answers. *Idle*: 10 s
(5 s in a smoke run) with nothing to do after the warm-up; the figure is the
busiest app process (ms of CPU per second), the sum over app processes and the
PostgreSQL backends' sum are lines without a target. *Memory*: PSS from
`/proc/<pid>/smaps_rollup`, summed over the app processes after the load.

**Head of line** (set-ups a and b): a second workflow (priority P2) calls
`/hang/…` on a second receiver process (another host:port, so another
destination), which reads the request and never answers. 10 P2 incidents are
opened; once the hanging requests have arrived (at most 8 per worker process:
the per-destination cap), P1 canaries are POSTed at 2/s for 20 s (8 s in a smoke
run); the figure is the canaries' send → receive p50 / p99. Then the hanging
connections are closed and the next round starts clean.

**Takeover** (PostgreSQL, two embedded workers,
`INCIDENTFLOW_ENGINE_LEASE_SECONDS=5`, `INCIDENTFLOW_ENGINE_HEARTBEAT_SECONDS=1`):
300 incidents (100 in a smoke run) whose webhook goes to `/slow/…` (answered after
1 s), committed at once, so both workers hold many claimed runs. When the first
worker holds at least 10 (read from `workflow_execution.lease_owner`), it gets
SIGKILL; the figure is the time from the kill until every run it held has ended
or has another `lease_owner`. Then the harness waits for those runs to complete
and counts the receiver's requests per run (`extra.rounds[]`: how many were
requested twice — the one in flight at the kill, allowed — or more, or never).
A fresh database per repetition.

Every figure is the median over the repetitions (one in a smoke run)."""

CLOSED_TARGET = Target(">=", 250, "≥ 250 runs/s completed while the load runs")
BACKLOG_TARGET = Target("<=", 5, "no growing backlog (≤ 5 runs/s growth)")
P50_TARGET = Target("<", 25, "p50 < 25 ms")
P99_TARGET = Target("<", 100, "p99 < 100 ms")
CPU_EMBEDDED_TARGET = Target("<=", 4, "≤ 4 ms per run (embedded)")
CPU_CELERY_TARGET = Target("<=", 5, "≤ 5 ms per run (Celery)")
API_CPU_TARGET = Target("<=", 1.5, "≤ 1.5 ms per request")
IDLE_TARGET = Target("<=", 10, "≤ 10 ms/s per process")
HOL_TARGET = Target("<", 500, "canary p99 < 500 ms while 10 runs hang")
LEASE_SECONDS = 5
TAKEOVER_TARGET = Target("<=", LEASE_SECONDS + 2, f"≤ lease + 2 s = {LEASE_SECONDS + 2} s")

HARNESS_APP_NAME = "bench-harness"
CLOSED_CLIENTS = 8
RATES = (5, 20)
HANGING = 10
CANARY_RATE = 2.0


@dataclass(frozen=True)
class SetUp:
    key: str
    backend: Backend
    workers: int
    head_of_line: bool

    @property
    def label(self) -> str:
        return self.backend.setup(self.workers) + "; gunicorn 2 × 4 threads"


SETUPS = (
    SetUp("sqlite-embedded", SQLITE, 1, True),
    SetUp("postgresql-embedded", POSTGRES, 2, True),
    SetUp("postgresql-celery", CELERY, 4, False),
)


@dataclass(frozen=True)
class Spec:
    suffix: str
    label: str
    unit: str
    target: Target | None = None


def specs_for(setup: SetUp) -> list[Spec]:
    cpu_target = CPU_CELERY_TARGET if setup.backend.engine == "celery" else CPU_EMBEDDED_TARGET
    specs = [
        Spec(
            "closed.during",
            "Closed loop (8 clients): runs/s while the load runs",
            "runs/s",
            CLOSED_TARGET,
        ),
        Spec("closed.overall", "Closed loop: runs/s overall (load + drain)", "runs/s"),
        Spec("closed.drain", "Closed loop: backlog drained after the load", "s"),
        Spec("closed.api", "Closed loop: API requests accepted per second", "req/s"),
        Spec(
            "closed.backlog",
            "Closed loop: backlog growth while the load runs",
            "runs/s",
            BACKLOG_TARGET,
        ),
        Spec("closed.p50", "Closed loop: POST sent → request received, p50", "ms"),
        Spec("closed.p99", "Closed loop: POST sent → request received, p99", "ms"),
    ]
    for rate in RATES:
        specs += [
            Spec(f"rate{rate}.p50", f"{rate} POSTs/s: sent → received, p50", "ms", P50_TARGET),
            Spec(f"rate{rate}.p99", f"{rate} POSTs/s: sent → received, p99", "ms", P99_TARGET),
        ]
    specs += [
        Spec("cpu.run", "CPU per run, all app processes (web included)", "ms", cpu_target),
        Spec(
            "cpu.api",
            "CPU per POST /api/v1/incidents (gunicorn, no workflow)",
            "ms",
            API_CPU_TARGET,
        ),
        Spec("idle.max", "Idle CPU, busiest app process", "ms/s", IDLE_TARGET),
        Spec("idle.sum", "Idle CPU, all app processes", "ms/s"),
        Spec("memory", "Memory (PSS), all app processes", "MiB"),
    ]
    if setup.backend.database == "postgresql":
        specs += [
            Spec("cpu.run_postgres", "CPU per run, PostgreSQL backends", "ms"),
            Spec("idle.postgres", "Idle CPU, PostgreSQL backends", "ms/s"),
        ]
    if setup.head_of_line:
        specs += [
            Spec("hol.p50", "Head of line: canary sent → received while 10 runs hang, p50", "ms"),
            Spec(
                "hol.p99",
                "Head of line: canary sent → received while 10 runs hang, p99",
                "ms",
                HOL_TARGET,
            ),
        ]
    return specs


TAKEOVER_SPEC = Spec(
    "takeover", "Takeover after SIGKILL (lease 5 s, under a backlog)", "s", TAKEOVER_TARGET
)
TAKEOVER_SETUP = "Embedded workers, PostgreSQL, 2 workers; /slow destination (1 s)"


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    for setup in SETUPS:
        figures.extend(measure_setup(options, setup))
    figures.append(measure_takeover(options))
    return figures


# --- pure helpers -------------------------------------------------------------------


def title_of(path: str, kind: str) -> str | None:
    """The title in an arrival's path ``/<kind>/<title>``, or None for another path."""
    head = f"/{kind}/"
    return path[len(head) :] if path.startswith(head) else None


def first_arrivals(arrivals: Sequence[Sequence[Any]], kind: str) -> tuple[dict[str, float], int]:
    """({title: first arrival time}, number of repeated arrivals) for paths of ``kind``."""
    first: dict[str, float] = {}
    repeats = 0
    for arrived, _method, path in arrivals:
        title = title_of(str(path), kind)
        if title is None:
            continue
        if title in first:
            repeats += 1
            first[title] = min(first[title], float(arrived))
        else:
            first[title] = float(arrived)
    return first, repeats


def backlog_growth(
    answered: Sequence[float], arrived: Sequence[float], start: float, end: float
) -> float:
    """Runs/s by which (answered − arrived) grew over the second half of [start, end]."""
    half = start + (end - start) / 2

    def backlog(at: float) -> int:
        return sum(1 for t in answered if t <= at) - sum(1 for t in arrived if t <= at)

    span = end - half
    return (backlog(end) - backlog(half)) / span if span > 0 else 0.0


# --- processes and the app ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Web:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{tail}")


@contextlib.contextmanager
def web_server(database: env.Database, **extra_env: str) -> Iterator[Web]:
    """gunicorn as ``manage.py start`` runs it, on a free port of 127.0.0.1."""
    port = free_port()
    log = database.workdir / f"gunicorn-{port}.log"
    command = [
        env.PYTHON,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "wsgi:app",
    ]
    process = env.spawn(command, env.process_env(database, **extra_env), log)
    web = Web(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            web.check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer within 60 s") from None
                time.sleep(0.2)
        yield web
    finally:
        env.stop_process(process)


def harness_app(database: env.Database) -> Flask:
    """The harness's own app; on PostgreSQL its connections are named, so the CPU of
    the backends serving them is not counted as the app's."""
    if database.kind != "postgresql":
        return env.make_app(database)
    return env.make_app(
        database,
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "connect_args": {"application_name": HARNESS_APP_NAME},
        },
    )


def make_token(app: Flask, seed: env.Seed) -> str:
    from app.auth.models import User
    from app.auth.tokens import create_token
    from app.extensions import db

    with app.app_context():
        admin = db.session.get(User, seed.admin_id)
        assert admin is not None
        _, plain = create_token(admin, "bench end to end")
        db.session.commit()
        db.session.remove()
    return plain


def e2e_definition(url: str, priority: str, name: str) -> dict[str, Any]:
    """trigger → condition (priority is ``priority``) → webhook POST to ``url``."""
    from app.definition.builders import (
        action_node,
        condition_node,
        definition,
        edge,
        trigger_config,
        trigger_node,
        webhook_config,
    )

    body = (
        '{"id": {{ incident.id | tojson }}, "title": {{ incident.title | tojson }}, '
        '"priority": {{ incident.priority | tojson }}}'
    )
    call = action_node("call", "webhook", webhook_config(url=url, body=body), name="Call")
    call["data"]["retry"]["attempts"] = 1
    return definition(
        [trigger_node(), condition_node("is_p", "priority", priority), call],
        [edge("start", "is_p"), edge("is_p", "call", "true")],
        trigger_config("incident_created"),
        name=name,
        description="trigger → condition → webhook",
    )


def set_enabled(app: Flask, seed: env.Seed, workflow_id: str, enabled: bool) -> None:
    from app.auth.models import User
    from app.extensions import db
    from app.workflows import service as workflows
    from app.workflows.models import Workflow

    with app.app_context():
        admin = db.session.get(User, seed.admin_id)
        workflow = db.session.get(Workflow, workflow_id)
        assert admin is not None and workflow is not None
        workflows.set_enabled(admin, workflow, enabled)
        db.session.commit()
        db.session.remove()


def post(url: str) -> None:
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30):
        pass


# --- measuring ----------------------------------------------------------------------


@dataclass
class Context:
    options: Options
    setup: SetUp
    database: env.Database
    app: Flask
    seed: env.Seed
    token: str
    receiver: env.Receiver
    aside: env.Receiver  # /hang and /slow: another destination
    web: Web
    workers: env.Workers
    _pg: sa.Engine | None = None
    rounds: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def check_alive(self) -> None:
        self.web.check_alive()
        self.workers.check_alive()

    def app_pids(self) -> dict[int, str]:
        pids = dict.fromkeys(procstat.tree([self.web.process.pid]), "web")
        roots = [p.pid for p in self.workers.processes]
        pids.update(dict.fromkeys(procstat.tree(roots), "workers"))
        return pids

    def postgres_pids(self) -> dict[int, str]:
        if self.database.kind != "postgresql" or self.database._name is None:
            return {}
        if self._pg is None:
            from app.config import normalise_database_url

            self._pg = sa.create_engine(normalise_database_url(env.POSTGRES_URL), pool_size=1)
        with self._pg.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :name "
                    "AND application_name IS DISTINCT FROM :harness"
                ),
                {"name": self.database._name, "harness": HARNESS_APP_NAME},
            ).all()
        return {int(row[0]): "postgres" for row in rows}

    def source(self) -> dict[int, str]:
        return {**self.app_pids(), **self.postgres_pids()}

    def tracker(self) -> procstat.CpuTracker:
        return procstat.CpuTracker(self.source).start()

    def prefix(self, phase: str) -> str:
        self.rounds += 1
        return f"{phase}{self.rounds}"

    def close(self) -> None:
        if self._pg is not None:
            self._pg.dispose()


def loadgen(ctx: Context, **spec: Any) -> dict[str, Any]:
    """Run the load generator process; its JSON answer."""
    spec.update(host="127.0.0.1", port=ctx.web.port, token=ctx.token, team_id=ctx.seed.team_id)
    done = subprocess.run(
        [env.PYTHON, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=env.ROOT,
        timeout=float(spec["seconds"]) + 600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["errors"]:
        raise RuntimeError(f"the load generator's clients failed: {result['errors']}")
    return result


def accepted_of(result: dict[str, Any]) -> list[list[Any]]:
    return [r for r in result["requests"] if r[2] == 201]


def wait_arrivals(
    ctx: Context, receiver: env.Receiver, titles: set[str], kind: str, timeout: float
) -> list[tuple[float, str, str]]:
    """Receiver arrivals once every title has arrived (or the timeout has passed)."""
    deadline = time.monotonic() + timeout
    while True:
        arrivals = receiver.arrivals()
        seen, _ = first_arrivals(arrivals, kind)
        if titles <= seen.keys() or time.monotonic() > deadline:
            return arrivals
        ctx.check_alive()
        time.sleep(0.2)


def runs_ended(ctx: Context, since: float, expected: int, timeout: float = 120) -> None:
    env.wait_for_runs(ctx.app, since, expected, timeout)


def latencies_ms(accepted: list[list[Any]], first: dict[str, float]) -> list[float]:
    return [(first[r[0]] - r[1]) * 1000 for r in accepted if r[0] in first]


def answer_ms(accepted: list[list[Any]]) -> dict[str, float]:
    """How long the API took to answer (sent → response read), p50 / p99 in ms."""
    times = [(r[3] - r[1]) * 1000 for r in accepted]
    return {"api_answer_p50": percentile(times, 50), "api_answer_p99": percentile(times, 99)}


def closed_phase(ctx: Context, seconds: float, *, workflows: bool = True) -> dict[str, Any]:
    """8 clients for ``seconds``; with ``workflows`` False only the API works."""
    ctx.receiver.reset()
    since = time.time()
    time.sleep(0.01)
    tracker = ctx.tracker()
    result = loadgen(
        ctx,
        mode="closed",
        clients=CLOSED_CLIENTS,
        seconds=seconds,
        prefix=ctx.prefix("c"),
        priority="P1",
    )
    accepted = accepted_of(result)
    info: dict[str, Any] = {
        "accepted": len(accepted),
        "rejected": len(result["requests"]) - len(accepted),
        "loadgen_core": round(result["cpu_seconds"] / (result["ended"] - result["started"]), 3),
    }
    if not workflows:
        tracker.stop()
        roles = tracker.by_role()
        info["cpu_s"] = {k: round(v, 3) for k, v in roles.items()}
        info["api_cpu_ms"] = roles.get("web", 0.0) * 1000 / max(1, len(accepted))
        info["api_per_s"] = len(accepted) / (result["ended"] - result["started"])
        info.update(answer_ms(accepted))
        return info
    titles = {r[0] for r in accepted}
    arrivals = wait_arrivals(ctx, ctx.receiver, titles, "e2e", timeout=300)
    runs_ended(ctx, since, len(accepted))
    tracker.stop()
    first, repeats = first_arrivals(arrivals, "e2e")
    start, end = result["started"], result["ended"]
    window = end - start
    ours = [first[t] for t in titles if t in first]
    last = max(ours) if ours else end
    roles = tracker.by_role()
    app_cpu = roles.get("web", 0.0) + roles.get("workers", 0.0)
    lat = latencies_ms(accepted, first)
    info.update(
        {
            "during": sum(1 for t in ours if t <= end) / window,
            "overall": len(ours) / (last - start),
            "drain": max(0.0, last - end),
            "api": len(accepted) / window,
            "backlog": backlog_growth([r[3] for r in accepted], ours, start, end),
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "cpu_run": app_cpu * 1000 / max(1, len(accepted)),
            "cpu_run_postgres": (
                roles.get("postgres", 0.0) * 1000 / max(1, len(accepted))
                if ctx.database.kind == "postgresql"
                else None
            ),
            "missing": len(titles - first.keys()),
            "repeated": repeats,
            **answer_ms(accepted),
            "window_s": round(window, 2),
            "cpu_s": {k: round(v, 3) for k, v in roles.items()},
            # How the load spread over gunicorn's processes (master included).
            "web_cpu_s_by_process": sorted(
                (
                    round(v, 2)
                    for pid, v in tracker.per_process().items()
                    if tracker.roles[pid] == "web"
                ),
                reverse=True,
            ),
        }
    )
    return info


def paced_phase(
    ctx: Context, rate: float, seconds: float, *, prefix: str = "r", priority: str = "P1"
) -> dict[str, Any]:
    ctx.receiver.reset()
    since = time.time()
    time.sleep(0.01)
    result = loadgen(
        ctx, mode="paced", rate=rate, seconds=seconds, prefix=ctx.prefix(prefix), priority=priority
    )
    accepted = accepted_of(result)
    titles = {r[0] for r in accepted}
    arrivals = wait_arrivals(ctx, ctx.receiver, titles, "e2e", timeout=120)
    first, repeats = first_arrivals(arrivals, "e2e")
    lat = latencies_ms(accepted, first)
    return {
        "since": since,
        "accepted": len(accepted),
        "rejected": len(result["requests"]) - len(accepted),
        "missing": len(titles - first.keys()),
        "repeated": repeats,
        "behind_ms": result["behind_ms"],
        "loadgen_core": round(result["cpu_seconds"] / (result["ended"] - result["started"]), 3),
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        **answer_ms(accepted),
    }


def idle_phase(ctx: Context, seconds: float) -> dict[str, Any]:
    tracker = ctx.tracker()
    time.sleep(seconds)
    tracker.stop()
    per = tracker.per_process()
    span = tracker.seconds
    app = {pid: s * 1000 / span for pid, s in per.items() if tracker.roles[pid] != "postgres"}
    pg = [s * 1000 / span for pid, s in per.items() if tracker.roles[pid] == "postgres"]
    return {
        "max": max(app.values()) if app else None,
        "sum": sum(app.values()),
        "postgres": sum(pg) if ctx.database.kind == "postgresql" else None,
        "per_process": {f"{tracker.roles[pid]}:{pid}": round(v, 2) for pid, v in app.items()},
    }


def memory_mib(ctx: Context) -> dict[str, Any]:
    app = [procstat.pss_kib(pid) for pid in ctx.app_pids()]
    pg = [procstat.pss_kib(pid) for pid in ctx.postgres_pids()]
    return {
        "app": sum(v for v in app if v) / 1024,
        "postgres_backends": round(sum(v for v in pg if v) / 1024, 1),
        "processes": len(app),
    }


def head_of_line(ctx: Context, hang_workflow: str, seconds: float) -> dict[str, Any]:
    """10 runs hang on one destination; canaries to another at 2/s."""
    from app.extensions import db
    from app.workflows.models import WorkflowExecution as Run

    ctx.aside.reset()
    since = time.time()
    time.sleep(0.01)
    env.create_incidents(ctx.app, ctx.seed, HANGING, priority="P2")
    in_flight = min(HANGING, 8 * ctx.setup.workers)
    env.wait_until(lambda: len(ctx.aside.arrivals()) >= in_flight, timeout=60, workers=ctx.workers)
    info = paced_phase(ctx, CANARY_RATE, seconds, prefix="h")
    with ctx.app.app_context():
        still = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Run)
            .where(
                Run.workflow_id == hang_workflow,
                Run.completed_at.is_(None),
                Run.created_at >= _iso(since),
            )
        )
        db.session.remove()
    info["hang_workflow_runs_open_at_end"] = still
    info["hang_requests"] = len(ctx.aside.arrivals())
    post(ctx.aside.url + "/_release")
    # Every run of the round ends: the hanging ones fail when their connection closes.
    runs_ended(ctx, since, 2 * (HANGING + info["accepted"]), timeout=120)
    return info


def _iso(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


RECORD = {
    "closed.during": ("closed", "during"),
    "closed.overall": ("closed", "overall"),
    "closed.drain": ("closed", "drain"),
    "closed.api": ("closed", "api"),
    "closed.backlog": ("closed", "backlog"),
    "closed.p50": ("closed", "p50"),
    "closed.p99": ("closed", "p99"),
    "cpu.run": ("closed", "cpu_run"),
    "cpu.run_postgres": ("closed", "cpu_run_postgres"),
    "cpu.api": ("api", "api_cpu_ms"),
    "idle.max": ("idle", "max"),
    "idle.sum": ("idle", "sum"),
    "idle.postgres": ("idle", "postgres"),
    "memory": ("memory", "app"),
    "hol.p50": ("hol", "p50"),
    "hol.p99": ("hol", "p99"),
    **{f"rate{r}.{p}": (f"rate{r}", p) for r in RATES for p in ("p50", "p99")},
}


def measure_setup(options: Options, setup: SetUp) -> list[Figure]:
    specs = specs_for(setup)
    reason = setup.backend.unavailable()
    if reason:
        return [_not_measured(setup, spec, reason) for spec in specs]
    options.log(f"endtoend: {setup.label}")
    phases: dict[str, list[dict[str, Any]]] = {}
    failure = ""
    seconds = options.endtoend_seconds
    idle_seconds = options.idle_seconds
    canary_seconds = options.canary_seconds

    def keep(phase: str, info: dict[str, Any]) -> None:
        phases.setdefault(phase, []).append(info)
        shown = {
            k: (round(v, 2) if isinstance(v, float) else v)
            for k, v in info.items()
            if k not in ("per_process", "cpu_s", "since")
        }
        options.log(f"  {phase}: {shown}")

    ctx: Context | None = None
    try:
        with (
            env.database(setup.backend.database) as database,
            env.receiver() as receiver,
            env.receiver() as aside,
        ):
            app = harness_app(database)
            seed = env.seed(app)
            token = make_token(app, seed)
            main = env.enable_workflow(
                app,
                seed,
                e2e_definition(receiver.url + "/e2e/{{ incident.title }}", "P1", "End to end"),
            )
            with (
                setup.backend.workers(database, setup.workers) as workers,
                web_server(database, **setup.backend.web_env()) as web,
            ):
                ctx = Context(
                    options, setup, database, app, seed, token, receiver, aside, web, workers
                )
                closed_phase(ctx, 2.0 if options.quick else 5.0)  # warm-up
                time.sleep(2.0)
                for _ in range(options.repeats):
                    keep("idle", idle_phase(ctx, idle_seconds))
                    keep("closed", closed_phase(ctx, seconds))
                    for rate in RATES:
                        keep(f"rate{rate}", paced_phase(ctx, rate, seconds))
                    ctx.check_alive()
                keep("memory", memory_mib(ctx))
                set_enabled(app, seed, main, False)
                for _ in range(options.repeats):
                    keep("api", closed_phase(ctx, seconds / 2, workflows=False))
                set_enabled(app, seed, main, True)
                if setup.head_of_line:
                    hang = env.enable_workflow(
                        app,
                        seed,
                        e2e_definition(aside.url + "/hang/{{ incident.id }}", "P2", "Hangs"),
                    )
                    del hang  # enabled for the rest of this set-up
                    for _ in range(options.repeats):
                        keep("hol", head_of_line(ctx, _workflow_id(app, "Hangs"), canary_seconds))
    except Exception as error:
        failure = f"failed: {type(error).__name__}: {error}"[:300]
        options.log(f"  {failure}")
    finally:
        if ctx is not None:
            ctx.close()
    figures = []
    for spec in specs:
        phase, field_name = RECORD[spec.suffix]
        samples = [info.get(field_name) for info in phases.get(phase, [])]
        kept = [s for s in samples if s is not None]
        if not kept:
            figures.append(_not_measured(setup, spec, failure or "no sample was taken"))
            continue
        extra = {"rounds": _json_safe(phases.get(phase, []))}
        note = failure if failure else ""
        figures.append(
            figure(
                f"{NAME}.{setup.key}.{spec.suffix}",
                NAME,
                spec.label,
                setup.label,
                spec.unit,
                kept,
                target=spec.target,
                note=note,
                extra=extra,
            )
        )
    return figures


def _workflow_id(app: Flask, name: str) -> str:
    from app.extensions import db
    from app.workflows.models import Workflow

    with app.app_context():
        found = db.session.scalar(sa.select(Workflow.id).where(Workflow.name == name))
        db.session.remove()
    assert found is not None
    return str(found)


def _json_safe(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in info.items() if k != "since"}
        for info in rounds
    ]


def _not_measured(setup: SetUp, spec: Spec, reason: str) -> Figure:
    return not_measured(
        f"{NAME}.{setup.key}.{spec.suffix}",
        NAME,
        spec.label,
        setup.label,
        spec.unit,
        reason,
        spec.target,
    )


# --- takeover ----------------------------------------------------------------------


def measure_takeover(options: Options) -> Figure:
    key = f"{NAME}.takeover.postgresql-embedded"
    reason = env.postgres_available()
    if reason:
        return not_measured(
            key, NAME, TAKEOVER_SPEC.label, TAKEOVER_SETUP, "s", reason, TAKEOVER_TARGET
        )
    options.log(f"endtoend: takeover, {TAKEOVER_SETUP}")
    samples: list[float] = []
    rounds: list[dict[str, Any]] = []
    backlog = options.takeover_backlog
    try:
        for _ in range(options.repeats):
            info = takeover_round(backlog)
            options.log(f"  takeover: {info}")
            rounds.append(info)
            samples.append(info["seconds"])
    except Exception as error:
        message = f"failed: {type(error).__name__}: {error}"[:300]
        options.log(f"  {message}")
        if not samples:
            return not_measured(
                key, NAME, TAKEOVER_SPEC.label, TAKEOVER_SETUP, "s", message, TAKEOVER_TARGET
            )
    return figure(
        key,
        NAME,
        TAKEOVER_SPEC.label,
        f"{TAKEOVER_SETUP}, backlog {backlog}",
        "s",
        samples,
        target=TAKEOVER_TARGET,
        extra={"rounds": rounds},
    )


def takeover_round(backlog: int, timeout: float = 60.0) -> dict[str, Any]:
    with env.database("postgresql") as database, env.receiver() as slow:
        app = harness_app(database)
        seed = env.seed(app)
        env.enable_workflow(
            app, seed, e2e_definition(slow.url + "/slow/{{ incident.id }}", "P1", "Slow")
        )
        workers = env.embedded_workers(
            database,
            2,
            INCIDENTFLOW_ENGINE_LEASE_SECONDS=str(LEASE_SECONDS),
            INCIDENTFLOW_ENGINE_HEARTBEAT_SECONDS="1",
        )
        from app.config import normalise_database_url

        engine = sa.create_engine(normalise_database_url(database.url))
        try:
            env.create_incidents(app, seed, backlog)
            victim = workers.processes[0]
            pattern = f"%:{victim.pid}:%"
            held_query = sa.text(
                "SELECT id, lease_owner FROM workflow_execution "
                "WHERE lease_owner LIKE :pattern AND completed_at IS NULL"
            )

            def holds_enough() -> bool:
                with engine.connect() as conn:
                    rows = conn.execute(held_query, {"pattern": pattern}).all()
                return len(rows) >= 10 and len(slow.arrivals()) >= 4

            env.wait_until(holds_enough, timeout=60, interval=0.05, workers=workers)
            victim.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            requests_before = len(slow.arrivals())
            victim.wait(10)
            with engine.connect() as conn:
                held = conn.execute(held_query, {"pattern": pattern}).all()
            ids = [row[0] for row in held]
            owner = held[0][1] if held else ""
            remaining = len(ids)
            check = sa.text(
                "SELECT count(*) FROM workflow_execution WHERE id IN :ids "
                "AND lease_owner = :owner AND completed_at IS NULL"
            ).bindparams(sa.bindparam("ids", expanding=True))
            while remaining and time.monotonic() - killed < timeout:
                time.sleep(0.05)
                with engine.connect() as conn:
                    remaining = int(conn.scalar(check, {"ids": ids, "owner": owner}) or 0)
            elapsed = time.monotonic() - killed
            info: dict[str, Any] = {
                "seconds": round(elapsed, 3),
                "held_at_kill": len(ids),
                "not_taken": remaining,  # > 0: the figure is a lower bound (timeout)
                "requests_before_kill": requests_before,
            }
            # The guarantee behind it: every held run completes, repeating at most the
            # one request it had in flight.
            ended = sa.text(
                "SELECT count(*) FROM workflow_execution WHERE id IN :ids "
                "AND completed_at IS NOT NULL"
            ).bindparams(sa.bindparam("ids", expanding=True))

            def held_ended() -> bool:
                with engine.connect() as conn:
                    return int(conn.scalar(ended, {"ids": ids}) or 0) >= len(ids)

            try:
                env.wait_until(held_ended, timeout=60, interval=0.1)
            except TimeoutError:
                info["held_not_completed_after_60s"] = True
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT id, incident_id FROM workflow_execution WHERE id IN :ids"
                    ).bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": ids},
                ).all()
                incident_of: dict[str, str] = {str(row[0]): str(row[1]) for row in rows}
            counts: dict[str, int] = {}
            for _, _, path in slow.arrivals():
                counts[path] = counts.get(path, 0) + 1
            per_run = [counts.get(f"/slow/{incident_of[i]}", 0) for i in ids]
            info["held_runs_requested_twice"] = sum(1 for n in per_run if n == 2)
            info["held_runs_requested_more"] = sum(1 for n in per_run if n > 2)
            info["held_runs_never_requested"] = sum(1 for n in per_run if n == 0)
            return info
        finally:
            engine.dispose()
            workers.stop()
