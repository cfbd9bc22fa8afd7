"""Templates: built-in install, gallery, use, save as, edit and retire."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask

from app.auth.models import User
from app.extensions import db
from app.workflows.enums import ScopeType, TemplateCategory
from app.workflows.models import Workflow, WorkflowVersion
from app.workflows.templates_builtin import (
    BUILTIN_TEMPLATES,
    SYSTEM_USER_EMAIL,
    install_builtin_templates,
)
from tests.conftest import csrf_token_from


@pytest.fixture
def cli_registered(app: Flask) -> None:
    """The workflow commands, registered as app.cli.register_cli does."""
    if "templates" not in app.cli.commands:  # type: ignore[attr-defined]
        from app.workflows.cli import register

        register(app)


@pytest.fixture
def member(make_user, team, sign_in):
    """A member of ``team``, signed in."""
    user = make_user("member@example.com", teams=[team])
    sign_in(user.email)
    return user


@pytest.fixture
def admin(make_user, sign_in):
    """An admin, signed in."""
    user = make_user("admin@example.com", admin=True)
    sign_in(user.email)
    return user


@pytest.fixture
def installed(app):
    """The built-in templates, installed."""
    install_builtin_templates()
    db.session.commit()


def template(key: str) -> Workflow:
    return db.session.scalar(sa.select(Workflow).where(Workflow.template_key == key))


def count_templates() -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Workflow).where(Workflow.is_template.is_(True))
    )


# --- built-in install -------------------------------------------------------------


def test_install_creates_every_builtin_template_once(app):
    assert install_builtin_templates() == len(BUILTIN_TEMPLATES)
    db.session.commit()
    assert install_builtin_templates() == 0
    db.session.commit()
    assert count_templates() == len(BUILTIN_TEMPLATES)
    rows = db.session.scalars(sa.select(Workflow).where(Workflow.is_template.is_(True))).all()
    for row in rows:
        assert row.scope_type == ScopeType.GLOBAL and not row.is_enabled
        assert row.definition["id"] == row.id and row.version == 1
        assert row.template_category is not None and row.template_key
    per_category = {c: sum(r.template_category == c for r in rows) for c in TemplateCategory}
    assert min(per_category.values()) >= 3
    author = db.session.scalar(sa.select(User).where(User.email == SYSTEM_USER_EMAIL))
    assert author and not author.is_active and author.password_hash is None
    assert not author.is_admin
    versions = db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowVersion))
    assert versions == len(BUILTIN_TEMPLATES)


def test_a_retired_builtin_template_is_never_installed_again(app, installed):
    retired = template("jira-p1")
    retired.retired_at = retired.created_at
    db.session.commit()
    assert install_builtin_templates() == 0
    db.session.commit()
    assert count_templates() == len(BUILTIN_TEMPLATES)


def test_install_adds_only_the_missing_ones(app, installed):
    missing = template("slack-resolved")
    db.session.delete(missing)
    db.session.commit()
    assert install_builtin_templates() == 1
    db.session.commit()
    assert template("slack-resolved") is not None


def test_the_install_command_is_idempotent(app, runner, cli_registered):
    first = runner.invoke(args=["templates", "install"])
    assert first.exit_code == 0, first.output
    assert f"Installed {len(BUILTIN_TEMPLATES)} of {len(BUILTIN_TEMPLATES)}" in first.output
    second = runner.invoke(args=["templates", "install"])
    assert second.exit_code == 0 and "already installed" in second.output
    db.session.rollback()
    assert count_templates() == len(BUILTIN_TEMPLATES)


# --- gallery ----------------------------------------------------------------------


def test_gallery_groups_templates_by_category_with_pictures(client, member, installed):
    page = client.get("/workflows/templates").text
    headings = re.findall(r"<h2 id=\"cat-\d\">([^<]+)</h2>", page)
    assert headings == ["Ticketing", "Communication", "Auto-resolution"]
    sections = page.split('<section class="wf-gallery-section"')[1:]
    assert "Jira issue for P1 incidents" in sections[0]
    assert "Slack message with the Jira key on new incidents" in sections[1]
    assert "Remediate, wait 10 minutes" in sections[2]
    assert page.count('class="card wf-card"') == len(BUILTIN_TEMPLATES)
    assert page.count("wf-graph--compact") == len(BUILTIN_TEMPLATES)
    assert "Needs the secrets jira_api_token, jira_base_url, jira_email." in sections[0]
    assert "Edit or retire" not in page, "members do not manage templates"


def test_retired_templates_leave_the_gallery_and_cannot_be_used(client, member, installed, team):
    retired = template("jira-p1")
    retired.retired_at = retired.created_at
    db.session.commit()
    assert (
        "Use template: Jira issue for P1 incidents" not in client.get("/workflows/templates").text
    )
    assert client.get(f"/workflows/templates/{retired.id}/use").status_code == 404


# --- use a template ----------------------------------------------------------------


def test_use_template_creates_a_disabled_team_workflow_and_opens_the_editor(
    client, member, team, installed
):
    source = template("linear-escalation")
    page = client.get(f"/workflows/templates/{source.id}/use").text
    assert "<svg" in page and f'<option selected value="{team.id}">' in page
    response = client.post(
        f"/workflows/templates/{source.id}/use",
        data={
            "csrf_token": csrf_token_from(page),
            "name": "Escalations to Linear",
            "owner": team.id,
        },
    )
    assert response.status_code == 303
    created = db.session.scalar(sa.select(Workflow).where(Workflow.is_template.is_(False)))
    assert response.location.endswith(f"/workflows/{created.id}/edit")
    assert created.name == "Escalations to Linear" and created.team_id == team.id
    assert not created.is_enabled and not created.is_template and created.template_key is None
    assert created.template_category == TemplateCategory.TICKETING
    assert created.definition["nodes"] == source.definition["nodes"]
    note = db.session.scalar(
        sa.select(WorkflowVersion.change_note).where(WorkflowVersion.workflow_id == created.id)
    )
    assert note == f"Created from template {source.name}"


def test_use_template_flashes_what_must_be_filled(client, member, team, installed):
    source = template("remediate-then-escalate")
    page = client.get(f"/workflows/templates/{source.id}/use").text
    client.post(
        f"/workflows/templates/{source.id}/use",
        data={"csrf_token": csrf_token_from(page), "name": "Fix it", "owner": team.id},
    )
    # The flash is shown on the next page, whichever it is.
    shown = client.get("/workflows").text
    assert "Fill in the highlighted fields before enabling" in shown
    assert "nodes[1].data.config.url (your remediation endpoint)" in shown


def test_a_member_cannot_use_a_template_globally(client, member, installed):
    source = template("jira-p1")
    page = client.get(f"/workflows/templates/{source.id}/use").text
    assert 'value="global"' not in page
    response = client.post(
        f"/workflows/templates/{source.id}/use",
        data={"csrf_token": csrf_token_from(page), "name": "Everyone", "owner": "global"},
    )
    assert response.status_code == 403
    assert "Only admins can create global workflows" in response.text
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Workflow).where(Workflow.is_template.is_(False))
        )
        == 0
    )


def test_an_admin_can_use_a_template_globally(client, admin, installed):
    source = template("pagerduty-p1-p2")
    page = client.get(f"/workflows/templates/{source.id}/use").text
    response = client.post(
        f"/workflows/templates/{source.id}/use",
        data={"csrf_token": csrf_token_from(page), "name": "Page", "owner": "global"},
    )
    assert response.status_code == 303
    created = db.session.scalar(sa.select(Workflow).where(Workflow.name == "Page"))
    assert created.scope_type == ScopeType.GLOBAL and not created.is_enabled


def test_a_normal_workflow_is_not_a_template(client, member, team, make_workflow):
    workflow = make_workflow(team=team)
    assert client.get(f"/workflows/templates/{workflow.id}/use").status_code == 404


# --- admins manage templates ---------------------------------------------------------


def test_an_admin_saves_a_workflow_as_a_template(client, admin, make_team, make_workflow):
    workflow = make_workflow(team=make_team("Ops"), name="Handy workflow")
    page = client.get(f"/workflows/{workflow.id}/save-as-template").text
    response = client.post(
        f"/workflows/{workflow.id}/save-as-template",
        data={"csrf_token": csrf_token_from(page), "name": "Handy", "category": "Communication"},
    )
    assert response.status_code == 303 and response.location.endswith("/workflows/templates")
    saved = db.session.scalar(sa.select(Workflow).where(Workflow.is_template.is_(True)))
    assert saved.name == "Handy" and saved.template_category == TemplateCategory.COMMUNICATION
    gallery = client.get("/workflows/templates").text
    assert "Handy" in gallery.split('id="cat-2"')[1].split("<section")[0]


def test_members_cannot_manage_templates(client, member, team, installed, make_workflow):
    workflow = make_workflow(team=team)
    page = client.get(f"/workflows/{workflow.id}/save-as-template")
    assert page.status_code == 403
    token = csrf_token_from(page.text)
    response = client.post(
        f"/workflows/{workflow.id}/save-as-template",
        data={"csrf_token": token, "name": "Mine", "category": "Ticketing"},
    )
    assert response.status_code == 403
    source = template("jira-p1")
    assert client.get(f"/workflows/templates/{source.id}/edit").status_code == 403
    response = client.post(
        f"/workflows/templates/{source.id}/edit",
        data={"csrf_token": token, "name": "Hacked", "description": "x", "category": "Ticketing"},
    )
    assert response.status_code == 403
    response = client.post(f"/workflows/templates/{source.id}/retire", data={"csrf_token": token})
    assert response.status_code == 403
    db.session.rollback()
    source = template("jira-p1")
    assert source.name == "Jira issue for P1 incidents" and source.retired_at is None
    assert count_templates() == len(BUILTIN_TEMPLATES)


def test_an_admin_edits_a_template_as_a_new_version(client, admin, installed):
    source = template("slack-resolved")
    page = client.get(f"/workflows/templates/{source.id}/edit").text
    response = client.post(
        f"/workflows/templates/{source.id}/edit",
        data={
            "csrf_token": csrf_token_from(page),
            "name": "Resolved: tell Slack",
            "description": "Posts to Slack when an incident is resolved.",
            "category": "Auto-resolution",
        },
    )
    assert response.status_code == 303
    db.session.rollback()
    edited = template("slack-resolved")
    assert (edited.name, edited.version) == ("Resolved: tell Slack", 2)
    assert edited.definition["name"] == "Resolved: tell Slack"
    assert edited.definition["description"] == "Posts to Slack when an incident is resolved."
    assert edited.template_category == TemplateCategory.AUTO_RESOLUTION


def test_a_blank_template_name_is_refused_next_to_the_field(client, admin, installed):
    source = template("slack-resolved")
    page = client.get(f"/workflows/templates/{source.id}/edit").text
    response = client.post(
        f"/workflows/templates/{source.id}/edit",
        data={
            "csrf_token": csrf_token_from(page),
            "name": " ",
            "description": "x",
            "category": "Ticketing",
        },
    )
    assert response.status_code == 422
    assert re.search(r'id="name-error"><p>[^<]+', response.text)
    db.session.rollback()
    assert template("slack-resolved").version == 1


def test_an_admin_retires_a_template(client, admin, installed):
    source = template("teams-p1-p2")
    page = client.get(f"/workflows/templates/{source.id}/edit").text
    response = client.post(
        f"/workflows/templates/{source.id}/retire", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 303
    db.session.rollback()
    assert template("teams-p1-p2").retired_at is not None
    gallery = client.get("/workflows/templates").text
    assert "retired: it is no longer offered" in gallery  # the flash
    assert "Use template: Microsoft Teams message" not in gallery
    assert "Use template: PagerDuty page" in gallery
