"""The one path every incident change takes, from the web, the API or the system.

Each change and the incident event that records it are written in the same
transaction: the service flushes both and the caller commits. If the commit
never happens, neither exists; if it does, both do. The workflow engine reads
the events, so no change can be missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from app.auth.models import Team, TeamMembership, User
from app.auth.permissions import can_access_team, team_visible_clause
from app.db import utcnow
from app.engine import wake
from app.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from app.extensions import db
from app.incidents.enums import ChangeSource, IncidentEventType, IncidentPriority, IncidentStatus
from app.incidents.models import Incident, IncidentEvent
from app.incidents.schemas import IncidentCreate, IncidentUpdate

STALE_MESSAGE = "This incident was changed by someone else meanwhile. Reload it and try again."


@dataclass(frozen=True)
class Actor:
    """Who is making a change, and through which door."""

    user: User | None
    source: ChangeSource
    #: The workflow run making the change (an API request carrying its marker), if any.
    execution_id: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(None, ChangeSource.SYSTEM)


def visible_incidents(user: User) -> sa.Select[Incident]:
    return sa.select(Incident).where(team_visible_clause(user, Incident.team_id))


def search_incidents(
    user: User,
    *,
    team: str | None = None,
    status: IncidentStatus | None = None,
    priority: IncidentPriority | None = None,
    service: str | None = None,
    q: str | None = None,
) -> sa.Select[Incident]:
    """The incidents the user may see that match every filter given, newest first."""
    query = visible_incidents(user)
    if team:
        query = query.where(Incident.team_id == team)
    if status:
        query = query.where(Incident.status == status)
    if priority:
        query = query.where(Incident.priority == priority)
    if service:
        query = query.where(Incident.service == service.strip())
    if q and q.strip():
        escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Incident.title.ilike(f"%{escaped}%", escape="\\"))
    return query.options(
        sa.orm.selectinload(Incident.team), sa.orm.selectinload(Incident.assignee)
    ).order_by(Incident.created_at.desc(), Incident.id.desc())


def get_incident(user: User, incident_id: str, *, for_update: bool = False) -> Incident:
    """The incident if the user may see it; otherwise NotFound (never Forbidden)."""
    query = visible_incidents(user).where(Incident.id == incident_id)
    if for_update:
        # PostgreSQL serialises concurrent changes here; row_version catches the rest.
        query = query.with_for_update()
    incident = db.session.scalars(query).first()
    if incident is None:
        raise NotFound("No such incident.")
    return incident


def _record(
    actor: Actor, incident: Incident, type_: IncidentEventType, changes: dict[str, Any]
) -> IncidentEvent:
    return _add_event(actor, incident.id, type_, changes)


def _add_event(
    actor: Actor, incident_id: str, type_: IncidentEventType, changes: dict[str, Any]
) -> IncidentEvent:
    # By id, not through the relationship: appending to ``incident.events`` would
    # load the whole history and autoflush before the stale-row check below.
    with db.session.no_autoflush:
        event = IncidentEvent(
            incident_id=incident_id,
            type=type_,
            changes=changes,
            actor_id=actor.user.id if actor.user else None,
            source=actor.source,
            execution_id=actor.execution_id,
        )
        db.session.add(event)
        # Workers wake when this commits (and only if it does).
        wake.signal_work(db.session)
    return event


def record_engine_event(
    incident_id: str,
    type_: IncidentEventType,
    changes: dict[str, Any],
    execution_id: str | None = None,
) -> IncidentEvent:
    """A timeline entry written by the workflow engine (a run not started, a run failed)."""
    return _add_event(Actor(None, ChangeSource.SYSTEM, execution_id), incident_id, type_, changes)


def _flush() -> None:
    try:
        db.session.flush()
    except StaleDataError as error:
        raise Conflict(STALE_MESSAGE) from error


def _check_assignee(team_id: str, assignee_id: str | None, loc: str) -> None:
    if assignee_id is None:
        return
    member = db.session.scalar(
        sa.select(User)
        .join(TeamMembership, TeamMembership.user_id == User.id)
        .where(TeamMembership.team_id == team_id, User.id == assignee_id)
    )
    if member is None or not member.is_active:
        raise InvalidInput.at(loc, "The assignee must be an active member of the incident's team.")


def _resolve_team(actor: Actor, team_id: str | None) -> Team:
    user = actor.user
    if team_id is None:
        if user is not None and not user.is_admin and len(user.memberships) == 1:
            return user.memberships[0].team
        raise InvalidInput.at("teamId", "Choose the team this incident belongs to.")
    team = db.session.get(Team, team_id)
    if team is None:
        raise InvalidInput.at("teamId", "No such team.")
    if user is not None and not can_access_team(user, team.id):
        raise Forbidden(f"You can only open incidents for your own teams, not {team.name}.")
    return team


def create_incident(actor: Actor, data: IncidentCreate) -> Incident:
    team = _resolve_team(actor, data.team_id)
    _check_assignee(team.id, data.assignee_id, "assigneeId")
    incident = Incident(
        title=data.title,
        description=data.description,
        priority=data.priority,
        status=IncidentStatus.TRIGGERED,
        service=data.service,
        metadata_=data.metadata,
        team=team,  # the object, not just its id: the response reads it without a query
        assignee_id=data.assignee_id,
    )
    db.session.add(incident)
    db.session.flush()
    _record(
        actor,
        incident,
        IncidentEventType.INCIDENT_CREATED,
        {
            "title": {"from": None, "to": incident.title},
            "priority": {"from": None, "to": incident.priority.value},
            "status": {"from": None, "to": incident.status.value},
            "service": {"from": None, "to": incident.service},
            "team": {"from": None, "to": team.name},
            # Everything the incident was opened with, labelled as later changes are.
            "assignee": {"from": None, "to": _user_label(incident.assignee_id)},
            "description": {"from": None, "to": incident.description},
            "metadata": {"from": None, "to": incident.metadata_},
        },
    )
    _flush()
    return incident


# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[IncidentStatus], IncidentStatus]] = {
    "acknowledge": (frozenset({IncidentStatus.TRIGGERED}), IncidentStatus.ACKNOWLEDGED),
    "resolve": (
        frozenset({IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED}),
        IncidentStatus.RESOLVED,
    ),
    "reopen": (frozenset({IncidentStatus.RESOLVED}), IncidentStatus.TRIGGERED),
}

REFUSALS = {
    ("acknowledge", IncidentStatus.ACKNOWLEDGED): "This incident is already acknowledged.",
    ("acknowledge", IncidentStatus.RESOLVED): (
        "A resolved incident cannot be acknowledged. Reopen it first."
    ),
    ("resolve", IncidentStatus.RESOLVED): "This incident is already resolved.",
    ("reopen", IncidentStatus.TRIGGERED): "Only a resolved incident can be reopened.",
    ("reopen", IncidentStatus.ACKNOWLEDGED): "Only a resolved incident can be reopened.",
}


def allowed_actions(incident: Incident) -> list[str]:
    """The state changes that make sense now, for showing the right buttons."""
    actions = [name for name, (sources, _) in TRANSITIONS.items() if incident.status in sources]
    if incident.status != IncidentStatus.RESOLVED:
        actions.append("escalate")
    return actions


def change_status(actor: Actor, incident: Incident, action: str) -> IncidentEvent:
    """Acknowledge, resolve or reopen, refusing transitions that make no sense."""
    if action not in TRANSITIONS:
        raise InvalidInput.at("action", f"Unknown action {action!r}.")
    sources, target = TRANSITIONS[action]
    before = incident.status
    if before not in sources:
        raise InvalidTransition(REFUSALS[(action, before)])
    now = utcnow()
    incident.status = target
    if target == IncidentStatus.ACKNOWLEDGED:
        incident.acknowledged_at = now
    elif target == IncidentStatus.RESOLVED:
        incident.resolved_at = now
    else:  # reopened: a fresh start for acknowledgement and resolution
        incident.acknowledged_at = None
        incident.resolved_at = None
    event = _record(
        actor,
        incident,
        IncidentEventType.STATE_CHANGED,
        {"status": {"from": before.value, "to": target.value}},
    )
    _flush()
    return event


def escalate(actor: Actor, incident: Incident) -> IncidentEvent:
    if incident.status == IncidentStatus.RESOLVED:
        raise InvalidTransition("A resolved incident cannot be escalated. Reopen it first.")
    before = incident.escalation_level
    incident.escalation_level = before + 1
    event = _record(
        actor,
        incident,
        IncidentEventType.ESCALATION,
        {"escalationLevel": {"from": before, "to": before + 1}},
    )
    _flush()
    return event


def update_incident(actor: Actor, incident: Incident, data: IncidentUpdate) -> list[IncidentEvent]:
    """Apply the fields that were sent; one event per kind of change, none if nothing changed."""
    sent = data.model_fields_set
    events: list[IncidentEvent] = []

    def diff(field: str, attribute: str, new: Any) -> dict[str, Any] | None:
        old = getattr(incident, attribute)
        if field not in sent or old == new:
            return None
        setattr(incident, attribute, new)
        return {"from": _jsonable(old), "to": _jsonable(new)}

    details = {
        key: change
        for key, change in (
            ("title", diff("title", "title", data.title)),
            ("description", diff("description", "description", data.description)),
        )
        if change
    }
    if details:
        events.append(_record(actor, incident, IncidentEventType.DETAILS_CHANGED, details))
    if change := diff("priority", "priority", data.priority):
        events.append(
            _record(actor, incident, IncidentEventType.PRIORITY_CHANGED, {"priority": change})
        )
    if change := diff("service", "service", data.service or None):
        events.append(
            _record(actor, incident, IncidentEventType.SERVICE_CHANGED, {"service": change})
        )
    if change := diff("metadata", "metadata_", data.metadata):
        events.append(
            _record(actor, incident, IncidentEventType.METADATA_CHANGED, {"metadata": change})
        )
    if "assignee_id" in sent:
        _check_assignee(incident.team_id, data.assignee_id, "assigneeId")
        if change := diff("assignee_id", "assignee_id", data.assignee_id):
            change = {"from": _user_label(change["from"]), "to": _user_label(change["to"])}
            events.append(
                _record(actor, incident, IncidentEventType.ASSIGNEE_CHANGED, {"assignee": change})
            )
    _flush()
    return events


def _jsonable(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def _user_label(user_id: str | None) -> str | None:
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    return user.email if user else None
