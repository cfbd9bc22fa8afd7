"""``/metrics``: the Prometheus text format, counted from the database at scrape time.

Why the database: runs are advanced by worker processes (embedded or Celery),
not by the web process that answers the scrape, so in-process counters here
would see none of it. The database sees every worker, so any web process gives
the same, cluster-wide answer, and nothing is lost when a process restarts.

Counters are counts of rows that only grow (runs created, runs finished,
attempts), so ``rate()`` works on them. Deleting a workflow deletes its
finished runs and attempts, which Prometheus takes as a counter reset.

The action latency histogram is bucketed in SQL over **every** stored attempt
(``ExecutionAttempt.duration_ms``), not a recent window: a windowed histogram
would go down as well as up and break ``rate()`` and ``histogram_quantile()``.
The price is one aggregate scan of ``execution_attempt`` per scrape, grouped by
action node; at a 15 s scrape interval that is fine for millions of attempts.
An attempt's action type is read from the version its run was started with
(versions never change, so the lookup is cached).

In-process: the scrape's own duration, and the standard ``process_*`` metrics.
When the database is unreachable the scrape still answers, with
``incidentflow_database_up 0`` and none of the database's figures.

Set ``INCIDENTFLOW_METRICS_TOKEN`` to require ``Authorization: Bearer <token>``;
without it the endpoint is open (the README says so).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.engine import Connection

from app.db import utcnow
from app.extensions import db
from app.incidents.models import IncidentEvent
from app.ops.blueprint import bp
from app.ops.health import metrics_token_given
from app.ops.settings import setting, worker_stale_seconds
from app.workflows.enums import ActionType, ExecutionStatus
from app.workflows.models import (
    ExecutionAttempt,
    WorkerHeartbeat,
    WorkflowExecution,
    WorkflowVersion,
)

log = logging.getLogger("incidentflow.ops.metrics")

EXTENSION_KEY = "incidentflow.metrics"
# The classic text format, which every Prometheus version reads (our names need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Upper bounds of the latency buckets, in seconds (``+Inf`` is added).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FINISHED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
IN_FLIGHT = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
# ok: the action succeeded; retry: it failed and another attempt is scheduled;
# failed: it failed for good (not retryable, or out of attempts or time).
OUTCOMES = ("ok", "retry", "failed")
UNKNOWN_ACTION = "unknown"


# --- the endpoint -----------------------------------------------------------


@bp.get("/metrics")
def metrics() -> Response:
    if setting("METRICS_TOKEN") and not metrics_token_given():
        return Response(
            "A bearer token is required.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    registry = current_app.extensions.get(EXTENSION_KEY)
    if registry is None:
        registry = current_app.extensions[EXTENSION_KEY] = build_registry()
    response = Response(generate_latest(registry), status=200)
    response.headers["Content-Type"] = CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response


def build_registry() -> CollectorRegistry:
    """A registry of our own: nothing another library registers globally leaks in."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    ProcessCollector(registry=registry)
    return registry


# --- the collector ----------------------------------------------------------


class DatabaseCollector(Collector):
    """Reads the figures from the database of the current app, at each scrape."""

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        families: list[Metric] = []
        up = 1
        try:
            with db.engine.connect() as conn:
                now = utcnow()
                families.extend(_runs(conn))
                families.extend(_attempts(conn))
                families.extend(_backlog(conn, now))
                families.extend(_events(conn, now))
                families.extend(_workers(conn, now))
        except sa.exc.SQLAlchemyError as error:
            up = 0
            families = []
            log.warning("metrics: database unreachable (%s)", type(error).__name__)
        yield _gauge(
            "incidentflow_database_up", "1 if the database answered this scrape, else 0.", up
        )
        yield from families
        yield _gauge(
            "incidentflow_metrics_scrape_duration_seconds",
            "Time taken to read these metrics from the database.",
            time.perf_counter() - started,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _runs(conn: Connection) -> Iterator[Metric]:
    counts: dict[str, int] = {status.value: 0 for status in ExecutionStatus}
    started = 0
    rows = conn.execute(
        sa.select(
            WorkflowExecution.status,
            sa.func.count(),
            sa.func.count(WorkflowExecution.started_at),
        ).group_by(WorkflowExecution.status)
    )
    for status, count, with_start in rows:
        counts[ExecutionStatus(status).value] = count
        started += with_start
    by_status = GaugeMetricFamily(
        "incidentflow_runs", "Workflow runs now in each status.", labels=["status"]
    )
    for name, count in counts.items():
        by_status.add_metric([name], count)
    yield by_status
    yield CounterMetricFamily(
        "incidentflow_runs_created",
        "Workflow runs created (triggered).",
        value=sum(counts.values()),
    )
    yield CounterMetricFamily(
        "incidentflow_runs_started", "Workflow runs that began working.", value=started
    )
    finished = CounterMetricFamily(
        "incidentflow_runs_finished", "Workflow runs that ended, by outcome.", labels=["status"]
    )
    for status in FINISHED:
        finished.add_metric([status.value], counts[status.value])
    yield finished


def _attempts(conn: Connection) -> Iterator[Metric]:
    duration = ExecutionAttempt.duration_ms
    failed = sa.and_(ExecutionAttempt.ok.is_(False), ExecutionAttempt.retry_at.is_(None))
    retry = sa.and_(ExecutionAttempt.ok.is_(False), ExecutionAttempt.retry_at.is_not(None))
    bucket_columns = [
        _count_where(duration <= int(round(bound * 1000))) for bound in LATENCY_BUCKETS
    ]
    rows = conn.execute(
        sa.select(
            WorkflowExecution.workflow_id,
            WorkflowExecution.workflow_version,
            ExecutionAttempt.node_id,
            sa.func.count(),
            _count_where(ExecutionAttempt.ok.is_(True)),
            _count_where(retry),
            _count_where(failed),
            _count_where(ExecutionAttempt.number > 1),
            sa.func.coalesce(sa.func.sum(duration), 0),
            *bucket_columns,
        )
        .join(WorkflowExecution, WorkflowExecution.id == ExecutionAttempt.execution_id)
        .group_by(
            WorkflowExecution.workflow_id,
            WorkflowExecution.workflow_version,
            ExecutionAttempt.node_id,
        )
    ).all()
    types = action_types(conn, {(row[0], row[1]) for row in rows})

    # Per action type: count, ok, retry, failed, retries, sum of ms, then one per bucket.
    width = 6 + len(LATENCY_BUCKETS)
    totals: dict[str, list[int]] = {action.value: [0] * width for action in ActionType}
    for workflow_id, version, node_id, *figures in rows:
        kind = types.get((workflow_id, version), {}).get(node_id, UNKNOWN_ACTION)
        sums = totals.setdefault(kind, [0] * width)
        for index, value in enumerate(figures):
            sums[index] += int(value or 0)

    attempts = CounterMetricFamily(
        "incidentflow_action_attempts",
        "Action attempts (one HTTP call each), by action type and outcome.",
        labels=["action_type", "outcome"],
    )
    retries_family = CounterMetricFamily(
        "incidentflow_action_retries",
        "Action attempts that were retries (second attempt or later).",
        labels=["action_type"],
    )
    latency = HistogramMetricFamily(
        "incidentflow_action_duration_seconds",
        "How long action attempts took, by action type.",
        labels=["action_type"],
    )
    for kind in sorted(totals):
        count, ok, retried, gave_up, retries, ms, *buckets = totals[kind]
        for outcome, value in zip(OUTCOMES, (ok, retried, gave_up), strict=True):
            attempts.add_metric([kind, outcome], value)
        retries_family.add_metric([kind], retries)
        latency.add_metric(
            [kind],
            buckets=[
                *(
                    (_bound(bound), value)
                    for bound, value in zip(LATENCY_BUCKETS, buckets, strict=True)
                ),
                ("+Inf", count),
            ],
            sum_value=ms / 1000,
        )
    yield attempts
    yield retries_family
    yield latency


def _bound(seconds: float) -> str:
    return repr(float(seconds))


def _count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _backlog(conn: Connection, now: datetime) -> Iterator[Metric]:
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(WorkflowExecution.due_at)).where(
            WorkflowExecution.due_at <= now, WorkflowExecution.status.in_(IN_FLIGHT)
        )
    ).one()
    yield _gauge(
        "incidentflow_due_runs",
        "Runs due now and not being worked on: new, woken, or with an expired lease.",
        count,
    )
    yield _gauge(
        "incidentflow_due_runs_oldest_lateness_seconds",
        "How long the most overdue run has been waiting for a worker (0 when none).",
        _age(now, oldest),
    )


def _events(conn: Connection, now: datetime) -> Iterator[Metric]:
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(IncidentEvent.created_at)).where(
            IncidentEvent.processed_at.is_(None)
        )
    ).one()
    yield _gauge(
        "incidentflow_unprocessed_events",
        "Incident events the workflow engine has not consumed yet (consumer lag).",
        count,
    )
    yield _gauge(
        "incidentflow_unprocessed_events_oldest_age_seconds",
        "Age of the oldest incident event not consumed yet (0 when none).",
        _age(now, oldest),
    )


def _workers(conn: Connection, now: datetime) -> Iterator[Metric]:
    cutoff = now - timedelta(seconds=worker_stale_seconds())
    rows = conn.execute(
        sa.select(
            WorkerHeartbeat.backend,
            _count_where(WorkerHeartbeat.last_seen_at >= cutoff),
            _count_where(WorkerHeartbeat.last_seen_at < cutoff),
            sa.func.max(WorkerHeartbeat.last_seen_at),
        ).group_by(WorkerHeartbeat.backend)
    ).all()
    workers = GaugeMetricFamily(
        "incidentflow_workers",
        "Workers by backend and heartbeat state (fresh: seen within the stale threshold).",
        labels=["backend", "state"],
    )
    newest: datetime | None = None
    for backend, fresh, stale, last_seen in rows:
        workers.add_metric([backend, "fresh"], fresh)
        workers.add_metric([backend, "stale"], stale)
        if last_seen is not None and (newest is None or last_seen > newest):
            newest = last_seen
    yield workers
    if newest is not None:
        yield _gauge(
            "incidentflow_worker_newest_heartbeat_age_seconds",
            "Seconds since the most recent heartbeat of any worker (absent with no workers).",
            _age(now, newest),
        )


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    return max((now - then).total_seconds(), 0.0)


# --- action types -----------------------------------------------------------

_TYPES: OrderedDict[tuple[str, int], dict[str, str]] = OrderedDict()
_TYPES_LOCK = threading.Lock()
_TYPES_CACHE_SIZE = 4096


def action_types(
    conn: Connection, keys: set[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, str]]:
    """``{(workflow id, version): {node id: action type}}``; versions never change."""
    with _TYPES_LOCK:
        found = {key: _TYPES[key] for key in keys if key in _TYPES}
    missing = keys - set(found)
    if missing:
        loaded = _load_action_types(conn, missing)
        found.update(loaded)
        with _TYPES_LOCK:
            _TYPES.update(loaded)
            while len(_TYPES) > _TYPES_CACHE_SIZE:
                _TYPES.popitem(last=False)
    return found


def _load_action_types(
    conn: Connection, keys: set[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, str]]:
    loaded: dict[tuple[str, int], dict[str, str]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        rows = conn.execute(
            sa.select(
                WorkflowVersion.workflow_id, WorkflowVersion.version, WorkflowVersion.definition
            ).where(
                sa.tuple_(WorkflowVersion.workflow_id, WorkflowVersion.version).in_(
                    ordered[start : start + 500]
                )
            )
        )
        for workflow_id, version, definition in rows:
            loaded[(workflow_id, version)] = _node_types(definition)
    return loaded


def _node_types(definition: Any) -> dict[str, str]:
    types: dict[str, str] = {}
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    for node in nodes or ():
        if not isinstance(node, dict) or node.get("type") != "action":
            continue
        data = node.get("data") or {}
        kind = data.get("actionType") if isinstance(data, dict) else None
        if isinstance(node.get("id"), str) and isinstance(kind, str):
            types[node["id"]] = kind
    return types
