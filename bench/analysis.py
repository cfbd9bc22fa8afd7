"""Why a target is missed, and what profiling found: text for the report.

``ANALYSIS`` is keyed by figure-key prefix (the longest matching prefix wins) and
is shown under "Gaps" only when that figure misses its target. ``FINDINGS`` are
shown under "Findings" whenever a figure of their prefix is in the results.
Both are written by hand from profiling the engine in this checkout (cProfile of
an in-process worker, SQL statement logs, CPU time per run with
``time.process_time``); the numbers they quote are from those sessions on the
2-core machine described in the report, not from the run that produced the table.
"""

from __future__ import annotations

_FIXED = """\
**Fixed after profiling** (commits 24e2e43 … 42b0c7c; `tests/engine` and
`tests/celery` pass on both databases). Before them a run cost the worker 14–21 ms
of CPU on SQLite and 21–25 ms on PostgreSQL, over half of it in SQLAlchemy:
1. Steps that touch nothing outside the database (trigger, condition, zero delay,
   skipped node, the end) share a transaction with the steps around them; the
   worker commits before every request (the run says, durably, where it is and
   what it did before a request goes out) and when the run waits or ends: 6 → 3
   commits per run (see "Database commits per run").
2. The run is read once per drive and written back with one prebuilt `UPDATE`
   guarded by `row_version`, not through the ORM's unit of work; attempts are a
   Core `INSERT`.
3. The incident is one prebuilt `SELECT` with its team and assignee, read again
   after every request (which takes time) and otherwise reused within a drive; the
   workflow's name and secrets are one query per drive.
4. Keep-alive connections through the outbound guard (a pooled client per thread
   and guard; new connections still resolved and checked), action settings built
   once per configuration, parsed URLs cached: about 460 µs of CPU less per request.
5. New runs share the batch's definition instead of a deep copy each.
6. Celery: a backlog is sent in messages of up to 20 runs, the run comes back from
   the claim's `UPDATE … RETURNING` instead of a second read, no hand-back commit
   unless a slice ended, and beat polls every 0.25 s instead of every second."""

_CPU_PER_RUN = (
    """\
**Cause: CPU per run, and the disk.** A run of the benchmark workflow now costs one
worker process 8–10 ms of CPU on SQLite (`time.process_time()` of an in-process
worker over 300 runs, receiver answering at once; 21 ms before the fixes below).
100 runs/s from one process means 10 ms per run for everything, so the figure
sits at the target and moves with how much CPU the shared machine leaves the
worker, and with the disk: on this machine an fsync took 0.08 ms at p50 in one
session and 0.3 ms in another, and the line with every worker commit waiting for
it (`INCIDENTFLOW_ENGINE_ASYNC_COMMIT=0`) shows what three of them per run cost.
cProfile of what is left: about a third SQLAlchemy (reading the run and the
incident, writing progress, the three commits, consuming the events), a fifth the
two HTTP exchanges (httpx, h11, httpcore, the guard), a tenth SQLite's own commit,
the rest templating, pydantic (node results, the template context) and JSON.
Going further means leaving the ORM for the event consumer too, or a lighter HTTP
client under the guard.

"""
    + _FIXED
)

_CELERY = """\
**Cause: two cores for everything.** With Celery, one run is the embedded worker's
work plus the claim (an `UPDATE … RETURNING` and a commit), the broker round trip
and Celery's own task handling; and the PostgreSQL backends, Redis, beat, the
receiver and the harness run on the same two cores as the worker processes. A
run costs an in-process worker 11–14 ms of CPU on PostgreSQL (more than SQLite:
a dozen network round trips through psycopg) plus the server's share, so the two
cores are saturated at about 100–160 runs/s whatever the number of processes; 250
runs/s would need ≤ 8 ms of CPU per run for all of it together (worker, database
server, broker, receiver). The remaining gap is CPython plus an ORM-based engine
on two cores, not one hot spot (before the fixes below the same set-up measured
38.5 runs/s). Not waiting for WAL flushes (`INCIDENTFLOW_ENGINE_ASYNC_COMMIT=1`,
its own line) gains nothing here: the cores, not the disk, are the limit. What is
left to try: batching the commits of
different runs (which would widen what a worker crash repeats: rejected, the
issue bounds that to the one interrupted request), and more cores — the design
scales out (no run is held by a process; see 1, 2 and 4 workers).

"""
_CELERY += _FIXED

_LATENCY = """\
**Cause.** The p99 is a queueing effect: when other processes take the CPU a
backlog forms and the incidents behind it wait their turn. Without contention the
latency is the idle poll (up to 20 ms), consuming the event, the trigger and
condition, one commit and the request."""

_STEP = """\
**Cause.** The median step is a few milliseconds; the tail comes from CPU
contention (two cores shared with the receiver, the harness, the database server
and other processes) and the commits' flush latency when other processes write
to the disk. Webhook steps are the slowest (templating, the request, the attempt
row); `extra.by_node` in the JSON has them per node."""

ANALYSIS: dict[str, str] = {
    "throughput.sqlite-embedded": _CPU_PER_RUN,
    "throughput.postgresql-celery": _CELERY,
    "latency.first_request": _LATENCY,
    "latency.step": _STEP,
}

# (figure-key prefix, title, Markdown): shown under "Findings" whenever a figure with
# that prefix is in the results, met target or not.
FINDINGS: list[tuple[str, str, str]] = [
    (
        "throughput.sqlite-embedded",
        "The embedded default's throughput sits at the target",
        """\
One embedded worker on SQLite is CPU-bound at 8–10 ms of CPU per run (profiled
in-process, 300 runs), so its figure is near 100 runs/s and moves with the CPU and
disk the shared machine leaves it. In this run it is 115 runs/s (101–156), and the
comparison line with every worker commit waiting for the disk 124 (97–140): within
the noise, fsync taking 0.2–0.3 ms at p50. Earlier runs the same day, of the
commit before the default stopped waiting, at slower moments: waiting 68 and 82
runs/s, not waiting 98 and 117 (three and five repetitions). Before this round of
fixes the figure was 54 runs/s on a quiet machine. Note that this machine (an AMD
EPYC host) ran code this round did not touch about twice as slowly as the one of
the previous published run (an Intel Xeon host): loading 1,000 enabled workflows
took 43 ms against 21, the 50-node editor 59 ms against 28.

"""
        + _FIXED,
    ),
    (
        "pages.list",
        "The workflow list with 10,000 workflows",
        """\
The list used to join every workflow to its latest run through a correlated
subquery and count the rows of that same query, so the subquery ran for all
10,000 workflows to sort them and again to count them (last page: 96 ms SQLite,
69 ms PostgreSQL, queries alone). Now (11b40f8) the pager counts the filtered
workflows without the join, picks the page's 25 ids first (name, id order) and
looks up the latest runs of those only, with a `workflow_execution (workflow_id,
created_at)` index (migration 0007). What is left is sorting all workflows by
name for each page (about 10 ms on PostgreSQL per its plan; an index on
`workflow (is_template, name, id)` would remove most of it) and decoding each
row's definition JSON, which the row never shows.""",
    ),
    (
        "matching.consume",
        "Matching against 1,000 enabled workflows",
        """\
Matching itself is cheap (1.4–2.5 ms for 1,000 workflows in memory). The
consumer's cost is loading every enabled workflow's whole definition on every
pass (`enabled_workflows` in `app/engine/triggers.py`: 1,000 definitions read and
JSON-decoded, filtered by trigger type in Python afterwards), then creating the
matched runs (an `INSERT` each; they share the definition read for the batch)
and the commit.
Proposed: select only the trigger part of the definition for matching and filter
the trigger type in SQL, loading full definitions for the matched workflows only
— their version read in the same statement, so a run's snapshot and
`workflow_version` always agree — or cache the candidates per process, keyed by
a cheap `max(updated_at), count(*)` check.""",
    ),
    (
        "parked.lateness",
        "Waking many parked runs at once",
        """\
Finding due work stays fast with 100,000 parked runs (the `due_at` index), and
worker memory does not grow: the worker only ever loads up to 20 due runs. What
bounds lateness when many runs wake together is the drain rate — one worker
finishes the woken runs one after another — so the p99 lateness grows with the
number woken: the estimate for 100,000 at once is five to nine minutes on one worker.
More workers (PostgreSQL) or a cheaper step shorten it.""",
    ),
    (
        "commits",
        "Commits and idle work",
        """\
A run commits before each request and when it waits or ends, not after every
node: the benchmark workflow (five nodes, two requests) costs three step commits,
plus about 0.1 per run for consuming events and claiming runs in a burst (batches
of 200 events and 20 runs). With Celery the claim of each run is one more commit
(and dispatching about 0.01). An idle embedded worker commits an empty
transaction at every poll (50 a second); cheap, but visible in database
statistics.""",
    ),
]


FINDINGS.append(
    (
        "endtoend",
        "End to end under gunicorn: where the time goes",
        """\
Profiled with py-spy (`py-spy record --format raw`, 50 Hz, 12 s of the 8-client
closed loop, every gunicorn and worker process) on commit 974a496, on the 2-core
machine while other sessions kept its load average at 9–11, so absolute figures
are low and CPU per operation is inflated; read the shares. The load generator
used at most 3 % of a core in every phase: it was not the bottleneck.
- **The API is the first limit.** `POST /api/v1/incidents` alone (no workflow
  enabled) cost gunicorn 8–14 ms of CPU per request (target 1.5 ms). Of the
  gunicorn workers' samples on PostgreSQL: opening the incident in the service
  28 %, re-reading it for the response (`_incident_response` → `get_incident` →
  `visible_incidents` / `team_visible_clause`, then `incident_out`) 16 %, token
  authentication (`app/auth/tokens.py` `authenticate`) 15 %; a third of all samples
  wait in psycopg (`Connection.wait`) for a PostgreSQL that shares the two cores.
  On SQLite the web threads also queue for the single writer
  (`app/sqlite_writer.py` `queue_for_the_writer`, plus `do_commit`).
- **The workers** on PostgreSQL spend half their samples waiting for the database
  (`Connection.wait`); of the rest, consuming events 25 %, claiming 13 %, driving
  runs 28 % (the webhook exchange through the outbound guard 7 %). The embedded
  worker on SQLite waits 19 % of its samples for the writer lock and 17 % in the
  webhook exchange.
- **Keep-alive clients and gunicorn.** With 8 keep-alive connections opened at
  once, one of the two gunicorn workers sometimes accepts all of them (in one
  profiled run the other worker had almost no samples; in one smoke run on
  PostgreSQL one worker used 2.14 s of CPU and the other none), so the API runs on
  one process and one GIL; `extra.rounds[].web_cpu_s_by_process` shows the split
  per round.
- **What held**: head of line (canary p99 well under 500 ms with 10 runs hanging)
  and takeover after SIGKILL (about 5.1 s with a 5 s lease); idle processes used
  at most a few ms of CPU per second.""",
    )
)


ANALYSIS["endtoend"] = """\
**Cause: CPU per operation, on two cores shared by everything** (see "End to end
under gunicorn" under Findings). The workers keep up with what the API accepts: in
every set-up the backlog drains within about a second once the load stops, so the
closed-loop figure is the rate at which gunicorn accepts incidents plus the
workers' share of the same two cores. The table's CPU figures say why it stops
short of 250 runs/s: a run costs all app processes together several milliseconds
(the "CPU per run" rows; more on PostgreSQL, whose round trips go through psycopg,
and most with Celery, which adds the broker and its task handling), and the
request that creates the incident is itself two to three times its 1.5 ms target
("CPU per POST"). At 250 runs/s the two cores would allow about 8 ms per run for
the web, the workers, the database server, the receiver and the load generator
together. SQLite's backlog can grow in a round where gunicorn's commits and the
worker queue for its single writer (`app/sqlite_writer.py`); it drains in seconds.
What is left to try, in order: the API path of issue 10, item 4 (no re-read of the
incident for the response, a cached token lookup, no lazy loads), then CPU per run
in the workers (fewer statements per step: see "Database commits per run"), then
more cores, since no run is held by one process."""


def analysis_for(key: str) -> str | None:
    best = None
    for prefix in ANALYSIS:
        if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return ANALYSIS[best] if best is not None else None


def findings_for(keys: list[str]) -> list[tuple[str, str]]:
    """(title, text) of every finding whose prefix matches one of ``keys``, in order."""
    return [
        (title, text)
        for prefix, title, text in FINDINGS
        if any(key.startswith(prefix) for key in keys)
    ]
