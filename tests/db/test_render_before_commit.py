"""A page or fragment is built before the commit: when rendering it fails, the request
answers with an error having changed nothing (no 500 after a change)."""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.auth.tokens import create_token
from app.extensions import db
from app.workflows import service
from tests.builders import signed_in
from tests.factories import SIMPLE_DEFINITION

HX_CSRF = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')
HTMX = {"HX-Request": "true"}


class RenderBroken(Exception):
    """Raised by every template render once the request under test starts."""


@dataclass
class World:
    admin: FlaskClient
    member: FlaskClient
    team_id: str
    member_id: str
    other_id: str
    incident_id: str
    workflow_id: str
    token_id: str


@pytest.fixture
def world(app: Flask, make_user, make_team, make_incident) -> World:
    """An admin and a member of a team; an incident, a team workflow, an API token."""
    team = make_team("Payments")
    admin = make_user("admin@example.com", admin=True, teams=[team])
    member = make_user("mia@example.com", teams=[team])
    other = make_user("otto@example.com")
    incident = make_incident(team=team)
    workflow = service.create_workflow(
        member,
        name="Notify",
        description="Posts.",
        scope="team",
        team_id=team.id,
        definition=copy.deepcopy(SIMPLE_DEFINITION),
    )
    token, _ = create_token(admin, "monitoring")
    db.session.commit()
    return World(
        signed_in(app, admin.email),
        signed_in(app, member.email),
        team.id,
        member.id,
        other.id,
        incident.id,
        workflow.id,
        token.id,
    )


def _editor(w: World) -> str:
    return f"/workflows/{w.workflow_id}/edit"


# Editor forms carry the draft's revision and the node's origin: name -> where on the page.
REVISIONED = {
    "editor node": 'id="node-form"',
    "editor remove node": 'id="node-form"',
    "editor settings": 'id="settings-panel"',
}

# name -> (as admin?, the page to take the CSRF token from, action, form data, headers)
CASES: dict[str, tuple[bool, Callable[[World], str], Callable[[World], str], dict[str, str]]] = {
    "editor node": (
        False,
        lambda w: f"{_editor(w)}?node=notify",
        lambda w: f"{_editor(w)}/node",
        {
            "node_id": "notify",
            "op": "apply",
            "node-name": "Renamed",
            "node-url": "https://hooks.example.com/x",
            "node-method": "POST",
            "node-body": "{}",
            "node-auth_type": "none",
            "node-retry_attempts": "3",
            "node-retry_initial_delay_ms": "1000",
        },
    ),
    "editor add node": (
        False,
        _editor,
        lambda w: f"{_editor(w)}/nodes",
        {"add-kind": "delay", "add-after": "notify"},
    ),
    "editor remove node": (
        False,
        lambda w: f"{_editor(w)}?node=notify",
        lambda w: f"{_editor(w)}/nodes/remove",
        {"node_id": "notify", "confirm": "yes"},
    ),
    "editor settings": (
        False,
        _editor,
        lambda w: f"{_editor(w)}/settings",
        {
            "settings-name": "Renamed",
            "settings-description": "",
            "settings-timeout": "5min",
        },
    ),
    "workflow toggle": (
        False,
        lambda w: "/workflows",
        lambda w: f"/workflows/{w.workflow_id}/toggle",
        {"enabled": "1"},
    ),
    "workflow secret": (
        False,
        lambda w: f"/workflows/{w.workflow_id}/secrets",
        lambda w: f"/workflows/{w.workflow_id}/secrets",
        {"name": "tok", "value": "v"},
    ),
    "incident edit": (
        True,
        lambda w: f"/incidents/{w.incident_id}",
        lambda w: f"/incidents/{w.incident_id}/edit",
        {"title": "Renamed", "priority": "P3", "service": "api"},
    ),
    "incident acknowledge": (
        True,
        lambda w: f"/incidents/{w.incident_id}",
        lambda w: f"/incidents/{w.incident_id}/acknowledge",
        {},
    ),
    "admin new user": (
        True,
        lambda w: "/admin/users/new",
        lambda w: "/admin/users/new",
        {"email": "new@example.com", "first_name": "N", "last_name": "U"},
    ),
    "admin reset password": (
        True,
        lambda w: "/admin/users",
        lambda w: f"/admin/users/{w.member_id}/reset-password",
        {},
    ),
    "admin add member": (
        True,
        lambda w: f"/admin/teams/{w.team_id}",
        lambda w: f"/admin/teams/{w.team_id}/members",
        {"user_id": "OTHER"},
    ),
    "admin remove member": (
        True,
        lambda w: f"/admin/teams/{w.team_id}",
        lambda w: f"/admin/teams/{w.team_id}/members/{w.member_id}/remove",
        {},
    ),
    "profile new token": (
        True,
        lambda w: "/profile",
        lambda w: "/profile/tokens",
        {"name": "another"},
    ),
    "profile revoke token": (
        True,
        lambda w: "/profile",
        lambda w: f"/profile/tokens/{w.token_id}/revoke",
        {},
    ),
}


def _rows() -> dict[str, list[str]]:
    db.session.rollback()
    return {
        table.name: sorted(repr(tuple(row)) for row in db.session.execute(sa.select(table)))
        for table in db.metadata.sorted_tables
    }


def _post(world: World, name: str, monkeypatch: pytest.MonkeyPatch | None) -> Any:
    as_admin, page, action, data = CASES[name]
    client = world.admin if as_admin else world.member
    text = client.get(page(world)).text
    found = HX_CSRF.search(text)
    assert found is not None
    data = {k: (world.other_id if v == "OTHER" else v) for k, v in data.items()}
    if name in REVISIONED:  # an editor form posts the draft revision it was rendered from
        text = text[text.index(REVISIONED[name]) :]
        for hidden in ("revision", "origin"):
            value = re.search(rf'name="{hidden}" value="([^"]*)"', text)
            data[hidden] = html.unescape(value.group(1)) if value else ""
    if monkeypatch is not None:

        def broken(*args: Any, **kwargs: Any) -> str:
            raise RenderBroken

        monkeypatch.setattr("flask.templating._render", broken)
    return client.post(action(world), data={"csrf_token": found.group(1), **data}, headers=HTMX)


@pytest.mark.parametrize("name", list(CASES))
def test_a_change_whose_answer_fails_to_render_is_not_committed(
    app, world, name, monkeypatch
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the 500 handler runs
    before = _rows()
    response = _post(world, name, monkeypatch)
    assert response.status_code == 500
    after = _rows()
    assert {t for t in after if after[t] != before[t]} == set()


@pytest.mark.parametrize("name", list(CASES))
def test_the_same_change_is_committed_when_its_answer_renders(world, name) -> None:
    """The cases above would change data: their refusal is not a no-op by accident."""
    before = _rows()
    response = _post(world, name, None)
    assert response.status_code < 500
    assert _rows() != before
