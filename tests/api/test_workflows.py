"""Workflow operations over the API: create, list, get, new versions, enable, delete,
history, rollback and templates, with the definition schema's own error locations."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.api.routes import routes
from app.extensions import db
from app.workflows.enums import ExecutionStatus, TemplateCategory
from app.workflows.models import Workflow, WorkflowActionSecret, WorkflowVersion
from app.workflows.schema import definition_errors, parse_definition
from tests.factories import SIMPLE_DEFINITION

WORKFLOWS = "/api/v1/workflows"
TEMPLATES = "/api/v1/templates"


def committed_workflow_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Workflow, version and secret rows as another connection sees them."""
    with db.engine.connect() as conn:
        return {
            model.__tablename__: sorted(
                (tuple(row) for row in conn.execute(sa.select(model.__table__))), key=repr
            )
            for model in (Workflow, WorkflowVersion, WorkflowActionSecret)
        }


@contextmanager
def nothing_saved() -> Iterator[None]:
    """Assert that the block changes no workflow, version or secret row, even uncommitted."""
    before = committed_workflow_rows()
    yield
    db.session.commit()
    assert committed_workflow_rows() == before


def with_bad_webhook_url() -> dict[str, Any]:
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    definition["nodes"][1]["data"]["config"]["url"] = "ftp://hooks.example.com/incident"
    return definition


def schema_locations(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """What the definition schema itself says, as (loc, message) pairs."""
    with pytest.raises(ValidationError) as caught:
        parse_definition(definition)
    return [(error.loc, error.message) for error in definition_errors(caught.value)]


def errors(response) -> list[tuple[str, str]]:
    return [(d["loc"], d["message"]) for d in response.get_json()["error"]["details"]]


@pytest.fixture
def teams(make_team):
    """The API user's team and another."""
    return make_team("Payments"), make_team("Search")


@pytest.fixture
def member(make_user, teams):
    """A member of Payments only."""
    return make_user("mia@example.com", teams=[teams[0]], first_name="Mia", last_name="Berg")


@pytest.fixture
def api(api_as, member):
    """An API client for the Payments member."""
    return api_as(member)


@pytest.fixture
def admin(make_user):
    """An admin (in no team)."""
    return make_user("ada@example.com", admin=True)


@pytest.fixture
def admin_api(api_as, admin):
    """An API client for the admin."""
    return api_as(admin)


@pytest.fixture
def own_workflow(make_workflow, teams, member):
    """A Payments workflow at version 1."""
    return make_workflow(team=teams[0], created_by=member, name="Page Payments")


@pytest.fixture
def others_workflow(make_workflow, teams):
    """A workflow of Search, which the member may not see."""
    return make_workflow(team=teams[1], name="Page Search")


# --- create ---------------------------------------------------------------------


def test_create_answers_201_with_location_and_the_stored_version_1(
    api, teams, member, assert_documented
) -> None:
    response = api.post(
        WORKFLOWS,
        json={
            "name": "Notify on P1",
            "description": "Posts to the payments hook.",
            "scopeType": "team",
            "teamId": teams[0].id,
            "definition": SIMPLE_DEFINITION,
        },
    )
    assert response.status_code == 201, response.get_json()
    assert_documented(response, "POST", "/workflows")
    body = response.get_json()
    assert response.headers["Location"] == f"{WORKFLOWS}/{body['id']}"
    assert body["name"] == "Notify on P1"
    assert body["description"] == "Posts to the payments hook."
    assert (body["scopeType"], body["teamId"]) == ("team", teams[0].id)
    assert (body["version"], body["isEnabled"], body["isTemplate"]) == (1, False, False)
    assert body["templateCategory"] is None
    assert body["createdBy"] == {"id": member.id, "email": member.email, "name": "Mia Berg"}
    # The canonical definition: id, version, name and enabled come from the workflow.
    assert body["definition"]["id"] == body["id"]
    assert body["definition"]["version"] == 1
    assert body["definition"]["name"] == "Notify on P1"
    assert body["definition"]["settings"] == {"timeout": "5min", "enabled": False}
    assert body["definition"]["nodes"] == SIMPLE_DEFINITION["nodes"]
    assert api.get(response.headers["Location"]).get_json() == body

    db.session.rollback()
    versions = db.session.scalars(sa.select(WorkflowVersion)).all()
    assert [(v.workflow_id, v.version) for v in versions] == [(body["id"], 1)]
    assert versions[0].definition == body["definition"]


def test_create_without_a_definition_starts_with_a_manual_trigger(api, teams) -> None:
    response = api.post(
        WORKFLOWS, json={"name": "Draft", "description": "Later.", "teamId": teams[0].id}
    )
    assert response.status_code == 201, response.get_json()
    definition = response.get_json()["definition"]
    assert [node["type"] for node in definition["nodes"]] == ["trigger"]
    assert definition["trigger"] == {"type": "manual", "conditions": []}


def test_an_invalid_definition_is_422_at_the_schemas_own_locations(api, teams) -> None:
    definition = with_bad_webhook_url()
    definition["edges"][0]["target"] = "nowhere"
    with nothing_saved():
        response = api.post(
            WORKFLOWS,
            json={
                "name": "Broken",
                "description": "Has problems.",
                "teamId": teams[0].id,
                "definition": definition,
            },
        )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert "definition.nodes[1].data.config.url" in [loc for loc, _ in errors(response)]
    # Every location is the schema's, under the request field.
    assert errors(response) == [
        (f"definition.{loc}", message) for loc, message in schema_locations(definition)
    ]


@pytest.mark.parametrize("definition", [[1, 2], "{}", 3])
def test_a_definition_that_is_not_an_object_is_422_at_definition(api, teams, definition) -> None:
    with nothing_saved():
        response = api.post(
            WORKFLOWS,
            json={
                "name": "Odd",
                "description": "Not an object.",
                "teamId": teams[0].id,
                "definition": definition,
            },
        )
    assert response.status_code == 422
    assert [loc for loc, _ in errors(response)] == ["definition"]


def test_a_member_creating_a_global_workflow_is_403(api, assert_documented) -> None:
    with nothing_saved():
        response = api.post(
            WORKFLOWS, json={"name": "All", "description": "Everyone.", "scopeType": "global"}
        )
    assert response.status_code == 403
    assert_documented(response, "POST", "/workflows")
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_member_creating_for_another_team_is_403(api, teams) -> None:
    with nothing_saved():
        response = api.post(
            WORKFLOWS, json={"name": "Theirs", "description": "No.", "teamId": teams[1].id}
        )
    assert response.status_code == 403


def test_an_admin_creates_a_global_workflow(admin_api) -> None:
    response = admin_api.post(
        WORKFLOWS, json={"name": "All", "description": "Everyone.", "scopeType": "global"}
    )
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["scopeType"], response.get_json()["teamId"]) == ("global", None)


def test_a_team_workflow_without_a_team_is_422_at_team_id(api) -> None:
    with nothing_saved():
        response = api.post(WORKFLOWS, json={"name": "Where?", "description": "Nowhere."})
    assert response.status_code == 422
    assert [loc for loc, _ in errors(response)] == ["teamId"]


# --- list and get -------------------------------------------------------------


@pytest.fixture
def listed(make_workflow, teams, member):
    """Workflows the member sees (global, Payments) and does not see (Search, a template)."""
    payments, search = teams
    return {
        "global": make_workflow(name="Global escalation", is_enabled=True),
        "alpha": make_workflow(team=payments, name="alpha hook"),
        "beta": make_workflow(team=payments, name="Beta ticket", is_enabled=True),
        "search": make_workflow(team=search, name="Search hook"),
        "template": make_workflow(
            name="A template", is_template=True, template_category=TemplateCategory.TICKETING
        ),
    }


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["name"] for item in response.get_json()["items"]]


def test_list_shows_global_and_own_teams_workflows_by_name(api, listed, assert_documented) -> None:
    response = api.get(WORKFLOWS)
    assert_documented(response, "GET", "/workflows")
    assert names(response) == ["alpha hook", "Beta ticket", "Global escalation"]
    body = response.get_json()
    assert (body["page"], body["perPage"], body["total"], body["pages"]) == (1, 25, 3, 1)


def test_an_admin_lists_every_workflow_but_templates(admin_api, listed) -> None:
    assert names(admin_api.get(WORKFLOWS)) == [
        "alpha hook",
        "Beta ticket",
        "Global escalation",
        "Search hook",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("scope=global", ["Global escalation"]),
        ("scope=team", ["alpha hook", "Beta ticket"]),
        ("enabled=true", ["Beta ticket", "Global escalation"]),
        ("enabled=false", ["alpha hook"]),
        ("q=HOOK", ["alpha hook"]),
        ("q=%25", []),
        ("scope=team&enabled=true", ["Beta ticket"]),
    ],
)
def test_list_filters(api, listed, query, expected) -> None:
    assert names(api.get(f"{WORKFLOWS}?{query}")) == expected


def test_list_filter_by_team(api, listed, teams) -> None:
    assert names(api.get(f"{WORKFLOWS}?team={teams[0].id}")) == ["alpha hook", "Beta ticket"]
    assert names(api.get(f"{WORKFLOWS}?team={teams[1].id}")) == []


def test_list_pages(api, listed) -> None:
    response = api.get(f"{WORKFLOWS}?perPage=2&page=2")
    assert names(response) == ["Global escalation"]
    body = response.get_json()
    assert (body["page"], body["perPage"], body["total"], body["pages"]) == (2, 2, 3, 2)


@pytest.mark.parametrize(
    ("page_query", "api_query", "expected"),
    [
        ("", "", {"alpha hook", "Beta ticket", "Global escalation", "disk_full at 100%"}),
        ("scope=global", "scope=global", {"Global escalation"}),
        ("scope=team", "scope=team", {"alpha hook", "Beta ticket", "disk_full at 100%"}),
        ("team={search}", "team={search}", set()),
        ("enabled=yes", "enabled=true", {"Beta ticket", "Global escalation"}),
        ("enabled=no", "enabled=false", {"alpha hook", "disk_full at 100%"}),
        ("q=%20HOOK%20", "q=%20HOOK%20", {"alpha hook"}),
        ("q=_", "q=_", {"disk_full at 100%"}),
        ("q=100%25", "q=100%25", {"disk_full at 100%"}),
        ("q=%5C", "q=%5C", set()),
    ],
)
def test_the_api_lists_what_the_list_page_shows_for_the_same_filters(
    api, client, sign_in, member, listed, make_workflow, teams, page_query, api_query, expected
) -> None:
    """Both lists filter through ``service.search_workflows``: same rows, wildcards literal."""
    listed["odd"] = make_workflow(team=teams[0], name="disk_full at 100%")
    sign_in(member.email)
    search = teams[1].id
    page = client.get(f"/workflows?{page_query.format(search=search)}").text
    on_page = {w.name for w in listed.values() if f'id="wf-{w.id}"' in page}
    by_api = set(names(api.get(f"{WORKFLOWS}?{api_query.format(search=search)}")))
    assert on_page == by_api == expected


@pytest.mark.parametrize(
    ("query", "loc"),
    [("scope=everyone", "query.scope"), ("per_page=2", "query.per_page"), ("page=0", "query.page")],
)
def test_bad_list_filters_are_422_at_the_parameter(api, query, loc, assert_documented) -> None:
    response = api.get(f"{WORKFLOWS}?{query}")
    assert response.status_code == 422
    assert_documented(response, "GET", "/workflows")
    assert [d for d, _ in errors(response)] == [loc]


def test_get_returns_the_workflow(api, own_workflow, assert_documented) -> None:
    response = api.get(f"{WORKFLOWS}/{own_workflow.id}")
    assert response.status_code == 200
    assert_documented(response, "GET", "/workflows/{id}")
    body = response.get_json()
    assert (body["id"], body["name"], body["version"]) == (own_workflow.id, "Page Payments", 1)
    assert body["definition"] == SIMPLE_DEFINITION
    assert body["createdAt"].endswith("Z")


# --- new versions ---------------------------------------------------------------


def changed_definition(url: str = "https://hooks.example.com/v2") -> dict[str, Any]:
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    definition["nodes"][1]["data"]["config"]["url"] = url
    return definition


def test_put_definition_saves_the_next_version(
    api, own_workflow, member, assert_documented
) -> None:
    response = api.open(
        "PUT",
        f"{WORKFLOWS}/{own_workflow.id}/definition",
        json={"definition": changed_definition(), "baseVersion": 1, "changeNote": "New hook"},
    )
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "PUT", "/workflows/{id}/definition")
    body = response.get_json()
    assert body["version"] == 2
    assert body["definition"]["version"] == 2
    assert body["definition"]["id"] == own_workflow.id
    assert body["definition"]["nodes"][1]["data"]["config"]["url"] == "https://hooks.example.com/v2"

    db.session.rollback()
    stored = db.session.scalar(
        sa.select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == own_workflow.id, WorkflowVersion.version == 2
        )
    )
    assert stored is not None
    assert (stored.change_note, stored.changed_by_id) == ("New hook", member.id)
    assert stored.definition == body["definition"]


def test_a_stale_base_version_is_409_version_conflict_and_saves_nothing(
    api, own_workflow, assert_documented
) -> None:
    url = f"{WORKFLOWS}/{own_workflow.id}/definition"
    first = api.open("PUT", url, json={"definition": changed_definition(), "baseVersion": 1})
    assert first.status_code == 200
    with nothing_saved():
        response = api.open(
            "PUT",
            url,
            json={
                "definition": changed_definition("https://hooks.example.com/v3"),
                "baseVersion": 1,
            },
        )
    assert response.status_code == 409
    assert_documented(response, "PUT", "/workflows/{id}/definition")
    error = response.get_json()["error"]
    assert error["code"] == "version_conflict"
    assert "version 2" in error["message"]
    assert errors(response) == [("baseVersion", "The current version is 2.")]
    assert api.get(f"{WORKFLOWS}/{own_workflow.id}").get_json()["version"] == 2


def test_put_an_invalid_definition_is_422_with_locations_and_saves_nothing(
    api, own_workflow, assert_documented
) -> None:
    definition = with_bad_webhook_url()
    with nothing_saved():
        response = api.open(
            "PUT",
            f"{WORKFLOWS}/{own_workflow.id}/definition",
            json={"definition": definition, "baseVersion": 1},
        )
    assert response.status_code == 422
    assert_documented(response, "PUT", "/workflows/{id}/definition")
    assert [loc for loc, _ in errors(response)] == ["definition.nodes[1].data.config.url"]
    assert errors(response) == [
        (f"definition.{loc}", message) for loc, message in schema_locations(definition)
    ]


def test_put_without_base_version_is_422(api, own_workflow) -> None:
    with nothing_saved():
        response = api.open(
            "PUT",
            f"{WORKFLOWS}/{own_workflow.id}/definition",
            json={"definition": changed_definition()},
        )
    assert response.status_code == 422
    assert [loc for loc, _ in errors(response)] == ["baseVersion"]


def test_a_member_changing_a_global_workflow_is_403(api, make_workflow) -> None:
    workflow = make_workflow(name="Global")
    with nothing_saved():
        response = api.open(
            "PUT",
            f"{WORKFLOWS}/{workflow.id}/definition",
            json={"definition": changed_definition(), "baseVersion": 1},
        )
    assert response.status_code == 403
    with nothing_saved():
        assert api.post(f"{WORKFLOWS}/{workflow.id}/enable").status_code == 403
        assert api.open("DELETE", f"{WORKFLOWS}/{workflow.id}").status_code == 403
        assert api.post(f"{WORKFLOWS}/{workflow.id}/versions/1/rollback").status_code == 403
    # Reading it is allowed.
    assert api.get(f"{WORKFLOWS}/{workflow.id}").status_code == 200


# --- enable, disable, delete ------------------------------------------------------


def test_enable_and_disable(api, own_workflow, assert_documented) -> None:
    response = api.post(f"{WORKFLOWS}/{own_workflow.id}/enable")
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "POST", "/workflows/{id}/enable")
    assert response.get_json()["isEnabled"] is True
    assert response.get_json()["definition"]["settings"]["enabled"] is True
    assert names(api.get(f"{WORKFLOWS}?enabled=true")) == ["Page Payments"]

    response = api.post(f"{WORKFLOWS}/{own_workflow.id}/disable")
    assert response.status_code == 200
    assert_documented(response, "POST", "/workflows/{id}/disable")
    assert response.get_json()["isEnabled"] is False
    assert response.get_json()["definition"]["settings"]["enabled"] is False


def test_enabling_an_invalid_stored_definition_is_422_with_its_locations(
    api, make_workflow, teams, assert_documented
) -> None:
    definition = with_bad_webhook_url()
    workflow = make_workflow(team=teams[0], definition=definition)
    with nothing_saved():
        response = api.post(f"{WORKFLOWS}/{workflow.id}/enable")
    assert response.status_code == 422
    assert_documented(response, "POST", "/workflows/{id}/enable")
    assert errors(response) == [
        (f"definition.{loc}", message) for loc, message in schema_locations(definition)
    ]


def test_delete_answers_204_and_the_workflow_is_gone(api, own_workflow) -> None:
    response = api.open("DELETE", f"{WORKFLOWS}/{own_workflow.id}")
    assert response.status_code == 204
    assert response.data == b""
    assert api.get(f"{WORKFLOWS}/{own_workflow.id}").status_code == 404
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowVersion)) == 0


@pytest.mark.parametrize("status", [ExecutionStatus.PENDING, ExecutionStatus.RUNNING])
def test_delete_with_a_run_in_flight_is_409(
    api, own_workflow, teams, make_incident, make_execution, status, assert_documented
) -> None:
    make_execution(own_workflow, make_incident(team=teams[0]), status=status)
    with nothing_saved():
        response = api.open("DELETE", f"{WORKFLOWS}/{own_workflow.id}")
    assert response.status_code == 409
    assert_documented(response, "DELETE", "/workflows/{id}")
    assert "in flight" in response.get_json()["error"]["message"]


# --- versions and rollback ----------------------------------------------------------


@pytest.fixture
def three_versions(api, own_workflow):
    """own_workflow saved twice more through the API: versions 1, 2 and 3."""
    url = f"{WORKFLOWS}/{own_workflow.id}/definition"
    for base, hook in ((1, "v2"), (2, "v3")):
        response = api.open(
            "PUT",
            url,
            json={
                "definition": changed_definition(f"https://hooks.example.com/{hook}"),
                "baseVersion": base,
                "changeNote": f"To {hook}",
            },
        )
        assert response.status_code == 200, response.get_json()
    return own_workflow


def test_versions_are_listed_newest_first_without_definitions(
    api, three_versions, member, assert_documented
) -> None:
    response = api.get(f"{WORKFLOWS}/{three_versions.id}/versions")
    assert response.status_code == 200
    assert_documented(response, "GET", "/workflows/{id}/versions")
    body = response.get_json()
    assert [(v["version"], v["changeNote"]) for v in body["items"]] == [
        (3, "To v3"),
        (2, "To v2"),
        (1, None),
    ]
    assert body["items"][0]["changedBy"]["id"] == member.id
    assert "definition" not in body["items"][0]
    assert body["total"] == 3
    paged = api.get(f"{WORKFLOWS}/{three_versions.id}/versions?perPage=1&page=3").get_json()
    assert [v["version"] for v in paged["items"]] == [1]


def test_get_one_version_has_its_definition(api, three_versions, assert_documented) -> None:
    response = api.get(f"{WORKFLOWS}/{three_versions.id}/versions/2")
    assert response.status_code == 200
    assert_documented(response, "GET", "/workflows/{id}/versions/{number}")
    body = response.get_json()
    assert body["version"] == 2
    assert body["definition"]["nodes"][1]["data"]["config"]["url"] == "https://hooks.example.com/v2"


@pytest.mark.parametrize("number", ["4", "0", "abc", "99999999999", "9" * 5000, "²"])
def test_a_version_that_does_not_exist_is_404(api, three_versions, number) -> None:
    response = api.get(f"{WORKFLOWS}/{three_versions.id}/versions/{number}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    with nothing_saved():
        response = api.post(f"{WORKFLOWS}/{three_versions.id}/versions/{number}/rollback")
    assert response.status_code == 404


def test_rollback_creates_the_next_version_equal_to_the_chosen_one(
    api, three_versions, assert_documented
) -> None:
    chosen = api.get(f"{WORKFLOWS}/{three_versions.id}/versions/1").get_json()
    response = api.post(f"{WORKFLOWS}/{three_versions.id}/versions/1/rollback")
    assert response.status_code == 201, response.get_json()
    assert_documented(response, "POST", "/workflows/{id}/versions/{number}/rollback")
    body = response.get_json()
    assert response.headers["Location"] == f"{WORKFLOWS}/{three_versions.id}/versions/4"
    assert body["version"] == 4
    assert body["changeNote"] == "Rolled back to v1"
    assert body["definition"] == {**chosen["definition"], "id": three_versions.id, "version": 4}
    assert {**body["definition"], "version": 1} == {**chosen["definition"], "id": three_versions.id}
    assert api.get(response.headers["Location"]).get_json() == body
    workflow = api.get(f"{WORKFLOWS}/{three_versions.id}").get_json()
    assert (workflow["version"], workflow["definition"]) == (4, body["definition"])
    # History is kept.
    assert api.get(f"{WORKFLOWS}/{three_versions.id}/versions").get_json()["total"] == 4


# --- templates ----------------------------------------------------------------------


@pytest.fixture
def templates(make_workflow):
    """Two live templates in two categories and a retired one."""
    return {
        "jira": make_workflow(
            name="Open a Jira issue",
            is_template=True,
            template_category=TemplateCategory.TICKETING,
        ),
        "slack": make_workflow(
            name="Tell the channel",
            is_template=True,
            template_category=TemplateCategory.COMMUNICATION,
        ),
        "retired": make_workflow(
            name="Old pager",
            is_template=True,
            template_category=TemplateCategory.COMMUNICATION,
            retired_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    }


def test_templates_are_listed_by_category_without_retired_ones(
    api, templates, assert_documented
) -> None:
    response = api.get(TEMPLATES)
    assert response.status_code == 200
    assert_documented(response, "GET", "/templates")
    items = response.get_json()["items"]
    assert [(t["templateCategory"], t["name"]) for t in items] == [
        ("Ticketing", "Open a Jira issue"),
        ("Communication", "Tell the channel"),
    ]
    assert all(t["isTemplate"] for t in items)
    filtered = api.get(f"{TEMPLATES}?category=Communication").get_json()["items"]
    assert [t["name"] for t in filtered] == ["Tell the channel"]


def test_using_a_template_creates_a_disabled_team_workflow(
    api, templates, teams, member, assert_documented
) -> None:
    response = api.post(
        f"{TEMPLATES}/{templates['jira'].id}/use",
        json={"scopeType": "team", "teamId": teams[0].id, "name": "Payments tickets"},
    )
    assert response.status_code == 201, response.get_json()
    assert_documented(response, "POST", "/templates/{id}/use")
    body = response.get_json()
    assert response.headers["Location"] == f"{WORKFLOWS}/{body['id']}"
    assert body["name"] == "Payments tickets"
    assert (body["isEnabled"], body["isTemplate"], body["version"]) == (False, False, 1)
    assert (body["scopeType"], body["teamId"]) == ("team", teams[0].id)
    assert body["createdBy"]["id"] == member.id
    assert body["definition"]["nodes"] == SIMPLE_DEFINITION["nodes"]
    assert body["id"] != templates["jira"].id


@pytest.mark.parametrize("which", ["retired", "workflow"])
def test_using_a_retired_template_or_a_workflow_is_404(
    api, templates, own_workflow, teams, which
) -> None:
    target = templates["retired"] if which == "retired" else own_workflow
    with nothing_saved():
        response = api.post(f"{TEMPLATES}/{target.id}/use", json={"teamId": teams[0].id})
    assert response.status_code == 404


def test_a_member_using_a_template_globally_is_403(api, templates) -> None:
    with nothing_saved():
        response = api.post(f"{TEMPLATES}/{templates['jira'].id}/use", json={"scopeType": "global"})
    assert response.status_code == 403


# --- visibility -----------------------------------------------------------------------


def request_body(rule: str) -> dict[str, Any] | None:
    """A valid body for the operations that take one."""
    if rule.endswith("/definition"):
        return {"definition": changed_definition(), "baseVersion": 1}
    if "/secrets/" in rule:
        return {"value": "s3cret"}
    if rule.startswith("/templates/"):
        return {"teamId": "x"}
    return None


def test_another_teams_workflow_is_404_on_every_workflow_route(api, others_workflow) -> None:
    operations = [
        op
        for op in routes.operations
        if op.rule.startswith("/workflows/<id>") or op.rule.startswith("/templates/<id>")
    ]
    assert len(operations) == 15  # including /workflows/<id>/runs and both backtests
    for op in operations:
        path = "/api/v1" + op.rule.replace("<id>", others_workflow.id).replace(
            "<number>", "1"
        ).replace("<name>", "hook_token")
        body = request_body(op.rule)
        # A valid body, and one that is not: the workflow is looked up first either way.
        for sent in ({"json": body} if body else {}, {"json": {}}):
            with nothing_saved():
                response = api.open(op.method, path, **sent)
            assert response.status_code == 404, (op.method, path, response.get_json())
            error = response.get_json()["error"]
            assert error["code"] == "not_found", path
            assert "Search" not in error["message"]


def test_another_teams_workflow_is_not_listed_or_found_by_filters(
    api, others_workflow, teams
) -> None:
    assert names(api.get(WORKFLOWS)) == []
    assert names(api.get(f"{WORKFLOWS}?team={teams[1].id}&q=Search")) == []


def test_put_a_template_that_transforms_a_secret_is_422_at_the_field_and_saves_nothing(
    api, own_workflow
) -> None:
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    definition["nodes"][1]["data"]["config"]["body"] = '{"t": "{{ secrets.token | reverse }}"}'
    with nothing_saved():
        response = api.open(
            "PUT",
            f"{WORKFLOWS}/{own_workflow.id}/definition",
            json={"definition": definition, "baseVersion": 1},
        )
    assert response.status_code == 422
    [(loc, message)] = errors(response)
    assert loc == "definition.nodes[1].data.config.body"
    assert message.startswith("A secret can only be placed whole in a template")
    assert "applies a filter to a secret" in message
