"""Starting runs: the incident-event consumer, the age scan, and manual runs.

Each event starts each matching enabled workflow at most once: the consumer
claims unprocessed events (SKIP LOCKED on PostgreSQL), creates the runs and
marks the events processed in one transaction, and every event-started run
carries a unique ``trigger_key`` as a second guard against replays.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.auth.models import User
from app.db import new_id
from app.engine import guards, wake
from app.engine.clock import Clock
from app.engine.context import field_value
from app.errors import InvalidInput
from app.extensions import db
from app.incidents.enums import IncidentEventType, IncidentStatus
from app.incidents.models import Incident, IncidentEvent
from app.workflows.enums import ExecutionStatus, ScopeType, TriggeredBy, TriggerEvent, TriggerType
from app.workflows.models import Workflow, WorkflowExecution

log = logging.getLogger("incidentflow.engine.triggers")

EVENT_TRIGGERS = {
    IncidentEventType.INCIDENT_CREATED: TriggerType.INCIDENT_CREATED,
    IncidentEventType.STATE_CHANGED: TriggerType.STATE_CHANGED,
    IncidentEventType.ESCALATION: TriggerType.ESCALATION,
    IncidentEventType.WORKFLOW_FAILED: TriggerType.WORKFLOW_FAILED,
}


@dataclass(frozen=True)
class Candidate:
    """An enabled workflow, as much of it as matching needs."""

    @classmethod
    def of(cls, workflow: Workflow) -> Candidate:
        # A copy: the loaded workflow's definition may still be edited in this session.
        return cls(
            workflow.id,
            workflow.version,
            workflow.scope_type,
            workflow.team_id,
            copy.deepcopy(workflow.definition),
        )

    id: str
    version: int
    scope: ScopeType
    team_id: str | None
    #: Cached per (workflow, version) and never changed: runs share it as their snapshot.
    definition: dict[str, Any]

    @property
    def trigger(self) -> dict[str, Any]:
        trigger: dict[str, Any] = self.definition["trigger"]
        return trigger


# Enabled workflows' definitions by (workflow, version): a version's definition never
# changes, so each pass reads the (small) list of enabled workflows and parses only
# the definitions it has not seen.
_DEFINITIONS: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
_DEFINITIONS_KEPT = 2048


def enabled_workflows(trigger_types: set[TriggerType] | None = None) -> list[Candidate]:
    rows = db.session.execute(
        sa.select(Workflow.id, Workflow.version, Workflow.scope_type, Workflow.team_id).where(
            Workflow.is_enabled.is_(True), Workflow.is_template.is_(False)
        )
    ).all()
    missing = [row.id for row in rows if (row.id, row.version) not in _DEFINITIONS]
    if missing:
        for workflow_id, version, definition in db.session.execute(
            sa.select(Workflow.id, Workflow.version, Workflow.definition).where(
                Workflow.id.in_(missing)
            )
        ):
            _DEFINITIONS[(workflow_id, version)] = definition
        while len(_DEFINITIONS) > _DEFINITIONS_KEPT:
            _DEFINITIONS.popitem(last=False)
    candidates = []
    for workflow_id, version, scope, team_id in rows:
        definition = _DEFINITIONS.get((workflow_id, version))
        if definition is None:  # changed between the two reads: seen at the next pass
            continue
        candidates.append(Candidate(workflow_id, version, scope, team_id, definition))
    if trigger_types is not None:
        candidates = [c for c in candidates if c.trigger.get("type") in trigger_types]
    return candidates


def conditions_match(trigger: dict[str, Any], incident: Incident) -> bool:
    """All of the trigger's field-equals conditions hold (no conditions: always)."""
    return all(
        field_value(incident, condition["field"]) == condition["value"]
        for condition in trigger.get("conditions", [])
    )


def in_scope(candidate: Candidate, incident: Incident) -> bool:
    return candidate.scope == ScopeType.GLOBAL or candidate.team_id == incident.team_id


def event_matches(candidate: Candidate, incident: Incident, event: IncidentEvent) -> bool:
    trigger = candidate.trigger
    if EVENT_TRIGGERS.get(event.type) != trigger.get("type") or not in_scope(candidate, incident):
        return False
    if event.type == IncidentEventType.STATE_CHANGED:
        change = event.changes.get("status", {})
        transition = trigger.get("stateTransition") or {}
        if transition.get("to") != change.get("to"):
            return False
        if transition.get("from") is not None and transition["from"] != change.get("from"):
            return False
    if event.type == IncidentEventType.WORKFLOW_FAILED:
        failed = {key: (value or {}).get("to") for key, value in event.changes.items()}
        if failed.get("failureWorkflow"):
            return False  # a failure workflow's own failure starts no other
        wanted = trigger.get("workflowIds")
        if wanted is not None and failed.get("workflowId") not in wanted:
            return False
        if (failed.get("failuresInADay") or 1) < (trigger.get("minFailures") or 1):
            return False
    return conditions_match(trigger, incident)


def new_run(
    candidate: Candidate,
    incident: Incident,
    now: datetime,
    *,
    triggered_by: TriggeredBy,
    trigger_event: TriggerEvent | None,
    trigger_key: str | None,
    user: User | None = None,
    run_id: str | None = None,
    caused_by: str | None = None,
) -> WorkflowExecution:
    execution = WorkflowExecution(
        id=run_id or new_id(),  # now, not at flush: the log line below carries it
        workflow_id=candidate.id,
        workflow_version=candidate.version,
        definition_snapshot=candidate.definition,
        incident_id=incident.id,
        triggered_by=triggered_by,
        trigger_event=trigger_event,
        trigger_key=trigger_key,
        triggered_by_user_id=user.id if user else None,
        status=ExecutionStatus.PENDING,
        completed_nodes=[],
        due_at=now,
        created_at=now,
        caused_by_execution_id=caused_by,
    )
    db.session.add(execution)
    log.info(
        "run started",
        extra={
            "execution_id": execution.id,
            "workflow_id": candidate.id,
            "incident_id": incident.id,
            "trigger_key": trigger_key,
        },
    )
    return execution


def _existing_keys(keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(
        db.session.scalars(
            sa.select(WorkflowExecution.trigger_key).where(WorkflowExecution.trigger_key.in_(keys))
        )
    )


def consume_events(clock: Clock, limit: int = 200) -> int:
    """Start the runs for up to ``limit`` unprocessed events, oldest first. Flushes.

    Returns how many events were processed. The caller commits: runs and the
    events' ``processed_at`` become visible together, or not at all.
    """
    query = (
        sa.select(IncidentEvent)
        .where(IncidentEvent.processed_at.is_(None))
        .order_by(IncidentEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    events = list(db.session.scalars(query))
    if not events:
        return 0
    now = clock.now()
    relevant = [e for e in events if e.type in EVENT_TRIGGERS]
    candidates = enabled_workflows(set(EVENT_TRIGGERS.values())) if relevant else []
    incidents = (
        {
            i.id: i
            for i in db.session.scalars(
                sa.select(Incident)
                .where(Incident.id.in_({e.incident_id for e in relevant}))
                .options(selectinload(Incident.team))
            )
        }
        if candidates
        else {}
    )
    planned: list[tuple[str, Candidate, Incident, IncidentEvent]] = []
    for event in relevant:
        incident = incidents.get(event.incident_id)
        if incident is None:
            continue
        for candidate in candidates:
            if event_matches(candidate, incident, event):
                planned.append((f"event:{event.id}:{candidate.id}", candidate, incident, event))
    done = _existing_keys([key for key, *_ in planned])
    for key, candidate, incident, event in planned:
        if key in done:
            continue
        run_id = new_id()
        name = str(candidate.definition.get("name", candidate.id))
        if not guards.loop_guard_allows(name, incident, event.execution_id, now):
            continue
        settings = candidate.definition.get("settings") or {}
        if not guards.run_limit_allows(candidate.id, name, settings, incident, run_id, now):
            continue
        new_run(
            candidate,
            incident,
            now,
            triggered_by=TriggeredBy.EVENT,
            trigger_event=TriggerEvent(event.type.value),
            trigger_key=key,
            run_id=run_id,
            caused_by=event.execution_id,
        )
    for event in events:
        event.processed_at = now
    db.session.flush()
    return len(events)


def scan_age(clock: Clock) -> int:
    """Start ``age`` runs for unresolved incidents past each workflow's threshold, once each."""
    now = clock.now()
    started = 0
    for candidate in enabled_workflows({TriggerType.AGE}):
        threshold = candidate.trigger.get("ageThresholdMinutes")
        if not isinstance(threshold, int):
            continue
        key_prefix = f"age:{candidate.id}:"
        already = sa.select(WorkflowExecution.id).where(
            WorkflowExecution.trigger_key == sa.literal(key_prefix) + Incident.id
        )
        query = (
            sa.select(Incident)
            .where(
                Incident.status != IncidentStatus.RESOLVED,
                Incident.created_at <= now - timedelta(minutes=threshold),
                ~already.exists(),
            )
            .options(selectinload(Incident.team))
            .order_by(Incident.created_at)
            .limit(500)
        )
        if candidate.scope == ScopeType.TEAM:
            query = query.where(Incident.team_id == candidate.team_id)
        for incident in db.session.scalars(query):
            if conditions_match(candidate.trigger, incident):
                new_run(
                    candidate,
                    incident,
                    now,
                    triggered_by=TriggeredBy.EVENT,
                    trigger_event=TriggerEvent.AGE,
                    trigger_key=key_prefix + incident.id,
                )
                started += 1
    db.session.flush()
    return started


def manual_candidates(incident: Incident) -> list[Workflow]:
    """Enabled workflows with a manual trigger that may run on this incident."""
    workflows = db.session.scalars(
        sa.select(Workflow)
        .where(
            Workflow.is_enabled.is_(True),
            Workflow.is_template.is_(False),
            sa.or_(Workflow.scope_type == ScopeType.GLOBAL, Workflow.team_id == incident.team_id),
        )
        .order_by(Workflow.name)
    )
    return [w for w in workflows if w.definition["trigger"]["type"] == TriggerType.MANUAL]


def start_manual(
    user: User, workflow: Workflow, incident: Incident, clock: Clock
) -> WorkflowExecution:
    """Run a workflow on an incident by hand (the caller has checked the user may)."""
    if not workflow.is_enabled:
        raise InvalidInput.at("workflowId", "This workflow is disabled; enable it first.")
    candidate = Candidate.of(workflow)
    if candidate.trigger.get("type") != TriggerType.MANUAL:
        raise InvalidInput.at(
            "workflowId", "Only workflows with a manual trigger can be run by hand."
        )
    if not in_scope(candidate, incident):
        raise InvalidInput.at("workflowId", "This workflow belongs to another team.")
    if not conditions_match(candidate.trigger, incident):
        raise InvalidInput.at(
            "workflowId", "This incident does not meet the workflow's trigger conditions."
        )
    execution = new_run(
        candidate,
        incident,
        clock.now(),
        triggered_by=TriggeredBy.MANUAL,
        trigger_event=None,
        trigger_key=None,
        user=user,
    )
    db.session.flush()
    wake.signal_work(db.session)
    return execution
