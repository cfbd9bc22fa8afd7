"""Backtests: what a workflow definition would have done over the last days of incidents.

For a definition (a draft, any version, or the current one) and a window (the last N
days), a backtest replays the stored incident events:

1. **Which incidents would have started it.** Each event in the window is matched
   against the definition's trigger exactly as the event consumer does
   (``triggers.event_matches``: type, state transition, team scope, conditions);
   an ``age`` trigger fires where an incident created in time stayed unresolved past
   its threshold. Manual triggers have no events: nothing to replay.
2. **Which path each would have taken.** The trigger's conditions and every
   condition node read the incident *as it was* — reconstructed from its event
   history, not read as it is now: the current row with every later change undone
   (each event records ``from`` and ``to``). A condition after a delay reads the
   incident as it was that many minutes after the event.
3. **The requests it would have sent**, for the first ``sample`` matches: rendered
   exactly as a dry run renders them (``dry_run.walk``), secrets masked.

Nothing is written, and nothing is sent: the only reads are the events, the
incidents, their assignees, the workflow's secrets (to render, then masked) and,
for sampled matches whose templates read ``incident.previous``, the runs that
existed at the event's time.

Reconstruction limits, said once: the team and the people behind the assignee
(names, phone) are as they are now; ``acknowledgedAt`` and ``resolvedAt`` come
from the status events' times.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from app.auth.models import Team, User
from app.definition import WorkflowDefinition, reads_previous
from app.engine import triggers
from app.engine.context import AssigneeView, IncidentView, TeamView, previous_results
from app.engine.dry_run import DryStep, walk
from app.extensions import db
from app.incidents.enums import IncidentEventType, IncidentPriority, IncidentStatus
from app.incidents.models import Incident, IncidentEvent
from app.incidents.view import incident_view
from app.workflows import secrets as secret_store
from app.workflows.enums import ScopeType, TriggerType
from app.workflows.models import Workflow

DEFAULT_DAYS = 7
MAX_DAYS = 90
DEFAULT_SAMPLE = 20
MAX_SAMPLE = 100
#: IN lists are sent in chunks (SQLite allows a few thousand variables at most).
_CHUNK = 500

_EVENT_TRIGGERS = {trigger: event for event, trigger in triggers.EVENT_TRIGGERS.items()}


@dataclass(frozen=True)
class BacktestRun:
    """One run the definition would have started."""

    incident_id: str
    #: The incident's title as it was at the event.
    incident_title: str
    at: datetime
    event_id: int | None  # None for an age trigger (no event: time passed)
    event_type: str
    steps: list[DryStep]
    #: Whether its requests were rendered (the first ``sample`` runs are).
    sampled: bool

    @property
    def path(self) -> tuple[str, ...]:
        """The nodes it would run, in order (skipped ones left out)."""
        return tuple(step.name for step in self.steps if step.status != "skipped")


@dataclass
class Backtest:
    since: datetime
    until: datetime
    days: int
    trigger_type: str
    #: Events of the trigger's type in the window, in scope (or incidents, for age).
    considered: int = 0
    runs: list[BacktestRun] = field(default_factory=list)
    sample: int = DEFAULT_SAMPLE
    elapsed_ms: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def incidents(self) -> int:
        return len({run.incident_id for run in self.runs})

    def paths(self) -> list[tuple[tuple[str, ...], int]]:
        """Each distinct path and how many runs would take it, most common first."""
        counts: dict[tuple[str, ...], int] = {}
        for run in self.runs:
            counts[run.path] = counts.get(run.path, 0) + 1
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


# --- the incident as it was -------------------------------------------------------


@dataclass
class _State:
    title: str
    description: str
    priority: str
    status: str
    service: str | None
    metadata: dict[str, Any]
    escalation_level: int
    assignee: str | None  # the assignee's email, as events record it
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime | None = None  # the time of the last event applied

    def copy(self) -> _State:
        return _State(**self.__dict__)


_FIELDS = {
    "title": "title",
    "description": "description",
    "priority": "priority",
    "status": "status",
    "service": "service",
    "metadata": "metadata",
    "escalationLevel": "escalation_level",
    "assignee": "assignee",
}


@dataclass
class _History:
    """One incident's states after each of its events, oldest first."""

    incident: Incident
    team: TeamView
    times: list[datetime]
    event_ids: list[int]
    states: list[_State]
    changes: list[dict[str, Any]]
    position: dict[int, int] = field(default_factory=dict)  # event id -> index

    def __post_init__(self) -> None:
        self.position = {event_id: index for index, event_id in enumerate(self.event_ids)}

    def after_event(self, event_id: int) -> _State:
        return self.states[self.position[event_id]]

    def at(self, when: datetime) -> _State | None:
        """The state at ``when``: after the last event at or before it (None: not yet open)."""
        index = bisect_right(self.times, when) - 1
        return self.states[index] if index >= 0 else None


def _history(
    incident: Incident,
    team: TeamView,
    assignee_email: str | None,
    events: list[tuple[int, IncidentEventType, dict[str, Any], datetime]],
) -> _History:
    # Undo every change from the present back to the first event, then replay forwards.
    state = _State(
        title=incident.title,
        description=incident.description,
        priority=incident.priority.value,
        status=incident.status.value,
        service=incident.service,
        metadata=dict(incident.metadata_ or {}),
        escalation_level=incident.escalation_level,
        assignee=assignee_email,
        acknowledged_at=None,
        resolved_at=None,
    )
    for _id, type_, changes, _at in reversed(events):
        if type_ == IncidentEventType.INCIDENT_CREATED:
            continue  # nothing before it
        for key, change in changes.items():
            if key in _FIELDS and isinstance(change, dict):
                setattr(state, _FIELDS[key], change.get("from"))
    times: list[datetime] = []
    ids: list[int] = []
    states: list[_State] = []
    all_changes: list[dict[str, Any]] = []
    for event_id, type_, changes, at in events:
        for key, change in changes.items():
            if key in _FIELDS and isinstance(change, dict):
                setattr(state, _FIELDS[key], change.get("to"))
        state.updated_at = at
        if type_ == IncidentEventType.STATE_CHANGED:
            target = (changes.get("status") or {}).get("to")
            if target == IncidentStatus.ACKNOWLEDGED.value:
                state.acknowledged_at = at
            elif target == IncidentStatus.RESOLVED.value:
                state.resolved_at = at
            elif target == IncidentStatus.TRIGGERED.value:
                state.acknowledged_at = state.resolved_at = None
        times.append(at)
        ids.append(event_id)
        states.append(state.copy())
        all_changes.append(changes)
    return _History(incident, team, times, ids, states, all_changes)


def _view(history: _History, state: _State, people: dict[str, User]) -> IncidentView:
    """The incident as it was: the one incident mapping (incidents/view.py) of the incident
    today, with what its events recorded (as events record it: the assignee's e-mail, enum
    values as text) as it stood then."""
    user = people.get(state.assignee) if state.assignee else None
    fields = incident_view(history.incident)  # what no event changes: id, team, creation
    fields.update(
        title=state.title or "",
        description=state.description or "",
        priority=IncidentPriority(state.priority),
        status=IncidentStatus(state.status),
        service=state.service,
        metadata_=state.metadata,
        assignee_id=user.id if user is not None else None,
        escalation_level=int(state.escalation_level or 0),
        updated_at=state.updated_at,
        acknowledged_at=state.acknowledged_at,
        resolved_at=state.resolved_at,
    )
    return IncidentView.of(
        fields,
        team=history.team,
        assignee=(
            AssigneeView(user.id, user.email, user.first_name, user.last_name, user.phone)
            if user is not None
            else None
        ),
    )


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _histories(incident_ids: list[str]) -> dict[str, _History]:
    """Each incident with its whole event history, in a few statements."""
    incidents: dict[str, Incident] = {}
    for chunk in _chunks(incident_ids):
        for incident in db.session.scalars(sa.select(Incident).where(Incident.id.in_(chunk))):
            incidents[incident.id] = incident
    teams = {
        team.id: TeamView(team.id, team.name, team.chat_channel)
        for team in db.session.scalars(
            sa.select(Team).where(Team.id.in_({i.team_id for i in incidents.values()}))
        )
    }
    assignee_ids = {i.assignee_id for i in incidents.values() if i.assignee_id}
    events: dict[str, list[tuple[int, IncidentEventType, dict[str, Any], datetime]]] = {
        incident_id: [] for incident_id in incidents
    }
    for chunk in _chunks(list(incidents)):
        rows = db.session.execute(
            sa.select(
                IncidentEvent.incident_id,
                IncidentEvent.id,
                IncidentEvent.type,
                IncidentEvent.changes,
                IncidentEvent.created_at,
            )
            .where(IncidentEvent.incident_id.in_(chunk))
            .order_by(IncidentEvent.id)
        )
        for incident_id, event_id, type_, changes, at in rows:
            events[incident_id].append((event_id, type_, changes or {}, at))
    emails = {
        user.id: user.email
        for user in db.session.scalars(sa.select(User).where(User.id.in_(assignee_ids)))
    }
    return {
        incident_id: _history(
            incident,
            teams[incident.team_id],
            emails.get(incident.assignee_id or ""),
            events[incident_id],
        )
        for incident_id, incident in incidents.items()
    }


def _people(histories: dict[str, _History]) -> dict[str, User]:
    emails = {s.assignee for h in histories.values() for s in h.states if s.assignee}
    people: dict[str, User] = {}
    for chunk in _chunks(sorted(emails)):
        for user in db.session.scalars(sa.select(User).where(User.email.in_(chunk))):
            people[user.email] = user
    return people


# --- the backtest -------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    """What triggers.event_matches reads of an event."""

    id: int
    type: IncidentEventType
    changes: dict[str, Any]


def backtest(
    workflow: Workflow,
    definition: WorkflowDefinition,
    *,
    now: datetime,
    days: int = DEFAULT_DAYS,
    sample: int = DEFAULT_SAMPLE,
    clock: Any = time,
) -> Backtest:
    """What ``definition`` (as ``workflow``, its scope and secrets) would have done over
    the ``days`` before ``now``. Reads only; sends nothing. See the module docstring."""
    # Tens of thousands of small, acyclic objects: the cyclic collector would scan them
    # again and again (a third of the time at 10,000 events). It is off for the whole
    # process meanwhile (a few seconds at most) and collects as usual once back on.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _backtest(workflow, definition, now=now, days=days, sample=sample, clock=clock)
    finally:
        if collecting:
            gc.enable()


def _backtest(
    workflow: Workflow,
    definition: WorkflowDefinition,
    *,
    now: datetime,
    days: int = DEFAULT_DAYS,
    sample: int = DEFAULT_SAMPLE,
    clock: Any = time,
) -> Backtest:
    started = clock.monotonic()
    days = max(1, min(days, MAX_DAYS))
    sample = max(0, min(sample, MAX_SAMPLE))
    since = now - timedelta(days=days)
    trigger = definition.trigger
    trigger_type = TriggerType(trigger.type)
    result = Backtest(since=since, until=now, days=days, trigger_type=trigger_type.value)
    result.sample = sample
    # Matching reads the trigger as the event consumer does: from the stored JSON.
    candidate = triggers.Candidate(
        workflow.id, workflow.version, workflow.scope_type, workflow.team_id, definition.to_json()
    )
    in_scope = (
        Incident.team_id == workflow.team_id if workflow.scope_type == ScopeType.TEAM else sa.true()
    )
    matches: list[tuple[str, datetime, int | None, str]] = []  # incident, at, event, type
    histories: dict[str, _History] = {}
    if trigger_type == TriggerType.MANUAL:
        result.notes.append(
            "This workflow is started by hand: incident events never start it, so there is "
            "nothing to replay."
        )
    elif trigger_type == TriggerType.AGE:
        threshold = timedelta(minutes=trigger.age_threshold_minutes or 0)
        rows = db.session.execute(
            sa.select(Incident.id, Incident.created_at).where(
                Incident.created_at >= since - threshold,
                Incident.created_at <= now - threshold,
                in_scope,
            )
        ).all()
        result.considered = len(rows)
        histories = _histories([row.id for row in rows])
        for incident_id, created_at in rows:
            fires = created_at + threshold
            state = histories[incident_id].at(fires)
            if state is None or fires < since:
                continue
            view = _view(histories[incident_id], state, {})
            if view.status != IncidentStatus.RESOLVED and triggers.conditions_match(
                candidate.trigger, cast(Any, view)
            ):
                matches.append((incident_id, fires, None, "age"))
    else:
        event_type = _EVENT_TRIGGERS[trigger_type]
        # Ids only: the events' changes come with each incident's history.
        event_rows = db.session.execute(
            sa.select(IncidentEvent.id, IncidentEvent.incident_id)
            .join(Incident, Incident.id == IncidentEvent.incident_id)
            .where(IncidentEvent.type == event_type, IncidentEvent.created_at >= since, in_scope)
            .order_by(IncidentEvent.id)
        ).all()
        result.considered = len(event_rows)
        histories = _histories(sorted({row.incident_id for row in event_rows}))
        for event_id, incident_id in event_rows:
            history = histories[incident_id]
            found = history.position.get(event_id)
            if found is None:
                continue  # written after the history was read
            view = _view(history, history.states[found], {})
            event = _Event(event_id, event_type, history.changes[found])
            if triggers.event_matches(candidate, cast(Any, view), cast(Any, event)):
                matches.append((incident_id, history.times[found], event_id, event_type.value))

    people = _people(histories) if matches else {}
    secrets = secret_store.decrypt_for_request(workflow.id) if matches and sample else {}
    wants_previous = reads_previous(definition)
    matches.sort(key=lambda match: (match[1], match[2] or 0))
    limit = definition.settings.run_limit_minutes()
    if limit is not None:
        # "Once per incident (per N minutes)": the runs replayed here are what counts; runs
        # that really happened before the window are not looked at.
        kept: list[tuple[str, datetime, int | None, str]] = []
        last_run: dict[str, datetime] = {}
        for match in matches:
            before = last_run.get(match[0])
            if before is not None and (
                limit == float("inf") or match[1] - before < timedelta(minutes=limit)
            ):
                continue
            last_run[match[0]] = match[1]
            kept.append(match)
        result.notes.append(
            f"{len(matches) - len(kept)} more would have been held back by the workflow's "
            "runs-per-incident setting."
        )
        matches = kept
    for index, (incident_id, at, cause, kind) in enumerate(matches):
        history = histories[incident_id]
        state = history.at(at)
        assert state is not None
        view = _view(history, state, people)
        sampled = index < sample
        result.runs.append(
            BacktestRun(
                incident_id=incident_id,
                incident_title=view.title,
                at=at,
                event_id=cause,
                event_type=kind,
                steps=walk(
                    definition,
                    view,
                    workflow_id=workflow.id,
                    workflow_name=workflow.name,
                    secrets=secrets,
                    previous=(
                        previous_results(incident_id, before=at)
                        if sampled and wants_previous
                        else {}
                    ),
                    clock=clock,
                    render_actions=sampled,
                    incident_at=_later(history, at, view, people),
                ),
                sampled=sampled,
            )
        )
    result.elapsed_ms = int((clock.monotonic() - started) * 1000)
    return result


def _later(
    history: _History, at: datetime, view: IncidentView, people: dict[str, User]
) -> Callable[[int], IncidentView]:
    """The incident ``minutes`` after ``at`` (after a delay), as it was then."""

    def incident_at(minutes: int) -> IncidentView:
        if minutes == 0:
            return view
        state = history.at(at + timedelta(minutes=minutes))
        return view if state is None else _view(history, state, people)

    return incident_at


#: How many runs an answer lists (all are counted).
MAX_LISTED = 1_000


def to_json(result: Backtest) -> dict[str, Any]:
    """The backtest as the API answers it (camelCase)."""
    return {
        "since": result.since.isoformat(),
        "until": result.until.isoformat(),
        "days": result.days,
        "triggerType": result.trigger_type,
        "considered": result.considered,
        "matched": len(result.runs),
        "incidents": result.incidents,
        "sample": result.sample,
        "elapsedMs": result.elapsed_ms,
        "notes": list(result.notes),
        "paths": [{"path": list(path), "runs": count} for path, count in result.paths()],
        "runs": [
            {
                "incidentId": run.incident_id,
                "incidentTitle": run.incident_title,
                "at": run.at.isoformat(),
                "eventId": run.event_id,
                "eventType": run.event_type,
                "sampled": run.sampled,
                "path": list(run.path),
                "steps": [
                    {
                        "nodeId": step.node_id,
                        "name": step.name,
                        "kind": step.kind,
                        "status": step.status,
                        "detail": step.detail,
                    }
                    for step in run.steps
                ],
            }
            for run in result.runs[:MAX_LISTED]
        ],
    }
