"""Workflow secrets over the API: write-only values, stored encrypted, and the rules
that tie them to enabling a workflow."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.workflows.models import WorkflowActionSecret
from app.workflows.secrets import decrypt_for_request
from tests.factories import SIMPLE_DEFINITION

from .test_workflows import nothing_saved

WORKFLOWS = "/api/v1/workflows"
TOKEN_VALUE = "tok-Zq9-3f8b1c-never-shown"
KEY_VALUE = "key-Wd4-77a0e2-never-shown"


def secret_definition() -> dict[str, Any]:
    """trigger -> webhook that sends two secrets: a bearer token and an API key header."""
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    config = definition["nodes"][1]["data"]["config"]
    config["auth"] = {"type": "bearer", "token": "{{ secrets.hook_token }}"}
    config["headers"] = {"X-Api-Key": "{{ secrets.api_key }}"}
    return definition


def errors(response) -> list[tuple[str, str]]:
    return [(d["loc"], d["message"]) for d in response.get_json()["error"]["details"]]


@pytest.fixture
def team(make_team):
    """The API user's team."""
    return make_team("Payments")


@pytest.fixture
def member(make_user, team):
    """A member of Payments."""
    return make_user(teams=[team])


@pytest.fixture
def api(api_as, member):
    """An API client for the Payments member."""
    return api_as(member)


@pytest.fixture
def workflow(make_workflow, team, member):
    """A disabled Payments workflow whose webhook uses hook_token and api_key."""
    return make_workflow(team=team, created_by=member, definition=secret_definition())


def put_secret(api, workflow, name: str, value: str):
    return api.open("PUT", f"{WORKFLOWS}/{workflow.id}/secrets/{name}", json={"value": value})


def test_enable_is_refused_with_the_missing_secrets_then_accepted_once_they_are_set(
    api, workflow, assert_documented
) -> None:
    enable = f"{WORKFLOWS}/{workflow.id}/enable"
    with nothing_saved():
        refused = api.post(enable)
    assert refused.status_code == 422
    assert_documented(refused, "POST", "/workflows/{id}/enable")
    error = refused.get_json()["error"]
    assert "api_key, hook_token" in error["message"]
    assert errors(refused) == [
        ("secrets.api_key", "Set the secret 'api_key' (used by notify)."),
        ("secrets.hook_token", "Set the secret 'hook_token' (used by notify)."),
        (
            "definition.nodes[1].data.config.headers.X-Api-Key",
            "This workflow has no secret named 'api_key'; add it to the workflow's secrets "
            "or correct the name.",
        ),
        (
            "definition.nodes[1].data.config.auth.token",
            "This workflow has no secret named 'hook_token'; add it to the workflow's secrets "
            "or correct the name.",
        ),
    ]

    assert put_secret(api, workflow, "hook_token", TOKEN_VALUE).status_code == 200
    still_refused = api.post(enable)
    assert still_refused.status_code == 422
    assert [loc for loc, _ in errors(still_refused)] == [
        "secrets.api_key",
        "definition.nodes[1].data.config.headers.X-Api-Key",
    ]

    assert put_secret(api, workflow, "api_key", KEY_VALUE).status_code == 200
    enabled = api.post(enable)
    assert enabled.status_code == 200, enabled.get_json()
    assert enabled.get_json()["isEnabled"] is True


def test_put_secret_answers_its_name_and_users_never_its_value(
    api, workflow, assert_documented
) -> None:
    response = put_secret(api, workflow, "hook_token", TOKEN_VALUE)
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "PUT", "/workflows/{id}/secrets/{name}")
    body = response.get_json()
    assert set(body) == {"name", "updatedAt", "usedBy"}
    assert (body["name"], body["usedBy"]) == ("hook_token", ["notify"])

    # Replacing keeps one row, with the new value.
    assert put_secret(api, workflow, "hook_token", "replaced value").status_code == 200
    db.session.rollback()
    assert decrypt_for_request(workflow.id) == {"hook_token": "replaced value"}


def test_secrets_list_names_users_and_the_missing_ones(api, workflow, assert_documented) -> None:
    put_secret(api, workflow, "hook_token", TOKEN_VALUE)
    put_secret(api, workflow, "spare", "unused")
    response = api.get(f"{WORKFLOWS}/{workflow.id}/secrets")
    assert response.status_code == 200
    assert_documented(response, "GET", "/workflows/{id}/secrets")
    body = response.get_json()
    assert [(s["name"], s["usedBy"]) for s in body["items"]] == [
        ("hook_token", ["notify"]),
        ("spare", []),
    ]
    assert body["missing"] == [{"name": "api_key", "usedBy": ["notify"]}]


def all_committed_text() -> str:
    """Every value of every row of every table, as text."""
    chunks = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                chunks.extend(
                    json.dumps(value, default=str) if not isinstance(value, str) else value
                    for value in row
                )
    return "\n".join(chunks)


def test_secret_values_appear_in_no_response_and_only_encrypted_in_the_database(
    api, workflow
) -> None:
    responses = [
        put_secret(api, workflow, "hook_token", TOKEN_VALUE),
        put_secret(api, workflow, "api_key", KEY_VALUE),
        api.get(f"{WORKFLOWS}/{workflow.id}/secrets"),
        api.post(f"{WORKFLOWS}/{workflow.id}/enable"),
        api.get(f"{WORKFLOWS}/{workflow.id}"),
        api.get(WORKFLOWS),
        api.open(
            "PUT",
            f"{WORKFLOWS}/{workflow.id}/definition",
            json={"definition": secret_definition(), "baseVersion": 1},
        ),
        api.get(f"{WORKFLOWS}/{workflow.id}/versions"),
        api.get(f"{WORKFLOWS}/{workflow.id}/versions/2"),
        api.get("/api/v1/openapi.json"),
        # Refusals must not echo the value either.
        api.open(
            "PUT",
            f"{WORKFLOWS}/{workflow.id}/secrets/Bad-Name",
            json={"value": TOKEN_VALUE},
        ),
        api.open(
            "PUT",
            f"{WORKFLOWS}/{workflow.id}/secrets/hook_token",
            json={"value": TOKEN_VALUE, "extra": TOKEN_VALUE},
        ),
        api.open("DELETE", f"{WORKFLOWS}/{workflow.id}/secrets/hook_token"),
    ]
    assert [r.status_code for r in responses] == [
        200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 422, 422, 409,
    ]  # fmt: skip
    for response in responses:
        text = response.get_data(as_text=True)
        assert TOKEN_VALUE not in text and KEY_VALUE not in text, response.request.path

    db.session.rollback()
    stored = all_committed_text()
    assert TOKEN_VALUE not in stored and KEY_VALUE not in stored
    rows = db.session.scalars(sa.select(WorkflowActionSecret)).all()
    assert {row.name for row in rows} == {"hook_token", "api_key"}
    assert all(row.value_hash.startswith("gAAAA") for row in rows)  # Fernet tokens
    assert decrypt_for_request(workflow.id) == {"hook_token": TOKEN_VALUE, "api_key": KEY_VALUE}


def test_deleting_a_secret_an_enabled_workflow_uses_is_409(
    api, workflow, assert_documented
) -> None:
    put_secret(api, workflow, "hook_token", TOKEN_VALUE)
    put_secret(api, workflow, "api_key", KEY_VALUE)
    assert api.post(f"{WORKFLOWS}/{workflow.id}/enable").status_code == 200
    with nothing_saved():
        response = api.open("DELETE", f"{WORKFLOWS}/{workflow.id}/secrets/hook_token")
    assert response.status_code == 409
    assert_documented(response, "DELETE", "/workflows/{id}/secrets/{name}")
    assert "hook_token" in response.get_json()["error"]["message"]

    assert api.post(f"{WORKFLOWS}/{workflow.id}/disable").status_code == 200
    deleted = api.open("DELETE", f"{WORKFLOWS}/{workflow.id}/secrets/hook_token")
    assert deleted.status_code == 204
    assert deleted.data == b""
    db.session.rollback()
    assert decrypt_for_request(workflow.id) == {"api_key": KEY_VALUE}


def test_an_enabled_workflow_may_drop_a_secret_it_no_longer_uses(api, workflow) -> None:
    put_secret(api, workflow, "hook_token", TOKEN_VALUE)
    put_secret(api, workflow, "api_key", KEY_VALUE)
    put_secret(api, workflow, "spare", "unused")
    assert api.post(f"{WORKFLOWS}/{workflow.id}/enable").status_code == 200
    response = api.open("DELETE", f"{WORKFLOWS}/{workflow.id}/secrets/spare")
    assert response.status_code == 204


def test_deleting_an_unknown_secret_is_404(api, workflow) -> None:
    response = api.open("DELETE", f"{WORKFLOWS}/{workflow.id}/secrets/nope")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("name", "body", "loc"),
    [
        ("Bad-Name", {"value": "x"}, "name"),
        ("hook_token", {"value": ""}, "value"),
        ("hook_token", {"value": "x" * 8193}, "value"),
        ("hook_token", {}, "value"),
        ("hook_token", {"value": 12}, "value"),
    ],
)
def test_bad_secrets_are_422_at_name_or_value(api, workflow, name, body, loc) -> None:
    with nothing_saved():
        response = api.open("PUT", f"{WORKFLOWS}/{workflow.id}/secrets/{name}", json=body)
    assert response.status_code == 422
    assert [d for d, _ in errors(response)] == [loc]


def test_saving_a_definition_an_enabled_workflow_lacks_secrets_for_is_422(api, workflow) -> None:
    put_secret(api, workflow, "hook_token", TOKEN_VALUE)
    put_secret(api, workflow, "api_key", KEY_VALUE)
    assert api.post(f"{WORKFLOWS}/{workflow.id}/enable").status_code == 200
    definition = secret_definition()
    definition["nodes"][1]["data"]["config"]["headers"] = {"X-Other": "{{ secrets.other_key }}"}
    with nothing_saved():
        response = api.open(
            "PUT",
            f"{WORKFLOWS}/{workflow.id}/definition",
            json={"definition": definition, "baseVersion": 1},
        )
    assert response.status_code == 422
    assert [loc for loc, _ in errors(response)] == [
        "definition.nodes[1].data.config.headers.X-Other"
    ]


def test_a_member_cannot_set_or_delete_a_global_workflows_secrets(api, make_workflow) -> None:
    global_workflow = make_workflow(definition=secret_definition())
    with nothing_saved():
        assert put_secret(api, global_workflow, "hook_token", TOKEN_VALUE).status_code == 403
        response = api.open("DELETE", f"{WORKFLOWS}/{global_workflow.id}/secrets/hook_token")
        assert response.status_code == 403
    # The names are not secret: a member may see which ones a global workflow needs.
    listed = api.get(f"{WORKFLOWS}/{global_workflow.id}/secrets")
    assert listed.status_code == 200
    assert [m["name"] for m in listed.get_json()["missing"]] == ["api_key", "hook_token"]
