"""The profile page: details, changing one's own password, API tokens shown once."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from app.auth import tokens
from app.auth.models import ApiToken, User
from app.extensions import db
from tests.builders import database_text, hx_post, post, sign_in_status, signed_in
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD

NEW_TOKEN = re.compile(r'data-testid="new-token"[^>]*>([^<]+)<')
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def alice(make_user, make_team) -> User:
    """A member of Payments."""
    return make_user(
        "alice@example.com",
        first_name="Alice",
        last_name="Nguyen",
        phone="+44 20 7946 0001",
        teams=[make_team("Payments")],
    )


def token_rows(user: User) -> list[ApiToken]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)))


def test_the_profile_needs_sign_in(client) -> None:
    response = client.get("/profile")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    token = csrf_token_from(client.get("/sign-in").text)
    refused = client.post("/profile/tokens", data={"name": "x", "csrf_token": token})
    assert refused.status_code == 302 and "/sign-in" in refused.headers["Location"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_the_profile_shows_the_users_details(app, alice) -> None:
    page = signed_in(app, alice.email).get("/profile")
    assert page.status_code == 200
    for text in ("Alice Nguyen", "alice@example.com", "+44 20 7946 0001", "Payments", "Member"):
        assert text in page.text


# -- password ------------------------------------------------------------------------------


def test_changing_the_password_needs_the_current_one(app, alice) -> None:
    client = signed_in(app, alice.email)

    response = post(
        client,
        "/profile/password",
        {
            "current_password": "not my password",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 422
    assert "The current password is not right." in response.text
    field = re.search(r'<input[^>]*name="current_password"[^>]*>', response.text).group(0)
    assert 'aria-invalid="true"' in field and "current_password-error" in field
    assert NEW_PASSWORD not in response.text  # password fields are not echoed back
    assert sign_in_status(app, alice.email, PASSWORD) == 303
    assert sign_in_status(app, alice.email, NEW_PASSWORD) == 422


@pytest.mark.parametrize(
    ("new", "confirm", "error_field", "message"),
    [
        ("short pass", "short pass", "new_password", "Choose a password of 12 to"),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "confirm_password", "does not match"),
        (PASSWORD, PASSWORD, "new_password", "different from the current one"),
    ],
)
def test_a_weak_or_mistyped_new_password_is_refused(
    app, alice, new, confirm, error_field, message
) -> None:
    client = signed_in(app, alice.email)
    response = post(
        client,
        "/profile/password",
        {"current_password": PASSWORD, "new_password": new, "confirm_password": confirm},
    )
    assert response.status_code == 422
    assert f'id="{error_field}-error"' in response.text and message in response.text
    db.session.expire_all()
    assert alice.check_password(PASSWORD)


def test_changing_the_password_with_the_current_one(app, alice) -> None:
    client = signed_in(app, alice.email)

    response = post(
        client,
        "/profile/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 303 and response.headers["Location"] == "/profile"
    assert "Your password is changed." in client.get("/profile").text
    assert sign_in_status(app, alice.email, NEW_PASSWORD) == 303
    assert sign_in_status(app, alice.email, PASSWORD) == 422
    assert NEW_PASSWORD not in database_text()


# -- API tokens ----------------------------------------------------------------------------


def test_a_new_token_is_shown_once_works_and_is_not_stored(app, alice, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = signed_in(app, alice.email)

    response = post(client, "/profile/tokens", {"name": "Alertmanager"})

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    plain = NEW_TOKEN.search(response.text).group(1)
    assert tokens.authenticate(plain) == alice
    [row] = token_rows(alice)
    assert row.name == "Alertmanager" and plain.startswith(row.prefix)

    again = client.get("/profile")
    assert plain not in again.text and 'data-testid="new-token"' not in again.text
    assert "Alertmanager" in again.text and f"{row.prefix}…" in again.text
    assert plain not in database_text()
    assert plain not in caplog.text


def test_a_token_created_with_htmx_comes_back_in_the_tokens_fragment(app, alice) -> None:
    client = signed_in(app, alice.email)

    response = hx_post(client, "/profile/tokens", {"name": "CI"})

    assert response.status_code == 201
    assert response.text.lstrip().startswith('<section id="tokens"')
    assert "<html" not in response.text
    plain = NEW_TOKEN.search(response.text).group(1)
    assert tokens.authenticate(plain) == alice
    assert plain not in client.get("/profile").text


def test_a_token_needs_a_name(app, alice) -> None:
    client = signed_in(app, alice.email)
    for send in (post, hx_post):
        response = send(client, "/profile/tokens", {"name": "   "})
        assert response.status_code == 422
        assert 'id="name-error"' in response.text and "Give the token a name." in response.text
    assert token_rows(alice) == []


def test_revoking_a_token_makes_it_fail(app, alice) -> None:
    _token, first = tokens.create_token(alice, "first")
    second_token, second = tokens.create_token(alice, "second")
    db.session.commit()
    client = signed_in(app, alice.email)
    first_id = _token.id

    plain_revoke = post(client, f"/profile/tokens/{first_id}/revoke")

    assert plain_revoke.status_code == 303 and plain_revoke.headers["Location"] == "/profile"
    db.session.rollback()  # see what the request committed in its own session
    assert tokens.authenticate(first) is None
    assert tokens.authenticate(second) == alice

    hx_revoke = hx_post(client, f"/profile/tokens/{second_token.id}/revoke")

    assert hx_revoke.status_code == 200
    assert "<html" not in hx_revoke.text and 'id="tokens"' in hx_revoke.text
    assert "Token second is revoked" in hx_revoke.text
    db.session.rollback()
    assert tokens.authenticate(second) is None
    assert all(row.revoked_at is not None for row in token_rows(alice))


def test_someone_elses_token_cannot_be_revoked(app, alice, make_user) -> None:
    bob = make_user("bob@example.com")
    bobs_token, plain = tokens.create_token(bob, "bob's script")
    db.session.commit()
    client = signed_in(app, alice.email)

    assert post(client, f"/profile/tokens/{bobs_token.id}/revoke").status_code == 404
    assert hx_post(client, f"/profile/tokens/{bobs_token.id}/revoke").status_code == 404
    assert post(client, "/profile/tokens/no-such-token/revoke").status_code == 404

    assert tokens.authenticate(plain) == bob
    assert "bob&#39;s script" not in client.get("/profile").text
