"""Every failure is JSON with a stable code, a fitting status, and changes nothing."""

from __future__ import annotations

import io
import json

import pytest

from app.api.limits import API_MAX_BODY_BYTES, API_MAX_BODY_TEXT
from app.incidents.enums import IncidentStatus
from app.incidents.service import REFUSALS

from .conftest import nothing_changes

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


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], list)
    return error


def body_targets(incident) -> list[tuple[str, str]]:
    return [("POST", INCIDENTS), ("PATCH", f"{INCIDENTS}/{incident.id}")]


# --- 400: the body is not a JSON object -------------------------------------------------


@pytest.mark.parametrize(
    "raw", ['{"title": ', "{'title': 'x'}", "", '{"title": "x", "metadata": {"a": NaN]}}', "\xff"]
)
def test_malformed_json_is_400(api, incident, raw, assert_documented) -> None:
    for method, path in body_targets(incident):
        with nothing_changes():
            response = api.open(
                method, path, data=raw.encode("latin-1"), content_type="application/json"
            )
        error_of(response, 400, "malformed_json")
    assert_documented(response, "PATCH", "/incidents/{id}")


def test_json_nested_too_deeply_is_422_at_its_field(api, incident) -> None:
    # More on deep, NUL, surrogate and non-finite input in test_input_policy.
    raw = '{"title": "x", "metadata": {"a": ' + "[" * 20_000 + "]" * 20_000 + "}}"
    with nothing_changes():
        response = api.post(INCIDENTS, data=raw, content_type="application/json")
    assert error_of(response, 422, "validation_error")["details"][0]["loc"] == "metadata"


@pytest.mark.parametrize("value", [["title"], "title", 42, None, True])
def test_a_body_that_is_not_an_object_is_400(api, incident, value) -> None:
    for method, path in body_targets(incident):
        with nothing_changes():
            response = api.open(
                method, path, data=json.dumps(value), content_type="application/json"
            )
        error_of(response, 400, "body_not_object")


# --- 415: not sent as JSON ---------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_415(api, incident, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in body_targets(incident):
        with nothing_changes():
            response = api.open(method, path, data='{"title": "x"}', headers=headers)
        error_of(response, 415, "unsupported_content_type")


# --- 413: too large ----------------------------------------------------------------------


def test_a_body_over_the_api_limit_is_413(api, incident, assert_documented) -> None:
    # 600 KiB: under the app's 1 MiB form limit, so only the API's limit refuses it.
    raw = json.dumps({"title": "x", "description": "d" * 600 * 1024})
    for method, path in body_targets(incident):
        with nothing_changes():
            response = api.open(method, path, data=raw, content_type="application/json")
        error = error_of(response, 413, "body_too_large")
        assert API_MAX_BODY_TEXT in error["message"]
    assert_documented(response, "PATCH", "/incidents/{id}")


def test_a_body_just_under_the_api_limit_is_read(api) -> None:
    raw = json.dumps({"title": "x", "metadata": {"blob": "b" * (API_MAX_BODY_BYTES - 1024)}})
    response = api.post(INCIDENTS, data=raw, content_type="application/json")
    # Read and validated (metadata is limited to 16 KB), not refused for its size.
    assert error_of(response, 422, "validation_error")["details"][0]["loc"] == "metadata"


def test_an_oversized_body_without_content_length_is_413(api) -> None:
    raw = json.dumps({"title": "x", "description": "d" * 600 * 1024}).encode()
    with nothing_changes():
        response = api.post(
            INCIDENTS,
            input_stream=io.BytesIO(raw),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
    error_of(response, 413, "body_too_large")


def test_an_action_with_an_oversized_body_is_413(api, incident) -> None:
    with nothing_changes():
        response = api.post(
            f"{INCIDENTS}/{incident.id}/acknowledge",
            data="x" * (API_MAX_BODY_BYTES + 1024),
            content_type="application/json",
        )
    error_of(response, 413, "body_too_large")


# --- 422: fields that are not valid ------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ({"title": "x", "severity": "high"}, "severity", "Unknown field 'severity'; remove it."),
        ({"title": "x", "priority": "P9"}, "priority", "Use 'P1', 'P2', 'P3', 'P4' or 'P5'."),
        ({"title": "x" * 201}, "title", "Must be at most 200 characters (this has 201)."),
        ({"title": "x", "metadata": ["a", "b"]}, "metadata", "Expected a JSON object"),
        ({"title": "x", "metadata": "region=eu"}, "metadata", "Expected a JSON object"),
        ({"title": "x", "service": "a\nb"}, "service", "Must not contain line breaks"),
        ({"title": "   "}, "title", "This field must not be empty."),
        ({"description": "no title"}, "title", "This field is required."),
    ],
)
def test_invalid_fields_on_create_are_422_with_where_and_why(
    api, payload, loc, message, assert_documented
) -> None:
    with nothing_changes():
        response = api.post(INCIDENTS, json=payload)
    error = error_of(response, 422, "validation_error")
    assert len(error["details"]) == 1
    assert error["details"][0]["loc"] == loc
    assert message in error["details"][0]["message"]
    assert_documented(response, "POST", "/incidents")


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ({"status": "RESOLVED"}, "status", "Unknown field 'status'; remove it."),
        ({"teamId": "x"}, "teamId", "Unknown field 'teamId'; remove it."),
        ({"priority": "urgent"}, "priority", "Use 'P1', 'P2', 'P3', 'P4' or 'P5'."),
        ({"title": "x" * 201}, "title", "at most 200 characters"),
        ({"title": None}, "title", "This field cannot be empty."),
        ({"metadata": [1]}, "metadata", "Expected a JSON object"),
        ({"metadata": "x"}, "metadata", "Expected a JSON object"),
    ],
)
def test_invalid_fields_on_patch_are_422_and_change_nothing(
    api, incident, payload, loc, message
) -> None:
    with nothing_changes():
        response = api.patch(f"{INCIDENTS}/{incident.id}", json=payload)
    error = error_of(response, 422, "validation_error")
    assert [d["loc"] for d in error["details"]] == [loc]
    assert message in error["details"][0]["message"]


def test_every_problem_is_reported_at_once(api) -> None:
    response = api.post(INCIDENTS, json={"title": "", "priority": "P0", "extra": 1})
    error = error_of(response, 422, "validation_error")
    assert {d["loc"] for d in error["details"]} == {"title", "priority", "extra"}


def test_a_service_refusal_midway_saves_none_of_the_change(
    api, incident, make_user, make_team
) -> None:
    outsider = make_user(teams=[make_team()])
    with nothing_changes():
        # The service has already applied the new title when it refuses the assignee.
        response = api.patch(
            f"{INCIDENTS}/{incident.id}", json={"title": "Half", "assigneeId": outsider.id}
        )
    error = error_of(response, 422, "validation_error")
    assert error["details"] == [
        {
            "loc": "assigneeId",
            "message": "The assignee must be an active member of the incident's team.",
        }
    ]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"status": "OPEN"}, "query.status"),
        ({"priority": "P9"}, "query.priority"),
        ({"page": "0"}, "query.page"),
        ({"page": "two"}, "query.page"),
        ({"perPage": "101"}, "query.perPage"),
        ({"perPage": "0"}, "query.perPage"),
        ({"per_page": "10"}, "query.per_page"),
    ],
)
def test_bad_list_filters_are_422_at_the_query_parameter(
    api, query, loc, assert_documented
) -> None:
    response = api.get(INCIDENTS, query_string=query)
    error = error_of(response, 422, "validation_error")
    assert [d["loc"] for d in error["details"]] == [loc]
    assert_documented(response, "GET", "/incidents")


# --- 403 and 404: other teams ------------------------------------------------------------


def test_creating_an_incident_for_another_team_is_403(api, make_team, assert_documented) -> None:
    other = make_team("Search")
    with nothing_changes():
        response = api.post(INCIDENTS, json={"title": "Not mine", "teamId": other.id})
    error = error_of(response, 403, "forbidden")
    assert "Search" in error["message"]
    assert_documented(response, "POST", "/incidents")


ID_ROUTES = [
    ("GET", "", None),
    ("GET", "/events", None),
    ("PATCH", "", {"title": "Taken over"}),
    ("POST", "/acknowledge", None),
    ("POST", "/resolve", None),
    ("POST", "/reopen", None),
    ("POST", "/escalate", None),
    ("GET", "/runs", None),
    ("POST", "/runs", {"workflowId": "c000000000000000000000000"}),
]


@pytest.mark.parametrize(("method", "suffix", "payload"), ID_ROUTES)
def test_another_teams_incident_is_404_like_a_missing_one(
    api, make_incident, make_team, method, suffix, payload
) -> None:
    theirs = make_incident(team=make_team("Search"), status=IncidentStatus.RESOLVED)
    with nothing_changes():
        hidden = api.open(method, f"{INCIDENTS}/{theirs.id}{suffix}", json=payload)
        missing = api.open(method, f"{INCIDENTS}/c000000000000000000000000{suffix}", json=payload)
    error_of(hidden, 404, "not_found")
    assert hidden.get_json() == missing.get_json()
    assert hidden.status_code == missing.status_code


def test_every_id_route_is_checked_for_other_teams(app) -> None:
    id_routes = {
        (method, rule.rule.removeprefix(f"{INCIDENTS}/<id>"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(f"{INCIDENTS}/<id>")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert id_routes == {(method, suffix) for method, suffix, _ in ID_ROUTES}


# --- 409: transitions that make no sense -------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("resolve", IncidentStatus.RESOLVED),
        ("acknowledge", IncidentStatus.RESOLVED),
        ("acknowledge", IncidentStatus.ACKNOWLEDGED),
        ("reopen", IncidentStatus.TRIGGERED),
        ("reopen", IncidentStatus.ACKNOWLEDGED),
    ],
)
def test_an_invalid_transition_is_409_with_the_services_message(
    api, make_incident, team, action, status, assert_documented
) -> None:
    incident = make_incident(team=team, status=status)
    with nothing_changes():
        response = api.post(f"{INCIDENTS}/{incident.id}/{action}")
    error = error_of(response, 409, "invalid_transition")
    assert error["message"] == REFUSALS[(action, status)]
    assert_documented(response, "POST", f"/incidents/{{id}}/{action}")


def test_escalating_a_resolved_incident_is_409(api, make_incident, team) -> None:
    incident = make_incident(team=team, status=IncidentStatus.RESOLVED)
    with nothing_changes():
        response = api.post(f"{INCIDENTS}/{incident.id}/escalate")
    error = error_of(response, 409, "invalid_transition")
    assert error["message"] == "A resolved incident cannot be escalated. Reopen it first."


# --- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1", "/api/v1/incidents/x/archive"])
def test_an_unknown_api_url_is_a_json_404(client, path) -> None:
    error_of(client.get(path), 404, "not_found")
    error_of(client.post(path, json={}), 404, "not_found")


def test_a_wrong_method_is_a_json_405_with_allow(api, incident) -> None:
    response = api.open("DELETE", f"{INCIDENTS}/{incident.id}")
    error_of(response, 405, "method_not_allowed")
    assert {"GET", "PATCH"} <= set(response.headers["Allow"].split(", "))
    response = api.open("PUT", INCIDENTS, json={"title": "x"})
    error_of(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= set(response.headers["Allow"].split(", "))


def test_pages_outside_the_api_keep_their_html_404(client) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
