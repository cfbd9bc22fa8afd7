"""Incident operations that succeed: what they answer and exactly which events they write."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.incidents.models import Incident

from .conftest import committed_events

INCIDENTS = "/api/v1/incidents"


@pytest.fixture
def team(make_team):
    """The team the API user belongs to."""
    return make_team("Payments")


@pytest.fixture
def member(make_user, team):
    """A member of ``team`` only."""
    return make_user("oncall@example.com", teams=[team], first_name="Ada", last_name="Lovelace")


@pytest.fixture
def api(api_as, member):
    """An API client for ``member``."""
    return api_as(member)


def test_create_answers_201_with_location_and_writes_one_created_event(
    api, team, member, assert_documented
) -> None:
    response = api.post(
        INCIDENTS,
        json={
            "title": "Checkout is down",
            "description": "5xx on /pay",
            "priority": "P1",
            "service": "checkout",
            "metadata": {"region": "eu-west-1", "hosts": ["a", "b"]},
            "teamId": team.id,
            "assigneeId": member.id,
        },
    )
    assert response.status_code == 201, response.get_json()
    assert_documented(response, "POST", "/incidents")
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/incidents/{body['id']}"
    assert body["title"] == "Checkout is down"
    assert body["description"] == "5xx on /pay"
    assert body["priority"] == "P1"
    assert body["status"] == "TRIGGERED"
    assert body["service"] == "checkout"
    assert body["metadata"] == {"region": "eu-west-1", "hosts": ["a", "b"]}
    assert body["team"] == {"id": team.id, "name": "Payments"}
    assert body["assignee"] == {"id": member.id, "email": member.email, "name": "Ada Lovelace"}
    assert body["escalationLevel"] == 0
    assert body["acknowledgedAt"] is None and body["resolvedAt"] is None

    assert api.get(response.headers["Location"]).get_json() == body
    assert committed_events(body["id"]) == [
        {
            "type": "incident_created",
            "changes": {
                "title": {"from": None, "to": "Checkout is down"},
                "priority": {"from": None, "to": "P1"},
                "status": {"from": None, "to": "TRIGGERED"},
                "service": {"from": None, "to": "checkout"},
                "team": {"from": None, "to": "Payments"},
                "assignee": {"from": None, "to": member.email},
                "description": {"from": None, "to": "5xx on /pay"},
                "metadata": {"from": None, "to": {"region": "eu-west-1", "hosts": ["a", "b"]}},
            },
            "source": "api",
            "actor_id": member.id,
        }
    ]


def test_create_without_team_uses_the_members_only_team(api, team) -> None:
    response = api.post(INCIDENTS, json={"title": "Disk full"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["team"]["id"] == team.id
    assert body["priority"] == "P3"
    assert body["metadata"] == {}
    assert [e["type"] for e in committed_events(body["id"])] == ["incident_created"]


def test_get_returns_the_incident(api, team, make_incident, assert_documented) -> None:
    incident = make_incident(
        team=team, title="Latency", service="search", metadata_={"p99": 1.5}, escalation_level=2
    )
    response = api.get(f"{INCIDENTS}/{incident.id}")
    assert response.status_code == 200
    assert_documented(response, "GET", "/incidents/{id}")
    body = response.get_json()
    assert body["id"] == incident.id
    assert body["title"] == "Latency"
    assert body["service"] == "search"
    assert body["metadata"] == {"p99": 1.5}
    assert body["escalationLevel"] == 2
    assert body["assignee"] is None
    assert body["createdAt"].endswith("Z")  # UTC


@pytest.mark.parametrize(
    ("action", "start", "expected_status", "changes"),
    [
        (
            "acknowledge",
            IncidentStatus.TRIGGERED,
            "ACKNOWLEDGED",
            {"status": {"from": "TRIGGERED", "to": "ACKNOWLEDGED"}},
        ),
        (
            "resolve",
            IncidentStatus.ACKNOWLEDGED,
            "RESOLVED",
            {"status": {"from": "ACKNOWLEDGED", "to": "RESOLVED"}},
        ),
        (
            "resolve",
            IncidentStatus.TRIGGERED,
            "RESOLVED",
            {"status": {"from": "TRIGGERED", "to": "RESOLVED"}},
        ),
        (
            "reopen",
            IncidentStatus.RESOLVED,
            "TRIGGERED",
            {"status": {"from": "RESOLVED", "to": "TRIGGERED"}},
        ),
    ],
)
def test_status_changes_answer_the_incident_and_write_one_state_changed_event(
    api, team, member, make_incident, assert_documented, action, start, expected_status, changes
) -> None:
    incident = make_incident(team=team, status=start)
    response = api.post(f"{INCIDENTS}/{incident.id}/{action}")
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "POST", f"/incidents/{{id}}/{action}")
    body = response.get_json()
    assert body["status"] == expected_status
    assert (body["acknowledgedAt"] is not None) == (expected_status == "ACKNOWLEDGED")
    assert (body["resolvedAt"] is not None) == (expected_status == "RESOLVED")
    assert committed_events(incident.id) == [
        {"type": "state_changed", "changes": changes, "source": "api", "actor_id": member.id}
    ]
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).status == IncidentStatus(expected_status)


def test_escalate_raises_the_level_and_writes_one_escalation_event(
    api, team, member, make_incident, assert_documented
) -> None:
    incident = make_incident(team=team, escalation_level=1)
    response = api.post(f"{INCIDENTS}/{incident.id}/escalate")
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "POST", "/incidents/{id}/escalate")
    assert response.get_json()["escalationLevel"] == 2
    assert committed_events(incident.id) == [
        {
            "type": "escalation",
            "changes": {"escalationLevel": {"from": 1, "to": 2}},
            "source": "api",
            "actor_id": member.id,
        }
    ]


def test_patch_changes_only_the_fields_sent_with_one_event_per_kind(
    api, team, member, make_incident, assert_documented
) -> None:
    incident = make_incident(
        team=team,
        title="Old title",
        description="Keep me",
        priority=IncidentPriority.P3,
        service="api",
        metadata_={"a": 1},
    )
    response = api.patch(
        f"{INCIDENTS}/{incident.id}",
        json={"title": "New title", "priority": "P1", "metadata": {"a": 2}},
    )
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "PATCH", "/incidents/{id}")
    body = response.get_json()
    assert (body["title"], body["priority"], body["metadata"]) == ("New title", "P1", {"a": 2})
    assert (body["description"], body["service"]) == ("Keep me", "api")
    common = {"source": "api", "actor_id": member.id}
    assert committed_events(incident.id) == [
        {"type": "details_changed", "changes": {"title": {"from": "Old title", "to": "New title"}}}
        | common,
        {"type": "priority_changed", "changes": {"priority": {"from": "P3", "to": "P1"}}} | common,
        {"type": "metadata_changed", "changes": {"metadata": {"from": {"a": 1}, "to": {"a": 2}}}}
        | common,
    ]


def test_patch_assigns_a_team_member(api, team, member, make_incident) -> None:
    incident = make_incident(team=team)
    response = api.patch(f"{INCIDENTS}/{incident.id}", json={"assigneeId": member.id})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["assignee"]["id"] == member.id
    assert committed_events(incident.id) == [
        {
            "type": "assignee_changed",
            "changes": {"assignee": {"from": None, "to": member.email}},
            "source": "api",
            "actor_id": member.id,
        }
    ]


def test_patch_with_nothing_different_writes_no_event(api, team, make_incident) -> None:
    incident = make_incident(team=team, title="Same")
    response = api.patch(f"{INCIDENTS}/{incident.id}", json={"title": "Same"})
    assert response.status_code == 200
    assert committed_events(incident.id) == []


def test_events_are_the_timeline_oldest_first(api, team, member, assert_documented) -> None:
    incident_id = api.post(INCIDENTS, json={"title": "Flapping"}).get_json()["id"]
    for action in ("acknowledge", "escalate", "resolve"):
        assert api.post(f"{INCIDENTS}/{incident_id}/{action}").status_code == 200
    response = api.get(f"{INCIDENTS}/{incident_id}/events")
    assert response.status_code == 200
    assert_documented(response, "GET", "/incidents/{id}/events")
    items = response.get_json()["items"]
    assert [item["type"] for item in items] == [
        "incident_created",
        "state_changed",
        "escalation",
        "state_changed",
    ]
    assert [item["id"] for item in items] == sorted(item["id"] for item in items)
    assert items[-1]["changes"] == {"status": {"from": "ACKNOWLEDGED", "to": "RESOLVED"}}
    assert {item["source"] for item in items} == {"api"}
    assert items[0]["actor"] == {"id": member.id, "email": member.email, "name": "Ada Lovelace"}


def test_an_admin_may_change_any_teams_incident(api_as, make_user, make_incident) -> None:
    incident = make_incident()  # in a team the admin is not a member of
    admin = make_user(admin=True)
    response = api_as(admin).post(f"{INCIDENTS}/{incident.id}/acknowledge")
    assert response.status_code == 200
    assert committed_events(incident.id)[0]["actor_id"] == admin.id
