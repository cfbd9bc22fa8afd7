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

_CPU_PER_RUN = """\
**Cause: CPU per run, then the commit per step.** A run of the benchmark
workflow costs the worker process 14–20 ms of CPU on SQLite and 21–25 ms on
PostgreSQL (`time.process_time()` of an in-process worker over 200 runs on the
idle machine, the webhooks answered by the instant receiver; its wall time was
within 1–2 ms of its CPU time on SQLite). So one worker is CPU-bound at about
50–70 runs/s on SQLite whatever the disk does, and the receiver, the harness and,
for PostgreSQL, the database server share the same two cores. cProfile of the
step loop (SQLite): more than half is SQLAlchemy — loading the run at each step,
reloading the incident (an autoflush of the run's pending `UPDATE` happens
there), flushing the step's `UPDATE` (the whole `completed_nodes` JSON each
time), committing; about a fifth is the webhook exchange through the outbound
guard, which builds a new `httpx.Client` and opens a new TCP connection for every
request (a webhook step takes about twice as long as a condition step: see
`extra.by_node` of the latency figures); the rest is templating, the template
context, decrypting secrets, pydantic's `NodeResult` dump and JSON. On top of
the CPU, every step is its own durable commit — 6 per run embedded, 8 with Celery
(see "Database commits per run") — and in the shipped SQLite configuration (WAL,
`synchronous=FULL`) each one waits for an fsync. This disk's flush latency
varied from 0.07 ms to 1.7 ms at p50 (11 ms at p99) while other processes wrote
to it during these measurements, which is also why figures taken at different
times differ (the machine table gives it at the start and end of the run).

**Fixed while profiling** (in `app/engine`, `tests/engine` passing on both
databases): the worker read `lease_owner` after the commit, which expired it and
cost a `SELECT` per step; the runner loaded the incident and then its team
lazily, a second `SELECT` per action. 31 → 24 statements per run (6 commits
unchanged).

**Proposed, not made** (each is a design decision, not a local fix):
1. `PRAGMA synchronous=NORMAL` with WAL on SQLite (`app/__init__.py`): no fsync
   per commit; a process crash loses nothing, a power cut can lose the last
   commits but never corrupts. The table's "synchronous=NORMAL (proposed)" line
   measures it: side by side with worker processes it took one worker from 18 to
   45 runs/s while the disk was slow; with fast flushes it adds 10–20 %.
2. Commit a step that has no effect outside the database (trigger, condition,
   delay 0, a skipped node) together with the next step: 6 → 3 commits per run.
   A crash then repeats those steps, which is harmless because nothing outside saw
   them. In-process experiments here: 15–30 % more runs/s, up to twice as many
   while the disk was slow.
3. A keep-alive connection pool per destination in the outbound guard
   (`app/engine/outbound.py`), still checking the resolved address at connect.
4. Update the run with Core statements (`UPDATE … SET completed_nodes = …`) and
   skip reloading it between the steps of one drive.

1 and 2 remove waiting; 3 and 4 address the two largest shares of CPU. Even so,
100 runs/s from one embedded worker on two shared cores means at most 10 ms per
run for everything, where the worker alone spends 14–20 ms of CPU today."""

_CELERY = """\
**Cause.** Each Celery run does the embedded worker's six step commits plus two
more (the claim, and the hand-back after the drive), each a PostgreSQL commit
that waits for its WAL flush, and about 26 SQL round trips, plus the broker
round trip per task; one Celery process completes about 23 runs/s on the idle
machine (10–13 while other processes were busy), against about 36 for one
embedded worker on the same database. With 2 and 4 processes the two cores are
saturated (Python, the PostgreSQL backends, Redis, the receiver), so 4 processes
give no more than 2. 250 runs/s on two cores would need ≤ 8 ms of CPU per run for
everything together (≈ 1.3 ms per step including its commit); the worker alone
spends 21–25 ms. The gap is the design — one ORM transaction per step in
CPython — and the core count, not a hot spot: proposals 2–4 above apply, plus
`SET LOCAL synchronous_commit = off` for step transactions on PostgreSQL (a
server crash can lose the last few hundred milliseconds of steps, which are then
redone; nothing is corrupted), and skipping the hand-back commit when the drive
ended or parked the run (`app/engine/tasks.py`)."""

_LATENCY = """\
**Cause.** The p99 is a queueing effect: at 20 runs/s the embedded worker is
close to its capacity on this shared machine (see "Runs completed per second";
each run is 6 steps of a few milliseconds), so whenever other processes take
the CPU a backlog forms and the incidents behind it wait their turn. In a quieter moment
the same measurement (a smoke run) gave a p99 of 62 ms: the idle poll (up to
20 ms), consuming the event, and the three steps before the first request.
Raising the worker's throughput (see above) is the fix."""

_STEP = """\
**Cause.** The median step is a few milliseconds; the tail comes from the
commits' flush latency on this disk (p99 up to 11 ms for one fdatasync while
other processes wrote) and from CPU contention (two cores shared with the
receiver, the harness, the database server and other processes): a step is
CPU-bound work that stops whenever the scheduler runs something else. Webhook
steps are the slowest (new HTTP connection per request, templating, the attempt
row); `extra.by_node` in the JSON has them per node. Proposals 1–3 above shorten
both the work and the flushes."""

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
        "pages.list",
        "The workflow list with 10,000 workflows",
        """\
The list's query joins each workflow to its latest run through a correlated
subquery (`search_workflows` in `app/workflows/service.py`), and the pager counts
the rows of that same query, so the subquery is evaluated for all 10,000
workflows to sort them by name and again to count them. The queries alone, on
the idle machine: SQLite page 33 ms, count 16 ms, last page 96 ms (counting
without the join: 0.4 ms); PostgreSQL page 20 ms, count 3 ms, last page 69 ms.
Proposed: count the filtered workflows without the join, select the page's 25
workflow ids first and fetch their latest runs afterwards, and index
`workflow_execution (workflow_id, created_at)` so each latest-run lookup is one
index probe (today's index is `(workflow_id, status)`).""",
    ),
    (
        "matching.consume",
        "Matching against 1,000 enabled workflows",
        """\
Matching itself is cheap (1.4–2.5 ms for 1,000 workflows in memory). The
consumer's cost is loading every enabled workflow's whole definition on every
pass (`enabled_workflows` in `app/engine/triggers.py`: 1,000 definitions read and
JSON-decoded, filtered by trigger type in Python afterwards), then creating the
matched runs (each a deep copy of the definition and an `INSERT`) and the commit.
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
number woken: the estimate for 100,000 at once is a quarter of an hour or more. More
workers (PostgreSQL) or a cheaper step shorten it.""",
    ),
    (
        "commits",
        "Commits and idle work",
        """\
Every step commits once, by design, so a run of the benchmark workflow costs six
commits embedded and eight with Celery (claim and hand-back). Consuming events and
claiming runs add about 0.1 per run in a burst (batches of 200 events and 20 runs).
An idle embedded worker commits an empty transaction at every poll (50 a
second); cheap, but visible in database statistics.""",
    ),
]


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
