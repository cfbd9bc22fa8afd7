"""The input policy on pages: a NUL in any id is 404, in a query or form field 422 at that
field; JSON typed into a form gets the API's checks; nothing is stored. Every page form:
test_input_policy_forms.py."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.incidents.models import Incident
from app.workflows.models import Workflow
from tests.conftest import csrf_token_from

from .test_route_sweep import rules, url_for_rule

API_PREFIX = "/api/v1/"


@pytest.fixture
def admin(make_user, sign_in):
    """A signed-in admin."""
    user = make_user("admin@example.com", admin=True)
    sign_in(user.email)
    return user


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_every_page_with_an_id_answers_404_to_a_nul_in_it(app, client, admin) -> None:
    nul = "x%00y"
    values = {
        name: nul
        for name in (
            "incident_id",
            "id",
            "token_id",
            "team_id",
            "user_id",
            "execution_id",
            "workflow_id",
        )
    }
    checked = 0
    for _method, rule, _endpoint in rules(app, {"GET"}):
        if rule.startswith(API_PREFIX) or not set(values) & set(_args(rule)):
            continue
        response = client.get(url_for_rule(rule, values))
        assert response.status_code == 404, (rule, response.status_code)
        checked += 1
    assert checked >= 10


def _args(rule: str) -> set[str]:
    import re

    return set(re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule))


@pytest.mark.parametrize(
    "url",
    [
        "/incidents?q=a%00b",
        "/incidents?service=%00",
        "/incidents?team=%00",
        "/workflows?q=%00",
        "/runs?workflow=%00",
        "/runs?incident=a%00",
        "/admin/audit?workflow=%00",
    ],
)
def test_a_nul_in_a_query_is_422_naming_the_parameter(client, admin, url) -> None:
    response = client.get(url)
    assert response.status_code == 422
    name = url.split("?")[1].split("=")[0]
    assert f"<strong>{name}</strong>" in response.text
    assert "NUL" in response.text


def test_a_nul_in_a_form_field_is_422_and_nothing_is_stored(client, admin, make_team) -> None:
    team = make_team("Payments")
    page = client.get("/incidents/new")
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": csrf_token_from(page.text),
            "title": "a\x00b",
            "priority": "P3",
            "team_id": team.id,
            "metadata": "",
        },
    )
    assert response.status_code == 422
    assert re.search(r'id="title-error"><p>This field must not contain NUL', response.text)
    assert _count(Incident) == 0


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ('{"big": 1e400}', "metadata.big: Must be a finite number"),
        ('{"n": NaN}', "metadata.n: Must be a finite number"),
        ('{"s": "\\udfff"}', "metadata.s: The text must not contain lone surrogates"),
        ('{"s": "a\\u0000"}', "metadata.s: The text must not contain NUL"),
        ('{"a": ' * 300 + "1" + "}" * 300, "metadata.a: Nested more than 32 levels deep"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "metadata.a: Nested more than 32 levels deep"),
    ],
)
def test_json_typed_into_the_metadata_field_is_checked_at_the_field(
    client, admin, make_team, metadata, says
) -> None:
    team = make_team("Payments")
    page = client.get("/incidents/new")
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": csrf_token_from(page.text),
            "title": "fine",
            "priority": "P3",
            "team_id": team.id,
            "metadata": metadata,
        },
    )
    assert response.status_code == 422
    assert says in response.text
    assert _count(Incident) == 0
    assert client.get("/incidents").status_code == 200


def test_an_imported_definition_nested_too_deep_is_refused(client, admin) -> None:
    page = client.get("/workflows/import")
    response = client.post(
        "/workflows/import",
        data={
            "csrf_token": csrf_token_from(page.text),
            "owner": "global",
            "text": '{"nodes": ' + "[" * 5000 + "]" * 5000 + "}",
        },
    )
    assert response.status_code == 422
    assert "Nested more than 32 levels deep" in response.text
    assert _count(Workflow) == 0


def test_an_htmx_request_with_a_nul_gets_its_form_back_with_the_problem_at_the_field(
    client, admin, make_incident, make_team
) -> None:
    incident = make_incident(team=make_team("Payments"))
    page = client.get(f"/incidents/{incident.id}")
    response = client.post(
        f"/incidents/{incident.id}/edit",
        data={"csrf_token": csrf_token_from(page.text), "title": "x\x00", "priority": "P3"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert "<html" not in response.text
    assert re.search(r'id="title-error"><p>This field must not contain NUL', response.text)
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).title != "x\x00"


@pytest.mark.parametrize("page", ["99999999999999999999", "0000000000001000001", "9" * 5000])
@pytest.mark.parametrize(
    "path", ["/incidents", "/runs", "/workflows", "/admin/users", "/admin/audit"]
)
def test_a_page_number_past_the_last_possible_is_422(client, admin, path, page) -> None:
    response = client.get(path, query_string={"page": page})
    assert response.status_code == 422
    assert "<strong>page</strong>" in response.text


def test_a_page_past_the_end_is_still_an_empty_page(client, admin) -> None:
    assert client.get("/incidents?page=1000000").status_code == 200
