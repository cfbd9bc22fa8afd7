"""Listing incidents: visibility, filters, newest first, pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.incidents.enums import IncidentPriority, IncidentStatus

INCIDENTS = "/api/v1/incidents"
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def teams(make_team):
    """Two teams: the API user's and another."""
    return make_team("Payments"), make_team("Search")


@pytest.fixture
def api(api_as, make_user, teams):
    """An API client for a member of Payments only."""
    return api_as(make_user(teams=[teams[0]]))


@pytest.fixture
def incidents(make_incident, teams):
    """Five Payments incidents a minute apart (oldest first) and one of Search."""
    payments, search = teams
    specs = [
        ("Checkout 500s", IncidentPriority.P1, IncidentStatus.TRIGGERED, "checkout"),
        ("Slow checkout", IncidentPriority.P2, IncidentStatus.ACKNOWLEDGED, "checkout"),
        ("Refunds stuck", IncidentPriority.P3, IncidentStatus.RESOLVED, "refunds"),
        ("CPU at 50%", IncidentPriority.P1, IncidentStatus.TRIGGERED, None),
        ("CPU at 50 percent", IncidentPriority.P4, IncidentStatus.TRIGGERED, "infra"),
    ]
    made = [
        make_incident(
            team=payments,
            title=title,
            priority=priority,
            status=status,
            service=service,
            created_at=START + timedelta(minutes=i),
        )
        for i, (title, priority, status, service) in enumerate(specs)
    ]
    made.append(make_incident(team=search, title="Checkout index", created_at=START))
    return made


def titles(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["title"] for item in response.get_json()["items"]]


def test_lists_the_users_teams_incidents_newest_first(api, incidents, assert_documented) -> None:
    response = api.get(INCIDENTS)
    assert_documented(response, "GET", "/incidents")
    assert titles(response) == [
        "CPU at 50 percent",
        "CPU at 50%",
        "Refunds stuck",
        "Slow checkout",
        "Checkout 500s",
    ]
    body = response.get_json()
    assert (body["page"], body["perPage"], body["total"], body["pages"]) == (1, 25, 5, 1)


def test_an_admin_sees_every_team(api_as, make_user, incidents) -> None:
    response = api_as(make_user(admin=True)).get(INCIDENTS)
    assert response.get_json()["total"] == 6
    assert "Checkout index" in titles(response)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "TRIGGERED"}, ["CPU at 50 percent", "CPU at 50%", "Checkout 500s"]),
        ({"priority": "P1"}, ["CPU at 50%", "Checkout 500s"]),
        ({"service": "checkout"}, ["Slow checkout", "Checkout 500s"]),
        ({"q": "CHECKOUT"}, ["Slow checkout", "Checkout 500s"]),
        ({"q": "50%"}, ["CPU at 50%"]),  # % is a literal, not a wildcard
        ({"q": "_"}, []),
        ({"status": "TRIGGERED", "priority": "P1", "q": "cpu"}, ["CPU at 50%"]),
        ({"status": ""}, None),  # an empty value is no filter
    ],
)
def test_filters(api, incidents, query, expected) -> None:
    response = api.get(INCIDENTS, query_string=query)
    if expected is None:
        assert response.get_json()["total"] == 5
    else:
        assert titles(response) == expected
        assert response.get_json()["total"] == len(expected)


def test_team_filter(api, incidents, teams) -> None:
    payments, search = teams
    assert len(titles(api.get(INCIDENTS, query_string={"team": payments.id}))) == 5
    # Another team's id finds nothing rather than another team's incidents.
    assert titles(api.get(INCIDENTS, query_string={"team": search.id})) == []


def test_pages(api, incidents) -> None:
    pages = [
        api.get(INCIDENTS, query_string={"perPage": 2, "page": page}).get_json()
        for page in (1, 2, 3, 4)
    ]
    assert [[i["title"] for i in page["items"]] for page in pages] == [
        ["CPU at 50 percent", "CPU at 50%"],
        ["Refunds stuck", "Slow checkout"],
        ["Checkout 500s"],
        [],
    ]
    assert {(page["total"], page["pages"], page["perPage"]) for page in pages} == {(5, 3, 2)}
    assert [page["page"] for page in pages] == [1, 2, 3, 4]


def test_per_page_may_be_100(api, incidents) -> None:
    response = api.get(INCIDENTS, query_string={"perPage": 100})
    assert response.get_json()["perPage"] == 100
