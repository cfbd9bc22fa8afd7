"""Sweeps over every route: CSRF on every state change, and no access across teams.

New routes are covered automatically; a route with an argument the sweep does
not know fails here until it is added to ``ID_ARGUMENTS`` (so nobody forgets).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask

from app.auth.models import ApiToken
from app.auth.tokens import create_token
from app.extensions import db
from app.incidents.models import Incident, IncidentEvent

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Arguments that name an object, and how a member of another team must see them.
ID_ARGUMENTS = {
    "incident_id",
    "id",
    "token_id",
    "team_id",
    "user_id",
    "execution_id",
    "workflow_id",
}
ADMIN_PREFIX = "/admin/"
API_PREFIX = "/api/v1/"
NON_ID_ARGUMENTS = {
    "action": "acknowledge",
    "filename": "css/app.css",
    "number": "1",
    "name": "hook_token",
}


def rules(app: Flask, methods: set[str]) -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & methods):
            unknown = set(rule.arguments) - ID_ARGUMENTS - set(NON_ID_ARGUMENTS)
            assert not unknown, f"{rule.rule}: teach the sweep about {unknown}"
            found.append((method, rule.rule, rule.endpoint))
    assert found
    return found


def url_for_rule(rule: str, values: dict[str, str]) -> str:
    known = {**NON_ID_ARGUMENTS, **values}
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: known[m.group(1)], rule)


@pytest.fixture
def world(make_user, make_team, make_incident, make_workflow, make_execution):
    """Two teams; a member of the first; objects of the second."""
    mine, theirs = make_team("Mine"), make_team("Theirs")
    member = make_user("member@example.com", teams=[mine])
    stranger = make_user("stranger@example.com", teams=[theirs])
    incident = make_incident(team=theirs)
    token, _ = create_token(stranger, "theirs")
    workflow = make_workflow(team=theirs)
    execution = make_execution(workflow, incident)
    db.session.commit()
    return {
        "member": member,
        "stranger": stranger,
        "incident": incident,
        "token": token,
        "theirs": theirs,
        "workflow": workflow,
        "execution": execution,
    }


def test_every_state_changing_route_refuses_a_request_without_csrf_token(
    app, client, sign_in, make_user, world
) -> None:
    admin = make_user("admin@example.com", admin=True)
    sign_in(admin.email)
    values = {
        "incident_id": world["incident"].id,
        "id": world["incident"].id,
        "token_id": world["token"].id,
        "team_id": world["theirs"].id,
        "user_id": world["stranger"].id,
        "workflow_id": world["workflow"].id,
        "execution_id": world["execution"].id,
    }
    before = db.session.scalar(sa.select(sa.func.count()).select_from(IncidentEvent))
    for method, rule, _endpoint in rules(app, STATE_CHANGING):
        response = client.open(
            url_for_rule(rule, values), method=method, data={"title": "x", "name": "x"}
        )
        if rule.startswith(API_PREFIX):
            # The API ignores the session cookie: no bearer token, no entry.
            assert response.status_code == 401, (method, rule)
        else:
            assert response.status_code == 400, (method, rule, response.status_code)
            assert "CSRF" in response.text, (method, rule)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IncidentEvent)) == before
    assert db.session.get(ApiToken, world["token"].id).revoked_at is None


def test_every_id_taking_route_hides_other_teams_objects(app, client, sign_in, world) -> None:
    sign_in(world["member"].email)
    page = client.get("/incidents")
    from tests.conftest import csrf_token_from

    csrf = csrf_token_from(page.text)
    _, api_token = create_token(world["member"], "sweep")
    db.session.commit()
    values = {
        "incident_id": world["incident"].id,
        "id": world["incident"].id,
        "token_id": world["token"].id,
        "team_id": world["theirs"].id,
        "user_id": world["stranger"].id,
        "workflow_id": world["workflow"].id,
        "execution_id": world["execution"].id,
    }
    checked = 0
    for method, rule, _endpoint in rules(app, {"GET", *STATE_CHANGING}):
        if not (set(values) & set(_arguments(app, rule))):
            continue
        url = url_for_rule(rule, values)
        if rule.startswith(API_PREFIX):
            response = client.open(
                url, method=method, json={}, headers={"Authorization": f"Bearer {api_token}"}
            )
        else:
            response = client.open(url, method=method, data={"csrf_token": csrf, "title": "x"})
        expected = 403 if rule.startswith(ADMIN_PREFIX) else 404  # admin pages: role, not team
        assert response.status_code == expected, (method, rule, response.status_code)
        checked += 1
    assert checked >= 12
    db.session.expire_all()
    assert db.session.get(Incident, world["incident"].id).title != "x"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IncidentEvent)) == 0
    assert db.session.get(ApiToken, world["token"].id).revoked_at is None


def _arguments(app: Flask, rule_text: str) -> set[str]:
    for rule in app.url_map.iter_rules():
        if rule.rule == rule_text:
            return set(rule.arguments)
    return set()
