"""A NUL typed into any page form's text field: 422 with the error at that field, the form
shown again, nothing stored. (A lone surrogate cannot arrive in a form: it is not UTF-8,
and Werkzeug drops such a body; in JSON typed into a field it is refused at the field,
see test_input_policy_pages.py.)"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.models import Workflow
from tests.builders import signed_in
from tests.conftest import csrf_token_from
from tests.factories import SIMPLE_DEFINITION

NUL = "a\x00b"
HX_CSRF = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')


@dataclass
class World:
    app: Flask
    admin_client: FlaskClient
    member_client: FlaskClient
    team_id: str
    incident_id: str
    workflow_id: str
    template_id: str
    member_id: str


@pytest.fixture
def world(app, make_user, make_team, make_incident) -> World:
    """An admin and a member of a team with an incident, a team workflow and a template."""
    team = make_team("Payments")
    admin = make_user("admin@example.com", admin=True, teams=[team])
    member = make_user("mia@example.com", teams=[team])
    incident = make_incident(team=team)
    workflow = service.create_workflow(
        member,
        name="Notify",
        description="Posts.",
        scope="team",
        team_id=team.id,
        definition=copy.deepcopy(SIMPLE_DEFINITION),
    )
    db.session.commit()
    template = service.save_as_template(admin, workflow, "Communication", name="A template")
    db.session.commit()
    return World(
        app,
        signed_in(app, admin.email),
        signed_in(app, member.email),
        team.id,
        incident.id,
        workflow.id,
        template.id,
        member.id,
    )


@dataclass
class Case:
    """A form: the page it is on, where it posts, valid data, and the text field to spoil."""

    page: Callable[[World], str]
    action: Callable[[World], str]
    data: Callable[[World], dict[str, str]]
    field: str  # the input's name
    error_id: str  # the id of the error shown at the field
    admin: bool = True
    htmx: bool = False


def _editor(path: str) -> Callable[[World], str]:
    return lambda w: f"/workflows/{w.workflow_id}/edit{path}"


CASES: dict[str, Case] = {
    "incident new": Case(
        lambda w: "/incidents/new",
        lambda w: "/incidents/new",
        lambda w: {
            "title": "t",
            "priority": "P3",
            "team_id": w.team_id,
            "assignee_id": "",
            "metadata": "",
        },
        "description",
        "description-error",
    ),
    "incident edit": Case(
        lambda w: f"/incidents/{w.incident_id}",
        lambda w: f"/incidents/{w.incident_id}/edit",
        lambda w: {"title": "t", "priority": "P3", "service": "api"},
        "title",
        "title-error",
    ),
    "incident edit (htmx)": Case(
        lambda w: f"/incidents/{w.incident_id}",
        lambda w: f"/incidents/{w.incident_id}/edit",
        lambda w: {"title": "t", "priority": "P3", "service": "api"},
        "service",
        "service-error",
        htmx=True,
    ),
    "workflow new": Case(
        lambda w: "/workflows/new",
        lambda w: "/workflows/new",
        lambda w: {"name": "n", "description": "d", "owner": "global"},
        "name",
        "name-error",
    ),
    "workflow import": Case(
        lambda w: "/workflows/import",
        lambda w: "/workflows/import",
        lambda w: {"owner": "global", "text": "{}"},
        "text",
        "text-error",
    ),
    "workflow duplicate": Case(
        lambda w: "/workflows",
        lambda w: f"/workflows/{w.workflow_id}/duplicate",
        lambda w: {"name": "Copy", "owner": "global"},
        "name",
        "name-error",
    ),
    "workflow secret": Case(
        lambda w: f"/workflows/{w.workflow_id}/secrets",
        lambda w: f"/workflows/{w.workflow_id}/secrets",
        lambda w: {"name": "tok", "value": "v"},
        "value",
        "value-error",
    ),
    "save as template": Case(
        lambda w: f"/workflows/{w.workflow_id}/save-as-template",
        lambda w: f"/workflows/{w.workflow_id}/save-as-template",
        lambda w: {"name": "T", "category": "Communication"},
        "name",
        "name-error",
    ),
    "template edit": Case(
        lambda w: f"/workflows/templates/{w.template_id}/edit",
        lambda w: f"/workflows/templates/{w.template_id}/edit",
        lambda w: {"name": "T", "description": "d", "category": "Communication"},
        "description",
        "description-error",
    ),
    "template use": Case(
        lambda w: f"/workflows/templates/{w.template_id}/use",
        lambda w: f"/workflows/templates/{w.template_id}/use",
        lambda w: {"name": "From template", "owner": "global"},
        "name",
        "name-error",
    ),
    "editor node": Case(
        _editor("?node=notify"),
        _editor("/node"),
        lambda w: {
            "node_id": "notify",
            "op": "apply",
            "node-name": "Notify",
            "node-url": "https://hooks.example.com/x",
            "node-method": "POST",
            "node-body": "{}",
            "node-auth_type": "none",
            "node-retry_attempts": "3",
            "node-retry_initial_delay_ms": "1000",
        },
        "node-url",
        "node-url-error",
        admin=False,
        htmx=True,
    ),
    "editor node (plain)": Case(
        _editor("?node=notify"),
        _editor("/node"),
        lambda w: {
            "node_id": "notify",
            "op": "apply",
            "node-name": "Notify",
            "node-url": "https://hooks.example.com/x",
            "node-method": "POST",
            "node-body": "{}",
            "node-auth_type": "none",
            "node-retry_attempts": "3",
            "node-retry_initial_delay_ms": "1000",
        },
        "node-body",
        "node-body-error",
        admin=False,
    ),
    "editor settings": Case(
        _editor(""),
        _editor("/settings"),
        lambda w: {"settings-name": "N", "settings-description": "", "settings-timeout": "5min"},
        "settings-name",
        "settings-name-error",
        admin=False,
        htmx=True,
    ),
    "editor save": Case(
        _editor(""),
        _editor("/save"),
        lambda w: {"save-change_note": "note"},
        "save-change_note",
        "save-change_note-error",
        admin=False,
        htmx=True,
    ),
    "admin new user": Case(
        lambda w: "/admin/users/new",
        lambda w: "/admin/users/new",
        lambda w: {"email": "new@example.com", "first_name": "N", "last_name": "U"},
        "last_name",
        "last_name-error",
    ),
    "admin new team": Case(
        lambda w: "/admin/teams/new",
        lambda w: "/admin/teams/new",
        lambda w: {"name": "Ops", "chat_channel": "#ops"},
        "name",
        "name-error",
    ),
    "profile password": Case(
        lambda w: "/profile",
        lambda w: "/profile/password",
        lambda w: {
            "current_password": "correct horse battery",
            "new_password": "a much longer passphrase",
            "confirm_password": "a much longer passphrase",
        },
        "new_password",
        "new_password-error",
    ),
    "profile token": Case(
        lambda w: "/profile",
        lambda w: "/profile/tokens",
        lambda w: {"name": "monitoring"},
        "name",
        "name-error",
    ),
}


def _rows() -> dict[str, list[Any]]:
    """Every row of every table: what a refused request must leave as it was."""
    db.session.rollback()
    found: dict[str, list[Any]] = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(sa.select(table)).all()
        found[table.name] = sorted(repr(tuple(row)) for row in rows)
    return found


def _post(world: World, case: Case, data: dict[str, str]) -> Any:
    client = world.admin_client if case.admin else world.member_client
    page = client.get(case.page(world))
    assert page.status_code == 200, page.status_code
    match = HX_CSRF.search(page.text)
    assert match is not None
    headers = {"HX-Request": "true"} if case.htmx else {}
    return client.post(
        case.action(world), data={"csrf_token": match.group(1), **data}, headers=headers
    )


@pytest.mark.parametrize("name", list(CASES))
def test_a_nul_in_a_text_field_is_422_at_that_field_and_stores_nothing(world, name) -> None:
    case = CASES[name]
    before = _rows()
    response = _post(world, case, {**case.data(world), case.field: NUL})
    assert response.status_code == 422, response.text[:500]
    error = re.search(rf'id="{re.escape(case.error_id)}">(.*?)</div>', response.text, re.S)
    assert error is not None, f"no error at {case.field}"
    assert "must not contain NUL characters" in error.group(1)
    assert _rows() == before


@pytest.mark.parametrize("name", ["incident new", "workflow new", "admin new team"])
def test_the_same_forms_accept_the_same_data_without_the_nul(world, name) -> None:
    """The cases above fail for the NUL alone: the rest of their data is accepted."""
    case = CASES[name]
    before = _rows()
    response = _post(world, case, {**case.data(world), case.field: "ab"})
    assert response.status_code in (200, 204, 303), re.findall(
        r'class="error.*?</div>', response.text, re.S
    )
    assert _rows() != before


def test_a_nul_in_the_sign_in_form_is_at_its_field(client, make_user) -> None:
    make_user("known@example.com")
    page = client.get("/sign-in")
    before = _rows()
    response = client.post(
        "/sign-in",
        data={
            "email": "known@example.com",
            "password": "correct\x00horse",
            "csrf_token": csrf_token_from(page.text),
        },
    )
    assert response.status_code == 422
    error = re.search(r'id="password-error">(.*?)</div>', response.text, re.S)
    assert error is not None and "must not contain NUL characters" in error.group(1)
    assert _rows() == before  # not even a failed attempt is recorded


def test_a_view_that_reads_a_field_itself_still_refuses_before_the_database(
    world: World,
) -> None:
    """Deleting a secret by a name with a NUL: no form shows it, so the generic 422 page."""
    workflow = db.session.get(Workflow, world.workflow_id)
    secret_store.set_secret(workflow, "tok", "v")
    db.session.commit()
    before = _rows()
    page = world.admin_client.get(f"/workflows/{world.workflow_id}/secrets")
    response = world.admin_client.post(
        f"/workflows/{world.workflow_id}/secrets",
        data={"csrf_token": csrf_token_from(page.text), "delete": "tok\x00"},
    )
    assert response.status_code == 422
    assert "NUL" in response.text
    assert _rows() == before
