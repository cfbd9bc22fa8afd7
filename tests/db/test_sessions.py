"""Sessions end on the server: a copied session cookie stops working after sign-out, a
password change (every other session ends, the changing one goes on) and a reset."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_token_from

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def sign_in_client(app: Flask) -> Callable[..., FlaskClient]:
    """Factory: a new client, signed in through the form."""

    def make(email: str, password: str = "correct horse battery") -> FlaskClient:
        client = app.test_client()
        page = client.get("/sign-in")
        response = client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
        )
        assert response.status_code == 303
        return client

    return make


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another client holding a copy of the client's session cookie."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(name, cookie.value)
    return thief


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/profile")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def post_form(client: FlaskClient, url: str, **data: str):
    token = csrf_token_from(client.get("/profile").text)
    return client.post(url, data={"csrf_token": token, **data})


def test_a_copied_cookie_fails_after_sign_out(app, make_user, sign_in_client) -> None:
    make_user("mia@example.com")
    client = sign_in_client("mia@example.com")
    copy = copy_of(app, client)
    assert signed_in(copy)
    assert post_form(client, "/sign-out").status_code == 303
    assert not signed_in(client)
    assert not signed_in(copy)


def test_a_password_change_ends_every_other_session(app, make_user, sign_in_client) -> None:
    make_user("mia@example.com")
    client = sign_in_client("mia@example.com")
    copy = copy_of(app, client)
    elsewhere = sign_in_client("mia@example.com")
    response = post_form(
        client,
        "/profile/password",
        current_password="correct horse battery",
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )
    assert response.status_code == 303, response.text
    assert signed_in(client)
    assert not signed_in(copy)
    assert not signed_in(elsewhere)
    assert signed_in(sign_in_client("mia@example.com", NEW_PASSWORD))


def test_a_failed_password_change_ends_nothing(app, make_user, sign_in_client) -> None:
    make_user("mia@example.com")
    client = sign_in_client("mia@example.com")
    elsewhere = sign_in_client("mia@example.com")
    response = post_form(
        client,
        "/profile/password",
        current_password="not the password",
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )
    assert response.status_code == 422
    assert signed_in(client) and signed_in(elsewhere)


def test_a_password_reset_by_an_admin_ends_the_users_sessions(
    app, make_user, sign_in_client
) -> None:
    user = make_user("mia@example.com")
    make_user("ada@example.com", admin=True)
    mia = sign_in_client("mia@example.com")
    admin = sign_in_client("ada@example.com")
    token = csrf_token_from(admin.get(f"/admin/users/{user.id}/reset-password").text)
    response = admin.post(f"/admin/users/{user.id}/reset-password", data={"csrf_token": token})
    assert response.status_code == 200, response.status_code
    assert not signed_in(mia)
    assert signed_in(admin)


def test_a_session_from_before_session_versions_must_sign_in_again(app, make_user) -> None:
    user = make_user("mia@example.com")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.id  # the old format: the id alone
        session["_fresh"] = True
    assert not signed_in(client)
