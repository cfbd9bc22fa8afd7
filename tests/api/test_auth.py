"""Bearer tokens are the only way in; every refusal is a JSON 401 with a Bearer challenge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.auth.models import ApiToken
from app.auth.tokens import revoke_token
from app.extensions import db

INCIDENTS = "/api/v1/incidents"


def assert_unauthorized(response, code: str) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def test_a_valid_token_is_accepted(make_team, make_user, api_as) -> None:
    user = make_user(teams=[make_team()])
    response = api_as(user).get(INCIDENTS)
    assert response.status_code == 200


def test_no_authorization_header_is_refused(client) -> None:
    assert_unauthorized(client.get(INCIDENTS), "authentication_required")


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer two words", "Token ifl_abc", "ifl_abc"],
)
def test_a_malformed_authorization_header_is_refused(client, header) -> None:
    assert_unauthorized(client.get(INCIDENTS, headers={"Authorization": header}), "invalid_token")


def test_an_unknown_token_is_refused(client, make_user, make_token) -> None:
    real = make_token(make_user())
    forged = real[:-4] + ("aaaa" if not real.endswith("aaaa") else "bbbb")
    response = client.get(INCIDENTS, headers={"Authorization": f"Bearer {forged}"})
    assert_unauthorized(response, "invalid_token")


def test_a_revoked_token_is_refused(client, make_user, make_token) -> None:
    user = make_user()
    plain = make_token(user)
    assert client.get(INCIDENTS, headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    revoke_token(user, token.id)
    db.session.commit()
    response = client.get(INCIDENTS, headers={"Authorization": f"Bearer {plain}"})
    assert_unauthorized(response, "invalid_token")


def test_a_deactivated_users_token_is_refused(client, make_user, make_token) -> None:
    user = make_user()
    plain = make_token(user)
    assert client.get(INCIDENTS, headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    user.is_active = False
    db.session.commit()
    response = client.get(INCIDENTS, headers={"Authorization": f"Bearer {plain}"})
    assert_unauthorized(response, "invalid_token")


def test_the_session_cookie_is_ignored(client, sign_in, make_user, make_team) -> None:
    user = make_user(teams=[make_team()])
    sign_in(user.email)
    assert client.get_cookie("session") is not None  # signed in, as for the pages
    assert_unauthorized(client.get(INCIDENTS), "authentication_required")
    assert_unauthorized(
        client.post(INCIDENTS, json={"title": "From a page"}), "authentication_required"
    )


def test_every_operation_but_the_document_needs_a_token(app, client, make_incident) -> None:
    incident = make_incident()
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
            continue
        path = rule.rule.replace("<id>", incident.id)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert_unauthorized(
                client.open(path, method=method, json={}), "authentication_required"
            )
            checked += 1
    assert checked == 35  # 29, the four replay operations and the two backtest ones
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_using_a_token_commits_its_last_used_time(client, make_user, make_token) -> None:
    user = make_user()
    plain = make_token(user)

    def last_used():
        with db.engine.connect() as conn:
            return conn.scalar(
                sa.select(ApiToken.__table__.c.last_used_at).where(
                    ApiToken.__table__.c.user_id == user.id
                )
            )

    assert last_used() is None
    assert client.get(INCIDENTS, headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    assert last_used() is not None


def test_last_used_time_is_written_at_most_once_a_minute(client, make_user, make_token) -> None:
    user = make_user()
    plain = make_token(user)
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get(INCIDENTS, headers=headers).status_code == 200
    table = ApiToken.__table__

    def last_used():
        with db.engine.connect() as conn:
            return conn.scalar(sa.select(table.c.last_used_at).where(table.c.user_id == user.id))

    first = last_used()
    assert client.get(INCIDENTS, headers=headers).status_code == 200
    assert last_used() == first  # a second call within the minute writes nothing
    with db.engine.begin() as conn:  # a minute later, it is written again
        conn.execute(
            table.update()
            .where(table.c.user_id == user.id)
            .values(last_used_at=first - timedelta(seconds=61))
        )
    assert client.get(INCIDENTS, headers=headers).status_code == 200
    assert last_used() > first - timedelta(seconds=61)


def test_a_revoked_token_is_refused_on_the_next_call(client, make_user, make_token) -> None:
    user = make_user()
    plain = make_token(user)
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get(INCIDENTS, headers=headers).status_code == 200
    with db.engine.begin() as conn:
        conn.execute(
            ApiToken.__table__.update()
            .where(ApiToken.__table__.c.user_id == user.id)
            .values(revoked_at=datetime.now(UTC))
        )
    assert_unauthorized(client.get(INCIDENTS, headers=headers), "invalid_token")
