"""Incident pages: list, filters, create, change, timeline, and access by team."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.incidents.models import Incident, IncidentEvent
from tests.conftest import csrf_token_from


def token(client, path: str = "/incidents") -> str:
    return csrf_token_from(client.get(path).text)


def event_types(incident_id: str) -> list[str]:
    return [
        e.value
        for e in db.session.scalars(
            sa.select(IncidentEvent.type)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
    ]


def test_list_shows_only_my_teams_newest_first(client, member, team, make_team, make_incident):
    make_incident(team=team, title="Older one")
    make_incident(team=team, title="Newer one")
    make_incident(team=make_team("Other"), title="Not mine")
    page = client.get("/incidents").text
    assert "Newer one" in page and "Older one" in page and "Not mine" not in page
    assert page.index("Newer one") < page.index("Older one")


def test_list_filters_and_search(client, member, team, make_incident):
    make_incident(team=team, title="Disk full on db-1", priority="P1", service="db")
    make_incident(
        team=team, title="Slow checkout", priority="P3", service="web", status="ACKNOWLEDGED"
    )
    assert "Slow checkout" not in client.get("/incidents?priority=P1").text
    assert "Disk full" not in client.get("/incidents?status=ACKNOWLEDGED").text
    assert "Slow checkout" not in client.get("/incidents?service=db").text
    found = client.get("/incidents?q=disk+FULL").text
    assert "Disk full" in found and "Slow checkout" not in found
    assert "No incidents match" in client.get("/incidents?q=%25_").text


def test_htmx_filtering_returns_only_the_list(client, member, team, make_incident):
    make_incident(team=team, title="Disk full")
    response = client.get(
        "/incidents?q=disk", headers={"HX-Request": "true", "HX-Target": "incident-list"}
    )
    assert "Disk full" in response.text and "<html" not in response.text
    assert "HX-Request" in response.headers["Vary"]


def test_list_is_paginated(client, member, team, make_incident):
    for n in range(30):
        make_incident(team=team, title=f"Incident number {n:02d}")
    first = client.get("/incidents").text
    assert "Page 1 of 2" in first and "Incident number 29" in first
    second = client.get("/incidents?page=2").text
    assert "Incident number 00" in second and "Incident number 29" not in second


def test_open_an_incident_through_the_form(client, member, team):
    csrf = token(client, "/incidents/new")
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": csrf,
            "title": "API 500s",
            "priority": "P1",
            "team_id": team.id,
            "service": "api",
            "metadata": '{"region": "eu"}',
            "assignee_id": member.id,
            "description": "",
        },
    )
    assert response.status_code == 303
    incident = db.session.scalar(sa.select(Incident))
    assert (incident.title, incident.priority, incident.metadata_) == (
        "API 500s",
        "P1",
        {"region": "eu"},
    )
    assert incident.assignee_id == member.id
    assert event_types(incident.id) == ["incident_created"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "This field must not be empty."),
        ("title", "x" * 201, "at most 200"),
        ("metadata", "[1, 2]", "must be a JSON object"),
        ("metadata", "{not json", "not valid JSON"),
        ("priority", "P9", "Not a valid choice"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_saved(
    client, member, team, field, value, message
):
    data = {
        "csrf_token": token(client, "/incidents/new"),
        "title": "ok",
        "priority": "P2",
        "team_id": team.id,
        "metadata": "",
        "assignee_id": "",
    }
    data[field] = value
    response = client.post("/incidents/new", data=data)
    assert response.status_code == 422
    error = re.search(rf'id="{field}-error"><p>([^<]*)', response.text)
    assert error and message in error.group(1), response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 0


def test_acknowledge_and_resolve_show_on_the_timeline(client, member, team, make_incident):
    incident = make_incident(team=team)
    for action in ("acknowledge", "resolve"):
        response = client.post(
            f"/incidents/{incident.id}/{action}", data={"csrf_token": token(client)}
        )
        assert response.status_code == 303
    page = re.sub(r"\s+", " ", client.get(f"/incidents/{incident.id}").text)
    assert event_types(incident.id) == ["state_changed", "state_changed"]
    timeline = page[page.index('data-testid="timeline"') :]
    assert '<span class="from">ACKNOWLEDGED</span> → <span class="to">RESOLVED</span>' in timeline
    assert "by Mia" in timeline


def test_htmx_actions_swap_the_detail_and_refuse_invalid_transitions(
    client, member, team, make_incident
):
    incident = make_incident(team=team, status="RESOLVED")
    headers = {"HX-Request": "true"}
    refused = client.post(
        f"/incidents/{incident.id}/acknowledge", data={"csrf_token": token(client)}, headers=headers
    )
    assert refused.status_code == 409
    assert "cannot be acknowledged. Reopen it first." in refused.text
    assert "<html" not in refused.text
    reopened = client.post(
        f"/incidents/{incident.id}/reopen", data={"csrf_token": token(client)}, headers=headers
    )
    assert reopened.status_code == 200 and "Triggered" in reopened.text
    assert event_types(incident.id) == ["state_changed"]


def test_escalate_raises_the_level(client, member, team, make_incident):
    incident = make_incident(team=team)
    client.post(f"/incidents/{incident.id}/escalate", data={"csrf_token": token(client)})
    page = client.get(f"/incidents/{incident.id}").text
    assert 'data-testid="escalation-level">1<' in page


def test_edit_details_records_each_change(client, member, team, make_incident):
    incident = make_incident(team=team, priority="P3", service="api")
    response = client.post(
        f"/incidents/{incident.id}/edit",
        data={
            "csrf_token": token(client),
            "title": incident.title,
            "description": "",
            "priority": "P1",
            "service": "db",
            "metadata": '{"k": "v"}',
            "assignee_id": member.id,
        },
    )
    assert response.status_code == 303
    assert sorted(event_types(incident.id)) == [
        "assignee_changed",
        "metadata_changed",
        "priority_changed",
        "service_changed",
    ]


def test_edit_with_bad_metadata_changes_nothing(client, member, team, make_incident):
    incident = make_incident(team=team, priority="P3")
    response = client.post(
        f"/incidents/{incident.id}/edit",
        data={
            "csrf_token": token(client),
            "title": incident.title,
            "priority": "P1",
            "metadata": '"just a string"',
            "assignee_id": "",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422 and "must be a JSON object" in response.text
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).priority == "P3"
    assert event_types(incident.id) == []


def test_another_teams_incident_is_not_found_anywhere(client, member, make_team, make_incident):
    theirs = make_incident(team=make_team("Theirs"))
    csrf = token(client)
    assert client.get(f"/incidents/{theirs.id}").status_code == 404
    for action in ("acknowledge", "resolve", "reopen", "escalate", "edit"):
        response = client.post(
            f"/incidents/{theirs.id}/{action}", data={"csrf_token": csrf, "title": "hijack"}
        )
        assert response.status_code == 404, action
    assert event_types(theirs.id) == []


def test_incident_pages_need_sign_in(client, make_incident):
    incident = make_incident()
    assert client.get("/incidents").status_code == 302
    assert client.get(f"/incidents/{incident.id}").status_code == 302
