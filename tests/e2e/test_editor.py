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
    node.get_by_label("Name", exact=True).fill("Still open?")
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


def test_two_tabs_editing_one_draft_keep_both_edits_or_show_the_conflict(
    page, live_app, workflow_id
) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{workflow_id}/edit")
    add_node(page, "webhook", after="trigger")
    expect(page).to_have_url(re.compile(r"\?node=webhook_1$"))
    tab_a = page
    tab_b = page.context.new_page()
    for tab in (tab_a, tab_b):
        tab.goto(f"/workflows/{workflow_id}/edit?node=webhook_1")
        htmx_settled(tab)

    # Different fields: A renames, then B (whose form still shows the old name) sets the URL.
    tab_a.locator("#node-panel").get_by_label("Name", exact=True).fill("Page the team")
    apply(tab_a)
    expect(tab_a.locator("#node-heading")).to_contain_text("Page the team")
    tab_b.locator("#node-panel").get_by_label("URL").fill("https://hooks.example.com/b")
    apply(tab_b)
    expect(tab_b.locator("#node-notice")).to_contain_text("kept together with yours")
    expect(tab_b.locator("#node-heading")).to_contain_text("Page the team")
    webhook = lambda: next(  # noqa: E731
        n for n in stored_draft(live_app, workflow_id)["nodes"] if n["id"] == "webhook_1"
    )
    assert webhook()["data"]["name"] == "Page the team"
    assert webhook()["data"]["config"]["url"] == "https://hooks.example.com/b"

    # The same field: A's form is stale now; its rename is refused, showing both values.
    tab_b.locator("#node-panel").get_by_label("Name", exact=True).fill("Name from B")
    apply(tab_b)
    expect(tab_b.locator("#node-heading")).to_contain_text("Name from B")
    tab_a.locator("#node-panel").get_by_label("Name", exact=True).fill("Name from A")
    apply(tab_a)
    conflict = tab_a.locator("#node-conflict")
    expect(conflict).to_contain_text("changed elsewhere")
    expect(conflict.get_by_role("row", name="Name")).to_contain_text("Name from B")
    expect(conflict.get_by_role("row", name="Name")).to_contain_text("Name from A")
    expect(tab_a.locator("#node-panel").get_by_label("Name", exact=True)).to_have_value(
        "Name from A"
    )
    assert webhook()["data"]["name"] == "Name from B"
    # Applying again keeps A's value; reloading would have taken B's.
    apply(tab_a)
    expect(tab_a.locator("#node-conflict")).to_have_count(0)
    expect(tab_a.locator("#node-heading")).to_contain_text("Name from A")
    assert webhook()["data"]["name"] == "Name from A"


def stored_draft(live_app: Flask, workflow_id: str) -> dict:
    from app.workflows.models import WorkflowDraft

    with live_app.app_context():
        draft = db.session.scalar(
            sa.select(WorkflowDraft).where(WorkflowDraft.workflow_id == workflow_id)
        )
        assert draft is not None
        definition: dict = draft.definition
        db.session.remove()
        return definition


def test_variables_insert_at_the_cursor_and_complete_after_braces(
    page, live_app, workflow_id
) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{workflow_id}/edit")
    add_node(page, "jira", after="trigger")
    add_node(page, "webhook", after="jira_1")
    expect(page).to_have_url(re.compile(r"\?node=webhook_1$"))
    htmx_settled(page)
    node = page.locator("#node-panel")
    body = node.get_by_label("JSON body")
    body.fill('{"key": , "title": 1}')
    body.focus()
    body.evaluate("el => el.setSelectionRange(8, 8)")  # just after '"key": '
    variables = page.locator("#editor-vars")
    # The earlier Jira step's result fields are listed, from the action's declared shape.
    insert = variables.get_by_role("button", name="{{ steps.jira_1.result.key }}")
    expect(insert).to_be_visible()
    expect(variables.get_by_role("button", name="{{ steps.jira_1.result.url }}")).to_be_visible()
    insert.click()
    expect(body).to_have_value('{"key": {{ steps.jira_1.result.key }}, "title": 1}')
    expect(body).to_be_focused()

    # Typing "{{" offers completions; arrow keys and Enter choose one.
    url = node.get_by_label("URL")
    url.fill("https://hooks.example.com/")
    url.press("End")
    url.type("{{ incident.ti")
    suggestions = page.locator("#template-suggestions [role=option]")
    expect(suggestions.first).to_have_text("incident.title")
    expect(url).to_have_attribute("aria-expanded", "true")
    url.press("Enter")
    expect(url).to_have_value("https://hooks.example.com/{{ incident.title }}")
    expect(page.locator("#template-suggestions")).to_have_count(0)
    url.press("End")
    url.type("?k={{ steps.jira_1.result.k")
    expect(suggestions.first).to_have_text("steps.jira_1.result.key")
    url.press("Escape")
    expect(page.locator("#template-suggestions")).to_have_count(0)


def test_test_this_draft_shows_the_requests_and_sends_nothing(
    page, live_app, workflow_id, webhook_receiver
) -> None:
    from app.incidents import service as incidents
    from app.incidents.enums import ChangeSource
    from app.incidents.schemas import IncidentCreate

    with live_app.app_context():
        mia = db.session.scalar(sa.select(User).where(User.email == "mia@example.com"))
        team = db.session.scalar(sa.select(Team).where(Team.name == "Payments"))
        for title in ("Checkout is down", "Refunds slow"):
            incidents.create_incident(
                incidents.Actor(mia, ChangeSource.API), IncidentCreate(title=title, team_id=team.id)
            )
        db.session.commit()
        db.session.remove()

    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{workflow_id}/edit")
    add_node(page, "webhook", after="trigger")
    htmx_settled(page)
    node = page.locator("#node-panel")
    node.get_by_label("URL").fill(f"{webhook_receiver.url}/hooks/test")
    apply(page)
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes")

    panel = page.locator("#test-panel")
    htmx_settled(page)
    panel.get_by_label("Find an incident").fill("refunds")
    expect(panel.locator("#draft-test-incidents")).to_contain_text("Refunds slow")
    expect(panel.locator("#draft-test-incidents")).not_to_contain_text("Checkout is down")
    htmx_settled(page)
    panel.get_by_role("radio", name=re.compile("Refunds slow")).check()
    panel.get_by_role("button", name="Test this draft").click()
    result = panel.locator("#draft-test-result")
    expect(result).to_contain_text("Your draft on “Refunds slow”: nothing was sent")
    request = result.locator(".draft-test-request")
    expect(request).to_contain_text(f"{webhook_receiver.url}/hooks/test")
    expect(request).to_contain_text("Refunds slow")  # the default body, rendered
    assert webhook_receiver.requests == []
    # The draft was tested, not the saved version (which has no webhook).
    assert stored(live_app, workflow_id).version == 1


def focus_by_tab(page, selector: str, limit: int = 80) -> None:
    """Press Tab (only the keyboard) until the element at ``selector`` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_add_a_node_and_an_edge_and_reach_the_new_form(
    page, live_app, workflow_id
) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{workflow_id}/edit")
    htmx_settled(page)

    # Add a delay after the trigger with the keyboard alone.
    focus_by_tab(page, "#add-kind")
    page.keyboard.press("End")  # the last kind: Delay
    expect(page.locator("#add-kind")).to_have_value("delay")
    focus_by_tab(page, "#add-node-panel button[type=submit]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?node=delay_1$"))
    # The focus lands in the new node's form, ready to type.
    name = page.locator("#node-panel #node-name")
    expect(name).to_be_focused()
    expect(name).to_have_value("Wait 10 minutes")
    htmx_settled(page)  # the panels the add refreshes have arrived (as a user sees them)
    expect(name).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#node-duration_minutes")).to_be_focused()
    page.keyboard.type("5")  # Tab selected the old value: this replaces it
    page.keyboard.press("Enter")  # applies the form
    expect(page.locator("#node-heading")).to_contain_text("Wait 5 minutes")

    # Then an edge: a webhook branch from the trigger, connected from the delay.
    htmx_settled(page)
    focus_by_tab(page, "#add-after")
    page.keyboard.press("Home")  # after the trigger (the form comes back for that node)
    expect(page.locator("#add-after")).to_have_value("trigger")
    htmx_settled(page)
    focus_by_tab(page, "#add-kind")
    page.keyboard.press("Home")  # Webhook call
    focus_by_tab(page, "#add-placement")
    page.keyboard.press("End")  # as a new branch
    expect(page.locator("#add-placement")).to_have_value("branch")
    focus_by_tab(page, "#add-node-panel button[type=submit]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?node=webhook_1$"))
    expect(page.locator("#node-panel #node-name")).to_be_focused()
    htmx_settled(page)
    focus_by_tab(page, "#edge-source")
    page.keyboard.type("w")  # the first node whose name starts with W: "Wait 5 minutes"
    expect(page.locator("#edge-source")).to_have_value("delay_1")
    htmx_settled(page)
    expect(page.locator("#edge-target")).to_have_value("webhook_1")  # the only valid one
    focus_by_tab(page, "#add-edge-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#edges-panel")).to_contain_text("Wait 5 minutes → Call a webhook")


def test_switching_the_trigger_type_back_restores_its_settings(page, live_app, workflow_id) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{workflow_id}/edit")
    node = page.locator("#node-panel")
    htmx_settled(page)
    node.get_by_label("Starts when").select_option("state_changed")
    expect(node.get_by_label("To status")).to_be_visible()
    # The draft did not change: only the form did (the name follows the settings shown).
    assert not draft_exists(live_app, workflow_id)
    htmx_settled(page)
    node.get_by_label("To status").select_option("RESOLVED")
    apply(page)
    expect(page.locator("#node-heading")).to_contain_text("Incident becomes resolved")

    htmx_settled(page)
    node.get_by_label("Starts when").select_option("age")
    expect(node.get_by_label("Older than (minutes)")).to_be_visible()
    expect(node.get_by_label("To status")).to_have_count(0)
    htmx_settled(page)
    node.get_by_label("Starts when").select_option("state_changed")
    expect(node.get_by_label("To status")).to_have_value("RESOLVED")
    assert stored_draft(live_app, workflow_id)["trigger"]["stateTransition"] == {"to": "RESOLVED"}


def draft_exists(live_app: Flask, workflow_id: str) -> bool:
    from app.workflows.models import WorkflowDraft

    with live_app.app_context():
        found = db.session.scalar(
            sa.select(WorkflowDraft.id).where(WorkflowDraft.workflow_id == workflow_id)
        )
        db.session.remove()
        return found is not None
