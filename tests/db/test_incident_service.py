"""The incident service: every change and its event, together or not at all."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from app.extensions import db
from app.incidents import service
from app.incidents.enums import ChangeSource, IncidentEventType, IncidentStatus
from app.incidents.models import Incident, IncidentEvent
from app.incidents.schemas import IncidentCreate, IncidentUpdate


@pytest.fixture
def member(make_user, team):
    """A member of that team, acting through the web."""
    return make_user("member@example.com", teams=[team])


def actor_for(user) -> service.Actor:
    return service.Actor(user, ChangeSource.WEB)


def events_of(incident: Incident) -> list[IncidentEvent]:
    return list(
        db.session.scalars(
            sa.select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id)
            .order_by(IncidentEvent.id)
        )
    )


def open_incident(user, team, **fields) -> Incident:
    incident = service.create_incident(
        actor_for(user),
        IncidentCreate(title=fields.pop("title", "DB down"), team_id=team.id, **fields),
    )
    db.session.commit()
    return incident


def test_creating_an_incident_records_incident_created(member, team) -> None:
    incident = open_incident(member, team, priority="P1", service="db", metadata={"a": 1})
    (event,) = events_of(incident)
    assert event.type == IncidentEventType.INCIDENT_CREATED
    assert event.actor_id == member.id and event.source == ChangeSource.WEB
    assert event.changes["priority"] == {"from": None, "to": "P1"}
    assert event.changes["status"] == {"from": None, "to": "TRIGGERED"}
    assert incident.metadata_ == {"a": 1}


def test_a_member_of_one_team_may_leave_the_team_out(member, team) -> None:
    incident = service.create_incident(actor_for(member), IncidentCreate(title="x"))
    assert incident.team_id == team.id


def test_creating_in_someone_elses_team_is_forbidden(member, make_team) -> None:
    other = make_team("Other")
    with pytest.raises(Forbidden):
        service.create_incident(actor_for(member), IncidentCreate(title="x", team_id=other.id))
    with pytest.raises(InvalidInput):
        service.create_incident(actor_for(member), IncidentCreate(title="x", team_id="nope"))


def test_assignee_must_be_an_active_member_of_the_team(member, team, make_user) -> None:
    outsider = make_user("outsider@example.com")
    with pytest.raises(InvalidInput) as error:
        service.create_incident(
            actor_for(member), IncidentCreate(title="x", team_id=team.id, assignee_id=outsider.id)
        )
    assert error.value.problems[0].loc == "assigneeId"


@pytest.mark.parametrize(
    ("actions", "statuses"),
    [
        (["acknowledge", "resolve", "reopen"], ["ACKNOWLEDGED", "RESOLVED", "TRIGGERED"]),
        (["resolve", "reopen", "acknowledge"], ["RESOLVED", "TRIGGERED", "ACKNOWLEDGED"]),
    ],
)
def test_state_changes_record_from_and_to(member, team, actions, statuses) -> None:
    incident = open_incident(member, team)
    previous = "TRIGGERED"
    for action, status in zip(actions, statuses, strict=True):
        event = service.change_status(actor_for(member), incident, action)
        db.session.commit()
        assert incident.status == status
        assert event.type == IncidentEventType.STATE_CHANGED
        assert event.changes == {"status": {"from": previous, "to": status}}
        previous = status
    assert len(events_of(incident)) == 1 + len(actions)


def test_timestamps_follow_the_state(member, team) -> None:
    incident = open_incident(member, team)
    service.change_status(actor_for(member), incident, "acknowledge")
    assert incident.acknowledged_at is not None and incident.resolved_at is None
    service.change_status(actor_for(member), incident, "resolve")
    assert incident.resolved_at is not None
    service.change_status(actor_for(member), incident, "reopen")
    assert incident.acknowledged_at is None and incident.resolved_at is None


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        (["resolve"], "resolve", "already resolved"),
        (["resolve"], "acknowledge", "Reopen it first"),
        (["acknowledge"], "acknowledge", "already acknowledged"),
        ([], "reopen", "Only a resolved incident"),
    ],
)
def test_invalid_transitions_are_refused_and_change_nothing(
    member, team, setup, action, message
) -> None:
    incident = open_incident(member, team)
    for step in setup:
        service.change_status(actor_for(member), incident, step)
    db.session.commit()
    before = (incident.status, len(events_of(incident)))
    with pytest.raises(InvalidTransition, match=message):
        service.change_status(actor_for(member), incident, action)
    db.session.rollback()
    assert (db.session.get(Incident, incident.id).status, len(events_of(incident))) == before


def test_escalation_raises_the_level_and_is_refused_once_resolved(member, team) -> None:
    incident = open_incident(member, team)
    event = service.escalate(actor_for(member), incident)
    service.escalate(actor_for(member), incident)
    db.session.commit()
    assert incident.escalation_level == 2
    assert event.type == IncidentEventType.ESCALATION
    assert event.changes == {"escalationLevel": {"from": 0, "to": 1}}
    service.change_status(actor_for(member), incident, "resolve")
    with pytest.raises(InvalidTransition):
        service.escalate(actor_for(member), incident)


def test_updates_record_one_event_per_kind_of_change(member, team, make_user) -> None:
    colleague = make_user("colleague@example.com", teams=[team])
    incident = open_incident(member, team, priority="P3", service="api")
    events = service.update_incident(
        actor_for(member),
        incident,
        IncidentUpdate(
            title="DB down in eu",
            priority="P1",
            service="db",
            metadata={"region": "eu"},
            assignee_id=colleague.id,
        ),
    )
    db.session.commit()
    by_type = {e.type: e.changes for e in events}
    assert by_type == {
        IncidentEventType.DETAILS_CHANGED: {"title": {"from": "DB down", "to": "DB down in eu"}},
        IncidentEventType.PRIORITY_CHANGED: {"priority": {"from": "P3", "to": "P1"}},
        IncidentEventType.SERVICE_CHANGED: {"service": {"from": "api", "to": "db"}},
        IncidentEventType.METADATA_CHANGED: {"metadata": {"from": {}, "to": {"region": "eu"}}},
        IncidentEventType.ASSIGNEE_CHANGED: {
            "assignee": {"from": None, "to": "colleague@example.com"}
        },
    }


def test_an_update_that_changes_nothing_records_nothing(member, team) -> None:
    incident = open_incident(member, team, priority="P2")
    assert service.update_incident(actor_for(member), incident, IncidentUpdate(priority="P2")) == []
    assert service.update_incident(actor_for(member), incident, IncidentUpdate()) == []
    assert len(events_of(incident)) == 1


def test_other_teams_incidents_are_not_found(member, make_team, make_incident, make_user) -> None:
    theirs = make_incident(team=make_team("Theirs"))
    with pytest.raises(NotFound):
        service.get_incident(member, theirs.id)
    admin = make_user(admin=True)
    assert service.get_incident(admin, theirs.id).id == theirs.id


def test_a_change_based_on_a_stale_read_is_refused(app, member, team) -> None:
    incident = open_incident(member, team)
    db.session.refresh(incident)  # read, as a request would
    # Someone else acknowledges it behind this session's back.
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(Incident)
            .where(Incident.id == incident.id)
            .values(status=IncidentStatus.ACKNOWLEDGED, row_version=Incident.row_version + 1)
        )
    with pytest.raises(Conflict, match="changed by someone else"):
        service.escalate(actor_for(member), incident)
    db.session.rollback()
    assert len(events_of(incident)) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"title": "ok", "priority": "P9"},
        {"title": "ok", "metadata": ["not", "an", "object"]},
        {"title": "ok", "metadata": "text"},
        {"title": "ok", "status": "RESOLVED"},
        {"title": "ok", "unknown": 1},
        {"title": "ok", "metadata": {f"k{i}": i for i in range(51)}},
    ],
)
def test_bad_input_is_refused_by_the_schema(bad) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        IncidentCreate.model_validate(bad)
