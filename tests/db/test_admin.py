"""Admin pages: users (create, deactivate, reset password) and teams (create, members)."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from app.auth import tokens
from app.auth.models import Team, TeamMembership, User
from app.extensions import db
from tests.builders import database_text, hx_post, post, sign_in_status, signed_in
from tests.factories import PASSWORD

ONE_TIME_PASSWORD = re.compile(r'data-testid="one-time-password">([^<]+)<')


@pytest.fixture
def admin(make_user) -> User:
    """An admin user."""
    return make_user("admin@example.com", admin=True, first_name="Ada", last_name="Admin")


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def user_by_email(email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == email))


# -- who may come in -----------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client) -> None:
    for url in ("/admin/users", "/admin/users/new", "/admin/teams", "/admin/teams/new"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/sign-in" in response.headers["Location"]


def test_a_member_gets_403_on_every_admin_page_and_post(app, admin, make_user, make_team) -> None:
    team = make_team("Payments")
    other = make_user("other@example.com")
    member = make_user("member@example.com", teams=[team])
    client = signed_in(app, "member@example.com")
    pages = [
        "/admin/users",
        "/admin/users/new",
        f"/admin/users/{other.id}/reset-password",
        "/admin/teams",
        "/admin/teams/new",
        f"/admin/teams/{team.id}",
    ]
    posts = [
        (
            "/admin/users/new",
            {"email": "new@example.com", "first_name": "N", "last_name": "U", "is_admin": "y"},
        ),
        (f"/admin/users/{other.id}/deactivate", {}),
        (f"/admin/users/{other.id}/reactivate", {}),
        (f"/admin/users/{other.id}/reset-password", {}),
        ("/admin/teams/new", {"name": "Sneaky"}),
        (f"/admin/teams/{team.id}/members", {"user_id": other.id}),
        (f"/admin/teams/{team.id}/members/{member.id}/remove", {}),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "This page is for admins" in response.text
    for url, data in posts:
        assert post(client, url, data).status_code == 403, url
        assert hx_post(client, url, data).status_code == 403, url

    db.session.expire_all()
    assert count(User) == 3 and count(Team) == 1
    assert other.is_active and other.check_password(PASSWORD)
    assert [m.email for m in team.members] == ["member@example.com"]


# -- users ---------------------------------------------------------------------------------


def test_admin_creates_a_user_who_signs_in_with_the_one_time_password(
    app, admin, make_team, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    payments, platform = make_team("Payments"), make_team("Platform")
    client = signed_in(app, admin.email)
    form = client.get("/admin/users/new")
    assert form.status_code == 200 and "Payments" in form.text

    response = post(
        client,
        "/admin/users/new",
        {
            "email": "  New.Person@Example.com ",
            "first_name": "New",
            "last_name": "Person",
            "phone": "+44 20 7946 0002",
            "team_ids": [payments.id],
        },
    )

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    password = ONE_TIME_PASSWORD.search(response.text).group(1)
    assert len(password) >= 12
    user = user_by_email("new.person@example.com")
    assert user is not None and user.full_name == "New Person" and not user.is_admin
    assert user.phone == "+44 20 7946 0002"
    assert [t.name for t in user.teams] == ["Payments"]
    assert platform not in user.teams

    assert signed_in(app, "new.person@example.com", password).get("/").status_code == 200
    # Shown once: nowhere else, not stored in plain, not logged.
    listing = client.get("/admin/users")
    assert "new.person@example.com" in listing.text and password not in listing.text
    assert password not in database_text()
    assert password not in caplog.text


def test_duplicate_email_in_another_case_is_refused_next_to_the_field(
    app, admin, make_user
) -> None:
    make_user("taken@example.com")
    client = signed_in(app, admin.email)

    response = post(
        client,
        "/admin/users/new",
        {"email": "Taken@EXAMPLE.com", "first_name": "Dup", "last_name": "Licate"},
    )

    assert response.status_code == 422
    assert "A user with this email address already exists." in response.text
    email_input = re.search(r"<input[^>]*name=\"email\"[^>]*>", response.text).group(0)
    assert 'aria-invalid="true"' in email_input
    assert 'aria-describedby="email-error"' in email_input
    assert 'id="email-error"' in response.text
    assert 'value="Dup"' in response.text  # what was typed is kept
    assert count(User) == 2
    assert 'data-testid="one-time-password"' not in response.text


def test_a_user_form_with_bad_fields_is_refused_with_each_error_at_its_field(app, admin) -> None:
    client = signed_in(app, admin.email)

    response = post(
        client,
        "/admin/users/new",
        {"email": "not an email", "first_name": "", "last_name": "X", "phone": "call me"},
    )

    assert response.status_code == 422
    for field in ("email", "first_name", "phone"):
        assert f'id="{field}-error"' in response.text, field
    assert 'id="last_name-error"' not in response.text
    assert count(User) == 1


def test_deactivating_a_user_ends_their_session_and_stops_their_sign_in_and_tokens(
    app, admin, make_user
) -> None:
    user = make_user("leaving@example.com")
    _token, plain = tokens.create_token(user, "script")
    db.session.commit()
    their_browser = signed_in(app, "leaving@example.com")
    assert their_browser.get("/").status_code == 200
    admin_browser = signed_in(app, admin.email)

    response = post(admin_browser, f"/admin/users/{user.id}/deactivate")

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/users")
    again = their_browser.get("/")
    assert again.status_code == 302 and "/sign-in" in again.headers["Location"]
    assert sign_in_status(app, "leaving@example.com", PASSWORD) == 422
    db.session.rollback()  # see what the requests committed in their own sessions
    assert tokens.authenticate(plain) is None
    assert "Deactivated" in admin_browser.get("/admin/users").text

    assert post(admin_browser, f"/admin/users/{user.id}/reactivate").status_code == 303
    assert sign_in_status(app, "leaving@example.com", PASSWORD) == 303
    db.session.rollback()
    assert tokens.authenticate(plain) is not None


def test_an_admin_cannot_deactivate_themselves(app, admin) -> None:
    client = signed_in(app, admin.email)
    assert f"/admin/users/{admin.id}/deactivate" not in client.get("/admin/users").text

    response = post(client, f"/admin/users/{admin.id}/deactivate")

    assert response.status_code == 403
    assert "You cannot deactivate your own account" in response.text
    db.session.expire_all()
    assert admin.is_active
    assert client.get("/admin/users").status_code == 200


def test_resetting_a_password_shows_a_new_one_time_password_once(app, admin, make_user) -> None:
    user = make_user("forgetful@example.com")
    client = signed_in(app, admin.email)
    confirm = client.get(f"/admin/users/{user.id}/reset-password")
    assert confirm.status_code == 200 and "forgetful@example.com" in confirm.text

    response = post(client, f"/admin/users/{user.id}/reset-password")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = ONE_TIME_PASSWORD.search(response.text).group(1)
    assert sign_in_status(app, "forgetful@example.com", PASSWORD) == 422
    assert sign_in_status(app, "forgetful@example.com", password) == 303
    assert password not in client.get("/admin/users").text
    assert password not in client.get(f"/admin/users/{user.id}/reset-password").text
    assert password not in database_text()


def test_unknown_users_and_teams_are_404(app, admin, make_team) -> None:
    team = make_team("Payments")
    client = signed_in(app, admin.email)
    assert client.get("/admin/teams/no-such-team").status_code == 404
    assert client.get("/admin/users/no-such-user/reset-password").status_code == 404
    for url in (
        "/admin/users/no-such-user/deactivate",
        "/admin/users/no-such-user/reactivate",
        "/admin/users/no-such-user/reset-password",
        "/admin/teams/no-such-team/members",
        f"/admin/teams/{team.id}/members/{admin.id}/remove",  # not a member
        f"/admin/teams/{team.id}/members/no-such-user/remove",
    ):
        assert post(client, url, {"user_id": admin.id}).status_code == 404, url


# -- teams ---------------------------------------------------------------------------------


def test_admin_creates_a_team_and_a_duplicate_name_is_refused(app, admin) -> None:
    client = signed_in(app, admin.email)

    response = post(
        client, "/admin/teams/new", {"name": " Payments ", "chat_channel": "#payments-oncall"}
    )

    assert response.status_code == 303
    team = db.session.scalar(sa.select(Team))
    assert team.name == "Payments" and team.chat_channel == "#payments-oncall"
    assert response.headers["Location"] == f"/admin/teams/{team.id}"
    page = client.get(response.headers["Location"])
    assert "Payments" in page.text and "#payments-oncall" in page.text

    duplicate = post(client, "/admin/teams/new", {"name": "payments"})
    assert duplicate.status_code == 422
    assert "A team with this name already exists." in duplicate.text
    assert 'aria-describedby="name-error"' in duplicate.text
    assert count(Team) == 1


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "Ops", "chat_channel": "payments oncall"}, "chat_channel"),
    ],
)
def test_a_bad_team_is_refused_at_its_field(app, admin, fields, error_field) -> None:
    client = signed_in(app, admin.email)
    response = post(client, "/admin/teams/new", fields)
    assert response.status_code == 422
    assert f'id="{error_field}-error"' in response.text
    assert count(Team) == 0


def test_teams_list_shows_member_counts(app, admin, make_team, make_user) -> None:
    payments, _platform = make_team("Payments"), make_team("Platform")
    make_user(teams=[payments])
    make_user(teams=[payments])
    client = signed_in(app, admin.email)

    page = client.get("/admin/teams").text

    counts = re.findall(r'data-testid="member-count">(\d+)<', page)
    assert counts == ["2", "0"]  # Payments, Platform (by name)


def test_add_and_remove_a_member_with_plain_posts(app, admin, make_team, make_user) -> None:
    team = make_team("Payments")
    alice = make_user("alice@example.com", first_name="Alice", last_name="Nguyen")
    client = signed_in(app, admin.email)
    assert "alice@example.com" in client.get(f"/admin/teams/{team.id}").text

    added = post(client, f"/admin/teams/{team.id}/members", {"user_id": alice.id})

    assert added.status_code == 303
    assert added.headers["Location"] == f"/admin/teams/{team.id}"
    assert db.session.get(TeamMembership, (team.id, alice.id)) is not None
    assert "Alice Nguyen joined Payments." in client.get(added.headers["Location"]).text

    removed = post(client, f"/admin/teams/{team.id}/members/{alice.id}/remove")

    assert removed.status_code == 303
    db.session.expire_all()
    assert db.session.get(TeamMembership, (team.id, alice.id)) is None


def test_add_and_remove_a_member_in_place_with_htmx(app, admin, make_team, make_user) -> None:
    team = make_team("Payments")
    alice = make_user("alice@example.com", first_name="Alice", last_name="Nguyen")
    client = signed_in(app, admin.email)

    added = hx_post(client, f"/admin/teams/{team.id}/members", {"user_id": alice.id})

    assert added.status_code == 200
    assert "<html" not in added.text and added.text.lstrip().startswith('<section id="members"')
    assert "Alice Nguyen joined Payments." in added.text
    assert f'id="member-{alice.id}"' in added.text
    assert "HX-Request" in added.headers["Vary"]
    assert db.session.get(TeamMembership, (team.id, alice.id)) is not None

    removed = hx_post(client, f"/admin/teams/{team.id}/members/{alice.id}/remove")

    assert removed.status_code == 200
    assert "<html" not in removed.text and 'id="members"' in removed.text
    assert f'id="member-{alice.id}"' not in removed.text
    assert "Alice Nguyen left Payments." in removed.text
    db.session.expire_all()
    assert db.session.get(TeamMembership, (team.id, alice.id)) is None


def test_only_active_users_not_yet_in_the_team_can_be_added(
    app, admin, make_team, make_user
) -> None:
    team = make_team("Payments")
    member = make_user("member@example.com", teams=[team])
    gone = make_user("gone@example.com", is_active=False)
    client = signed_in(app, admin.email)
    choices = client.get(f"/admin/teams/{team.id}").text.split('name="user_id"', 1)[1]
    assert "admin@example.com" in choices
    assert "member@example.com" not in choices.split("</select>")[0]
    assert "gone@example.com" not in choices

    for user_id, message in (
        (member.id, "is already in Payments."),
        (gone.id, "Choose an active user."),
        ("", "Choose a user to add."),
    ):
        response = hx_post(client, f"/admin/teams/{team.id}/members", {"user_id": user_id})
        assert response.status_code == 422
        assert "<html" not in response.text and message in response.text
        assert 'aria-invalid="true"' in response.text
        plain = post(client, f"/admin/teams/{team.id}/members", {"user_id": user_id})
        assert plain.status_code == 422 and "<html" in plain.text and message in plain.text
    assert count(TeamMembership) == 1
