"""Idempotency-Key: a repeat answers the first response and changes nothing; another
request under the same key is refused; keys are per token owner and last 24 hours.
And every write builds its response before it commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.api import idempotency
from app.api.models import IdempotentRequest
from app.db import utcnow
from app.extensions import db
from app.incidents import service
from app.incidents.models import Incident, IncidentEvent

from .conftest import committed_rows, nothing_changes
from .test_errors import error_of

INCIDENTS = "/api/v1/incidents"
KEY = {"Idempotency-Key": "5f0c6c1e-1b7e-4c39-9f0e-2f6f4d7d8a11"}


@pytest.fixture
def team(make_team):
    """The API user's team."""
    return make_team("Payments")


@pytest.fixture
def member(make_user, team):
    """A member of ``team``."""
    return make_user("member@example.com", teams=[team])


@pytest.fixture
def api(api_as, member):
    """An API client for ``member``."""
    return api_as(member)


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_repeated_create_answers_the_first_response_and_creates_nothing(
    api, team, assert_documented
) -> None:
    body = {"title": "Disk full", "teamId": team.id}
    first = api.post(INCIDENTS, json=body, headers=KEY)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    with nothing_changes():
        again = api.post(INCIDENTS, json=body, headers=KEY)
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_documented(again, "POST", "/incidents")
    assert _count(Incident) == 1
    assert _count(IncidentEvent) == 1


def test_without_a_key_each_request_creates(api, team) -> None:
    body = {"title": "Disk full", "teamId": team.id}
    assert api.post(INCIDENTS, json=body).status_code == 201
    assert api.post(INCIDENTS, json=body).status_code == 201
    assert _count(Incident) == 2


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(
    api, team, assert_documented
) -> None:
    assert api.post(INCIDENTS, json={"title": "A", "teamId": team.id}, headers=KEY).status_code
    with nothing_changes():
        response = api.post(INCIDENTS, json={"title": "B", "teamId": team.id}, headers=KEY)
    error = error_of(response, 422, "idempotency_key_reused")
    assert "different request" in error["message"]
    assert error["details"][0]["loc"] == "header.Idempotency-Key"
    assert_documented(response, "POST", "/incidents")
    assert _count(Incident) == 1


def test_the_same_key_on_another_endpoint_is_refused(api, team) -> None:
    created = api.post(INCIDENTS, json={"title": "A", "teamId": team.id}, headers=KEY)
    incident_id = created.get_json()["id"]
    with nothing_changes():
        response = api.post(f"{INCIDENTS}/{incident_id}/acknowledge", headers=KEY)
    error_of(response, 422, "idempotency_key_reused")


def test_keys_belong_to_their_token_owner(api, api_as, make_user, team) -> None:
    other = api_as(make_user("other@example.com", teams=[team]))
    body = {"title": "Disk full", "teamId": team.id}
    first = api.post(INCIDENTS, json=body, headers=KEY)
    second = other.post(INCIDENTS, json=body, headers=KEY)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["id"] != second.get_json()["id"]
    assert "Idempotent-Replayed" not in second.headers


def test_a_key_is_forgotten_after_24_hours(api, team) -> None:
    body = {"title": "Disk full", "teamId": team.id}
    first = api.post(INCIDENTS, json=body, headers=KEY)
    stored = db.session.scalars(sa.select(IdempotentRequest)).one()
    stored.created_at = stored.created_at - idempotency.WINDOW - timedelta(seconds=1)
    db.session.commit()
    again = api.post(INCIDENTS, json=body, headers=KEY)
    assert again.status_code == 201
    assert again.get_json()["id"] != first.get_json()["id"]
    assert _count(IdempotentRequest) == 1


def test_a_failed_request_is_not_remembered(api, team) -> None:
    refused = api.post(INCIDENTS, json={"title": "", "teamId": team.id}, headers=KEY)
    assert refused.status_code == 422
    assert _count(IdempotentRequest) == 0
    fixed = api.post(INCIDENTS, json={"title": "Fixed", "teamId": team.id}, headers=KEY)
    assert fixed.status_code == 201


def test_a_repeated_state_change_answers_the_first_response(api, make_incident, team) -> None:
    incident = make_incident(team=team)
    path = f"{INCIDENTS}/{incident.id}/acknowledge"
    first = api.post(path, headers=KEY)
    assert first.status_code == 200
    with nothing_changes():
        again = api.post(path, headers=KEY)
    # Not 409 "already acknowledged": the retry gets what the first request got.
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert [e.type.value for e in db.session.scalars(sa.select(IncidentEvent))] == ["state_changed"]
    # Without the key, acknowledging again is the usual conflict.
    assert api.post(path).status_code == 409


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "é"])
def test_a_malformed_key_is_422_at_the_header(api, team, key, assert_documented) -> None:
    with nothing_changes():
        response = api.post(
            INCIDENTS,
            json={"title": "A", "teamId": team.id},
            headers={"Idempotency-Key": key},
        )
    error = error_of(response, 422, "validation_error")
    assert error["details"][0]["loc"] == "header.Idempotency-Key"
    assert_documented(response, "POST", "/incidents")


# SQLite runs one writer at a time: there, the second request waits, then replays.
@pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_concurrent_request_that_stored_the_key_first_wins(
    app, api, team, member, monkeypatch
) -> None:
    """The second of two concurrent requests rolls its change back and answers the first's."""
    real_create = service.create_incident
    stored_body = '{"stored": "by the first request"}'

    def create_while_another_request_commits(*args, **kwargs):
        with db.engine.begin() as conn:
            conn.execute(
                sa.insert(IdempotentRequest).values(
                    user_id=member.id,
                    key=KEY["Idempotency-Key"],
                    fingerprint=idempotency._fingerprint(),
                    method="POST",
                    path=INCIDENTS,
                    status_code=201,
                    body=stored_body,
                    location="/api/v1/incidents/first",
                    created_at=utcnow(),
                )
            )
        return real_create(*args, **kwargs)

    monkeypatch.setattr(service, "create_incident", create_while_another_request_commits)
    before = committed_rows()
    response = api.post(INCIDENTS, json={"title": "A", "teamId": team.id}, headers=KEY)
    assert response.status_code == 201
    assert response.text == stored_body
    assert response.headers["Location"] == "/api/v1/incidents/first"
    db.session.commit()
    assert committed_rows() == before


def test_a_response_that_cannot_be_built_leaves_nothing_committed(api, team, monkeypatch) -> None:
    """The response is built before the commit: if building it fails, nothing is stored."""
    from app.api import routes

    def broken(_incident):
        raise RuntimeError("cannot serialise")

    monkeypatch.setattr(routes, "incident_out", broken)
    before = committed_rows()
    with pytest.raises(RuntimeError):
        api.post(INCIDENTS, json={"title": "A", "teamId": team.id}, headers=KEY)
    db.session.rollback()
    assert committed_rows() == before
    assert _count(IdempotentRequest) == 0
