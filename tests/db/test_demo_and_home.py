"""Demo data loads idempotently; the home page proves the database works for the signed-in user."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.auth.models import Team, TeamMembership, User
from app.demo import ADMIN_EMAIL
from app.extensions import db
from app.incidents.models import Incident
from app.workflows.models import Workflow
from app.workflows.templates_builtin import BUILTIN_TEMPLATES, SYSTEM_USER_EMAIL
from tests.conftest import csrf_token_from


def counts() -> tuple[int, ...]:
    """People, teams, memberships, incidents, templates (the templates' system author aside)."""
    people = sa.select(sa.func.count()).select_from(User).where(User.email != SYSTEM_USER_EMAIL)
    return (
        db.session.scalar(people),
        *(
            db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Team, TeamMembership, Incident)
        ),
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Workflow).where(Workflow.is_template.is_(True))
        ),
    )


def test_demo_load_creates_data_once_and_prints_the_password_once(runner, monkeypatch) -> None:
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    password = re.search(r"with password: (\S+)", first.output).group(1)
    assert counts() == (5, 2, 4, 6, len(BUILTIN_TEMPLATES))
    assert f"Installed {len(BUILTIN_TEMPLATES)} built-in workflow templates" in first.output
    admin = db.session.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
    assert admin.is_admin and admin.check_password(password)

    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0
    assert "nothing changed" in second.output and "password" not in second.output
    assert "Installed" not in second.output
    assert counts() == (5, 2, 4, 6, len(BUILTIN_TEMPLATES))
    assert admin.check_password(password)  # unchanged


def test_demo_password_can_come_from_the_environment(app, runner) -> None:
    app.config["DEMO_PASSWORD"] = "a demo password from env"  # INCIDENTFLOW_DEMO_PASSWORD
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0 and "a demo password from env" not in result.output
    alice = db.session.scalar(sa.select(User).where(User.email == "alice@example.com"))
    assert alice.check_password("a demo password from env")
    assert [t.name for t in alice.teams] == ["Payments"]


def test_home_requires_sign_in(client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client, sign_in_through_form, make_user, real_password_hashing
) -> None:
    make_user("someone@example.com")
    response = sign_in_through_form("someone@example.com", "wrong password")
    assert response.status_code == 422
    assert "Email or password is not right." in response.text
    response = sign_in_through_form("nobody@example.com", "wrong password")
    assert response.status_code == 422
    assert client.get("/").status_code == 302


def test_sign_in_without_csrf_token_is_refused(client, make_user) -> None:
    make_user("someone@example.com")
    response = client.post(
        "/sign-in", data={"email": "someone@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_deactivated_users_cannot_sign_in(sign_in_through_form, make_user, client) -> None:
    make_user("gone@example.com", is_active=False)
    assert sign_in_through_form("gone@example.com").status_code == 422


def test_passwords_are_stored_as_scrypt_hashes_and_signed_in_with(
    client, sign_in_through_form, make_user, real_password_hashing
) -> None:
    user = make_user("someone@example.com")
    assert user.password_hash.startswith("scrypt:")
    assert "correct horse battery" not in user.password_hash
    response = sign_in_through_form("someone@example.com")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:x"])
def test_sign_in_never_redirects_off_site(client, make_user, target) -> None:
    make_user("someone@example.com")
    page = client.get("/sign-in")
    response = client.post(
        f"/sign-in?next={target}",
        data={
            "email": "someone@example.com",
            "password": "correct horse battery",
            "csrf_token": csrf_token_from(page.text),
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_home_counts_what_a_member_may_see(
    client, sign_in, make_user, make_team, make_incident, make_workflow
) -> None:
    mine, theirs = make_team("Mine"), make_team("Theirs")
    member = make_user("member@example.com", teams=[mine])
    make_incident(team=mine)
    make_incident(team=mine, status="RESOLVED")
    make_incident(team=theirs)
    make_workflow(team=mine)
    make_workflow(team=theirs)
    make_workflow()  # global: visible to everyone

    sign_in(member.email)
    page = client.get("/")
    assert page.status_code == 200
    assert re.search(r'data-testid="open-incidents">1<', page.text)
    assert re.search(r'data-testid="incidents">2<', page.text)
    assert re.search(r'data-testid="workflows">2<', page.text)
    assert "Mine" in page.text


def test_admin_sees_everything_and_can_sign_out(client, sign_in, make_user, make_incident) -> None:
    make_incident()
    make_incident()
    admin = make_user("boss@example.com", admin=True)
    sign_in(admin.email)
    assert re.search(r'data-testid="incidents">2<', client.get("/").text)
    page = client.get("/")
    response = client.post("/sign-out", data={"csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 303
    assert client.get("/").status_code == 302
