"""The input policy over the API: deep, NUL, surrogate and non-finite input is refused at
its field with 422 before anything is stored, ids and queries carrying NUL are 404/422,
and reads keep working afterwards."""

from __future__ import annotations

import json

import pytest

from app.input_policy import MAX_JSON_DEPTH
from tests.factories import SIMPLE_DEFINITION

from .conftest import nothing_changes
from .test_errors import error_of
from .test_workflows import nothing_saved

INCIDENTS = "/api/v1/incidents"


@pytest.fixture
def team(make_team):
    """The API user's team."""
    return make_team("Payments")


@pytest.fixture
def api(api_as, make_user, team):
    """An API client for a member of ``team``."""
    return api_as(make_user(teams=[team]))


@pytest.fixture
def incident(make_incident, team):
    """A triggered incident of ``team``."""
    return make_incident(team=team, title="Original", metadata_={"keep": True})


def nested(levels: int) -> str:
    return '{"a": ' * (levels - 1) + "1" + "}" * (levels - 1)


def locs(error: dict) -> list[str]:
    return [detail["loc"] for detail in error["details"]]


@pytest.mark.parametrize("levels", [260, 5_000, 60_000])
def test_deep_metadata_is_422_at_metadata_and_nothing_is_stored(api, incident, levels) -> None:
    raw = '{"title": "deep", "metadata": ' + nested(levels) + "}"
    for method, path in [("POST", INCIDENTS), ("PATCH", f"{INCIDENTS}/{incident.id}")]:
        with nothing_changes():
            response = api.open(method, path, data=raw, content_type="application/json")
        error = error_of(response, 422, "validation_error")
        assert locs(error) == ["metadata"]
        assert f"{MAX_JSON_DEPTH} levels" in error["details"][0]["message"]
    listed = api.get(INCIDENTS)
    assert listed.status_code == 200
    assert [item["title"] for item in listed.get_json()["items"]] == ["Original"]


def test_metadata_as_deep_as_allowed_is_stored(api) -> None:
    # The body is level 1, so metadata may nest MAX_JSON_DEPTH - 1 levels.
    raw = '{"title": "ok", "metadata": ' + nested(MAX_JSON_DEPTH - 1) + "}"
    response = api.post(INCIDENTS, data=raw, content_type="application/json")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ('{"title": "a\\u0000b"}', "title"),
        ('{"title": "t", "description": "x\\u0000"}', "description"),
        ('{"title": "t", "service": "api\\u0000"}', "service"),
        ('{"title": "t", "metadata": {"region": "eu\\u0000"}}', "metadata.region"),
        ('{"title": "t", "metadata": {"list": [1, "\\u0000"]}}', "metadata.list[1]"),
        ('{"title": "t", "metadata": {"k\\u0000": 1}}', 'metadata["k\\u0000"]'),
        ('{"title": "t", "metadata": {"x": "\\udfff"}}', "metadata.x"),
        ('{"title": "\\ud800 alone"}', "title"),
        ('{"title": "t", "metadata": {"big": 1e400}}', "metadata.big"),
        ('{"title": "t", "metadata": {"small": -1e400}}', "metadata.small"),
        ('{"title": "t", "metadata": {"n": NaN}}', "metadata.n"),
        ('{"title": "t", "metadata": {"i": Infinity}}', "metadata.i"),
        ('{"title": "t", "metadata": {"i": [-Infinity]}}', "metadata.i[0]"),
    ],
)
def test_nul_surrogates_and_non_finite_numbers_are_422_at_the_field(
    api, incident, body, loc, assert_documented
) -> None:
    for method, path in [("POST", INCIDENTS), ("PATCH", f"{INCIDENTS}/{incident.id}")]:
        with nothing_changes():
            response = api.open(method, path, data=body, content_type="application/json")
        error = error_of(response, 422, "validation_error")
        assert locs(error) == [loc]
        assert "\x00" not in response.text
    assert_documented(response, "PATCH", "/incidents/{id}")
    assert api.get(INCIDENTS).status_code == 200
    assert api.get(f"{INCIDENTS}/{incident.id}").get_json()["metadata"] == {"keep": True}


def test_a_valid_surrogate_pair_is_fine(api) -> None:
    response = api.post(
        INCIDENTS, data='{"title": "pager \\ud83d\\udcdf"}', content_type="application/json"
    )
    assert response.status_code == 201
    assert response.get_json()["title"] == "pager \U0001f4df"


@pytest.mark.parametrize("levels", [500, 50_000])
def test_a_deep_workflow_definition_is_422_at_definition(api, team, levels) -> None:
    definition = '{"nodes": ' + "[" * levels + "]" * levels + "}"
    head = json.dumps({"name": "Deep", "scopeType": "team", "teamId": team.id})[:-1]
    raw = head + ', "definition": ' + definition + "}"
    with nothing_saved():
        response = api.post("/api/v1/workflows", data=raw, content_type="application/json")
    error = error_of(response, 422, "validation_error")
    assert locs(error) == ["definition"]


def test_nul_in_a_workflow_definition_is_422_where_it_is(api, team) -> None:
    definition = json.loads(json.dumps(SIMPLE_DEFINITION))
    definition["nodes"][1]["data"]["name"] = "No\x00tify"
    body = {"name": "N", "scopeType": "team", "teamId": team.id, "definition": definition}
    with nothing_saved():
        response = api.post("/api/v1/workflows", json=body)
    error = error_of(response, 422, "validation_error")
    assert locs(error) == ["definition.nodes[1].data.name"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents/%00",
        "/api/v1/incidents/a%00b",
        "/api/v1/incidents/a%00b/events",
        "/api/v1/incidents/a%00b/runs",
        "/api/v1/runs/a%00b",
        "/api/v1/workflows/a%00b",
        "/api/v1/workflows/a%00b/runs",
        "/api/v1/workflows/a%00b/versions",
        "/api/v1/workflows/a%00b/secrets",
    ],
)
def test_a_nul_in_an_id_is_404(api, path) -> None:
    error_of(api.get(path), 404, "not_found")


def test_a_nul_in_a_state_change_id_is_404(api) -> None:
    with nothing_changes():
        error_of(api.post(f"{INCIDENTS}/x%00/acknowledge"), 404, "not_found")


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("q=a%00b", "query.q"),
        ("service=%00", "query.service"),
        ("team=%00", "query.team"),
        ("%00=1", "query.\\u0000"),
    ],
)
def test_a_nul_in_a_query_is_422_at_the_parameter(api, query, loc, assert_documented) -> None:
    response = api.get(f"{INCIDENTS}?{query}")
    assert locs(error_of(response, 422, "validation_error")) == [loc]
    assert_documented(response, "GET", "/incidents")
    assert locs(error_of(api.get(f"/api/v1/workflows?{query}"), 422, "validation_error")) == [loc]


def test_metadata_null_is_422_and_the_incident_keeps_its_metadata(api, incident) -> None:
    # Found by the fuzzer: null was stored, and the response (then every read) failed.
    with nothing_changes():
        response = api.patch(f"{INCIDENTS}/{incident.id}", json={"metadata": None})
    assert locs(error_of(response, 422, "validation_error")) == ["metadata"]
    assert api.get(f"{INCIDENTS}/{incident.id}").get_json()["metadata"] == {"keep": True}
