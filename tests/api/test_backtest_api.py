"""Backtests over the API: a version (GET) or a draft definition (POST), documented, and
changing nothing."""

from __future__ import annotations

import copy

import pytest

from tests.factories import SIMPLE_DEFINITION

WORKFLOWS = "/api/v1/workflows"
INCIDENTS = "/api/v1/incidents"


@pytest.fixture
def team(make_team):
    """The API user's team."""
    return make_team("Payments")


@pytest.fixture
def api(api_as, make_user, team):
    """An API client for a member of Payments."""
    return api_as(make_user("mia@example.com", teams=[team]))


@pytest.fixture
def workflow_id(api, team) -> str:
    """A disabled team workflow: a webhook on every new P1 incident."""
    response = api.post(
        WORKFLOWS,
        json={
            "name": "Notify on P1",
            "description": "d",
            "scopeType": "team",
            "teamId": team.id,
            "definition": SIMPLE_DEFINITION,
        },
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_a_version_is_backtested_over_the_stored_events(
    api, workflow_id, assert_documented
) -> None:
    for title, priority in (("Disk full", "P1"), ("Slow page", "P3"), ("DB down", "P1")):
        assert api.post(INCIDENTS, json={"title": title, "priority": priority}).status_code == 201
    response = api.get(f"{WORKFLOWS}/{workflow_id}/backtest?days=7&sample=1")
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "GET", "/workflows/{id}/backtest")
    body = response.get_json()
    assert (body["source"], body["version"], body["days"]) == ("version", 1, 7)
    assert (body["considered"], body["matched"], body["incidents"]) == (3, 2, 2)
    assert [run["incidentTitle"] for run in body["runs"]] == ["Disk full", "DB down"]
    assert [run["sampled"] for run in body["runs"]] == [True, False]
    first = body["runs"][0]["steps"][1]
    assert first["detail"]["request"]["body"] == '{"title": "Disk full"}'
    assert body["paths"] == [{"path": ["Incident created", "Notify"], "runs": 2}]

    missing = api.get(f"{WORKFLOWS}/{workflow_id}/backtest?version=9")
    assert missing.status_code == 404
    bad = api.get(f"{WORKFLOWS}/{workflow_id}/backtest?days=0")
    assert bad.status_code == 422


def test_a_draft_definition_is_backtested_without_being_saved(
    api, workflow_id, assert_documented
) -> None:
    api.post(INCIDENTS, json={"title": "Slow page", "priority": "P3"})
    draft = copy.deepcopy(SIMPLE_DEFINITION)
    draft["trigger"]["conditions"] = [{"field": "priority", "value": "P3"}]
    response = api.post(f"{WORKFLOWS}/{workflow_id}/backtest", json={"definition": draft})
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "POST", "/workflows/{id}/backtest")
    body = response.get_json()
    assert (body["source"], body["matched"]) == ("definition", 1)
    assert api.get(f"{WORKFLOWS}/{workflow_id}").get_json()["version"] == 1

    draft["nodes"][1]["data"]["config"]["url"] = "ftp://hooks.example.com/x"
    refused = api.post(f"{WORKFLOWS}/{workflow_id}/backtest", json={"definition": draft})
    assert refused.status_code == 422
    (detail,) = refused.get_json()["error"]["details"]
    assert detail["loc"] == "definition.nodes[1].data.config.url"


def test_a_stored_definition_that_no_longer_validates_is_422_not_500(api, workflow_id) -> None:
    from app.extensions import db
    from app.workflows.models import Workflow

    workflow = db.session.get(Workflow, workflow_id)
    broken = copy.deepcopy(workflow.definition)
    broken["edges"] = []
    workflow.definition = broken
    db.session.commit()
    response = api.get(f"{WORKFLOWS}/{workflow_id}/backtest")
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["loc"].startswith("definition.")
