"""A team member builds a branching workflow in the editor, fixes an error and saves twice."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.auth.models import Team, User
from app.extensions import db
from app.workflows import service
from app.workflows.models import Workflow
from tests.builders import add_node, apply, htmx_settled
from tests.fixtures.browser import sign_in_as


@pytest.fixture
def workflow_id(live_app: Flask) -> str:
    """A new team workflow of Mia's (a manual trigger, nothing else), made by the service."""
    with live_app.app_context():
        mia = db.session.scalar(sa.select(User).where(User.email == "mia@example.com"))
        team = db.session.scalar(sa.select(Team).where(Team.name == "Payments"))
        workflow = service.create_workflow(
            mia,
            name="Escalate stale P1s",
            description="Waits, then pages if still open.",
            scope="team",
            team_id=team.id,
        )
        db.session.commit()
        workflow_id: str = workflow.id
        db.session.remove()
    return workflow_id


def stored(live_app: Flask, workflow_id: str) -> Workflow:
    with live_app.app_context():
        workflow = db.session.get(Workflow, workflow_id)
        assert workflow is not None
        db.session.expunge(workflow)
        db.session.remove()
        return workflow


def test_build_branches_fix_an_error_and_save_twice(page, live_app, workflow_id) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{workflow_id}/edit")
    node = page.locator("#node-panel")
    expect(node.get_by_role("heading")).to_have_text("Trigger: Run by hand")

    # A condition after the trigger, then a delay on its true branch and a webhook on false.
    add_node(page, "condition", after="trigger")
    expect(node.get_by_role("heading")).to_contain_text("Condition")
    expect(page).to_have_url(re.compile(r"\?node=condition_1$"))
    htmx_settled(page)
    node.get_by_label("Name").fill("Still open?")
    node.get_by_label("Incident field").fill("status")
    node.get_by_label("Equals").fill("TRIGGERED")
    apply(page)
    expect(page.locator("#edges-panel")).to_contain_text("Run by hand → Still open?")

    add_node(page, "delay", after="condition_1", branch="true")
    expect(node.get_by_role("heading")).to_contain_text("Delay")
    add_node(page, "webhook", after="condition_1", branch="false")
    expect(node.get_by_role("heading")).to_contain_text("Webhook")
    edges = page.locator("#edges-panel .editor-edge-list")
    expect(edges).to_contain_text("Still open? → Wait 10 minutes if true")
    expect(edges).to_contain_text("Still open? → Call a webhook if false")
    expect(page.locator("#graph-panel svg .wf-node-link")).to_have_count(4)

    # Variables are checked while typing ...
    htmx_settled(page)
    body = node.get_by_label("JSON body")
    body.fill('{"title": "{{ incident.titel }}"}')
    expect(page.locator("#node-body-live")).to_contain_text("'incident' has no field 'titel'")
    body.fill('{"title": {{ incident.title | tojson }}}')
    expect(page.locator("#node-body-live")).to_be_empty()

    # ... and a wrong URL is explained next to the field; fixing it clears the error.
    node.get_by_label("URL").fill("hooks.example.com/page")
    apply(page)
    expect(page.locator("#node-url-error")).to_contain_text("must start with http://")
    expect(node.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    node.get_by_label("URL").fill("https://hooks.example.com/page")
    apply(page)
    expect(page.locator("#node-url-error")).to_have_count(0)
    expect(page.locator("#problems-panel")).to_contain_text("No problems")

    htmx_settled(page)
    page.get_by_label("Change note (optional)").fill("Branch on status")
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator(".flash")).to_contain_text("Saved as v2.")
    assert stored(live_app, workflow_id).version == 2

    # Change a node picked in the picture, and save again.
    htmx_settled(page)
    page.locator('#graph-panel a.wf-node-link[data-node-id="delay_1"]').click()
    expect(node.get_by_role("heading")).to_contain_text("Delay")
    expect(page).to_have_url(re.compile(r"\?node=delay_1$"))
    htmx_settled(page)
    node.get_by_label("Wait (minutes)").fill("30")
    apply(page)
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes, based on v2")
    page.reload()  # the draft survives a reload, and the selected node with it
    expect(node.get_by_label("Wait (minutes)")).to_have_value("30")
    htmx_settled(page)
    page.get_by_role("button", name="Save as version 3").click()
    expect(page.locator(".flash")).to_contain_text("Saved as v3.")

    saved = stored(live_app, workflow_id)
    assert saved.version == 3
    delay = next(n for n in saved.definition["nodes"] if n["id"] == "delay_1")
    assert delay["data"]["durationMinutes"] == 30
    handles = {e.get("sourceHandle") for e in saved.definition["edges"]}
    assert handles == {None, "true", "false"}
