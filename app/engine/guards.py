"""Run guards: at most once per incident, and the loop guard.

A matching trigger does not start a run when:

- the workflow's settings allow one run per incident (ever, or per N minutes) and
  one has started: a row per (workflow, incident) in ``workflow_incident_guard``,
  taken with ``INSERT … ON CONFLICT DO NOTHING`` and then a conditional UPDATE.
  Two events handled at once by two workers start one run: on PostgreSQL the
  second insert waits for the first transaction and then sees its row; SQLite
  writes one transaction at a time;
- the change that fired the trigger was made by a workflow run (its requests to
  the API carry the run's marker header, :func:`run_marker`), and that run ends a
  chain of ``LOOP_GUARD_DEPTH`` runs within ``LOOP_GUARD_MINUTES``, each started
  by a change the one before it made.

Either way the incident's timeline gets a ``workflow_skipped`` event saying why.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import IncidentEventType
from app.incidents.models import Incident
from app.workflows.models import Workflow, WorkflowExecution, WorkflowIncidentGuard

#: The header a run's webhook requests carry; the API attributes changes made with it
#: to the run (see app/api/auth.acting_run).
RUN_HEADER = "X-IncidentFlow-Run"
_MARKER_PURPOSE = b"incidentflow run marker v1"


def _marker_key() -> bytes:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    # A key of its own: the marker never shows anything made with SECRET_KEY itself.
    return hmac.new(secret, _MARKER_PURPOSE, hashlib.sha256).digest()


def run_marker(execution_id: str) -> str:
    """``<run id>.<signature>``: proof that a request comes from this server's run."""
    signature = hmac.new(_marker_key(), execution_id.encode(), hashlib.sha256).hexdigest()
    return f"{execution_id}.{signature[:32]}"


def run_from_marker(marker: str) -> str | None:
    """The run id a marker names, or None if this server did not issue it."""
    execution_id, dot, _ = marker.strip().partition(".")
    if not dot or not execution_id or len(execution_id) > 32:
        return None
    return execution_id if hmac.compare_digest(run_marker(execution_id), marker.strip()) else None


@dataclass(frozen=True)
class Link:
    """One run of a chain."""

    execution_id: str
    workflow_name: str

    def __str__(self) -> str:
        return f"{self.workflow_name} (run {self.execution_id})"


def chain_before(execution_id: str, since: datetime, limit: int) -> list[Link]:
    """The run that made a change and the runs whose changes led to it, oldest first.

    Only runs created since ``since`` count, and at most ``limit`` are read.
    """
    links: list[Link] = []
    current: str | None = execution_id
    while current is not None and len(links) < limit:
        row = db.session.execute(
            sa.select(
                WorkflowExecution.caused_by_execution_id,
                WorkflowExecution.created_at,
                Workflow.name,
            )
            .join(Workflow, Workflow.id == WorkflowExecution.workflow_id)
            .where(WorkflowExecution.id == current)
        ).one_or_none()
        if row is None or row.created_at < since:
            break
        links.append(Link(current, row.name))
        current = row.caused_by_execution_id
    links.reverse()
    return links


def _skipped(incident: Incident, workflow_name: str, reason: str, **more: str) -> None:
    shown = {"workflow": workflow_name, "reason": reason, **more}
    changes = {key: {"from": None, "to": value} for key, value in shown.items()}
    incidents.record_engine_event(incident.id, IncidentEventType.WORKFLOW_SKIPPED, changes)


def loop_guard_allows(
    workflow_name: str, incident: Incident, caused_by: str | None, now: datetime
) -> bool:
    """False (and a timeline entry) when ``caused_by`` ends a chain as long as allowed."""
    if caused_by is None:
        return True
    depth = int(current_app.config.get("LOOP_GUARD_DEPTH", 5))
    minutes = float(current_app.config.get("LOOP_GUARD_MINUTES", 60.0))
    chain = chain_before(caused_by, now - timedelta(minutes=minutes), depth)
    if len(chain) < depth:
        return True
    _skipped(
        incident,
        workflow_name,
        f"Not started by the loop guard: {len(chain)} runs in a row within {minutes:g} "
        f"minutes were each started by a change the run before made to this incident "
        f"(at most {depth}). Change the workflows so that they do not trigger each other, "
        f"or raise INCIDENTFLOW_LOOP_GUARD_DEPTH.",
        chain=" → ".join(str(link) for link in chain),
    )
    return False


def _insert_ignoring_conflict(
    values: dict[str, object],
) -> postgresql.Insert | sqlite.Insert:
    table = WorkflowIncidentGuard.__table__
    if db.session.connection().dialect.name == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing()
    return sqlite.insert(table).values(values).on_conflict_do_nothing()


def take_run_slot(
    workflow_id: str, incident_id: str, execution_id: str, now: datetime, minutes: float
) -> str | None:
    """Claim the workflow's one run on the incident (per ``minutes``; infinity: ever).

    None when the run may start (the slot is now its); otherwise the id of the run
    that holds it. Flushes nothing else; the caller's transaction holds the row.
    """
    table = WorkflowIncidentGuard.__table__
    values = {
        "workflow_id": workflow_id,
        "incident_id": incident_id,
        "execution_id": execution_id,
        "last_started_at": now,
    }
    # Core on the session's connection, RETURNING: whether a row was written (rowcount
    # is not reliable for ON CONFLICT through every driver).
    connection = db.session.connection()
    inserted = connection.execute(
        _insert_ignoring_conflict(values).returning(table.c.execution_id)
    ).first()
    if inserted is not None:
        return None
    key = (table.c.workflow_id == workflow_id) & (table.c.incident_id == incident_id)
    if not math.isinf(minutes):
        renewed = connection.execute(
            sa.update(table)
            .where(key, table.c.last_started_at <= now - timedelta(minutes=minutes))
            .values(execution_id=execution_id, last_started_at=now)
            .returning(table.c.execution_id)
        ).first()
        if renewed is not None:
            return None
    holder: str | None = connection.scalar(sa.select(table.c.execution_id).where(key))
    return holder or "?"


def run_limit_allows(
    workflow_id: str,
    workflow_name: str,
    settings: dict[str, object],
    incident: Incident,
    execution_id: str,
    now: datetime,
) -> bool:
    """False (and a timeline entry) when the workflow's run limit has this incident's run."""
    if settings.get("oncePerIncident") is True:
        minutes = math.inf
    elif isinstance(settings.get("oncePerIncidentMinutes"), int):
        minutes = float(settings["oncePerIncidentMinutes"])  # type: ignore[arg-type]
    else:
        return True
    holder = take_run_slot(workflow_id, incident.id, execution_id, now, minutes)
    if holder is None:
        return True
    limit = "once per incident"
    if not math.isinf(minutes):
        limit += f" per {minutes:g} minutes"
    _skipped(
        incident,
        workflow_name,
        f"Not started: this workflow runs at most {limit}, and run {holder} already ran "
        f"on this incident.",
    )
    return False
