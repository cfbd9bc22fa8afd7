"""The whole authoring journey of a team member, in one browser session.

Mia starts from a gallery template, fills its blanks, adds its secret, grows
the graph with a condition (true and false branches) and a delay, sees a field
error and fixes it, saves, enables the workflow from the list, changes a node
and saves again, compares versions in the history and rolls back.

Versions as the app numbers them: using the template stores v1 (the template
with its blanks), the first save is v2, the second v3, and the rollback to v2
(the first version Mia saved) stores v4.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.auth.models import Team
from app.extensions import db
from app.workflows.models import Workflow, WorkflowActionSecret, WorkflowVersion
from app.workflows.templates_builtin import install_builtin_templates
from tests.builders import add_node, apply, htmx_settled
from tests.fixtures.browser import sign_in_as

TEMPLATE = "Health check when an incident is acknowledged"
NAME = "Payments health check"
SECRET_VALUE = "hc-token-5f1e9a7c0d"  # must never be shown back


@pytest.fixture
def templates(live_app: Flask) -> None:
    """The built-in templates, installed as the embedded setup would."""
    with live_app.app_context():
        assert install_builtin_templates() > 0
        db.session.commit()
        db.session.remove()


def stored_workflow(live_app: Flask) -> tuple[Workflow, dict[int, dict[str, Any]]]:
    """Mia's workflow as committed, and each version's definition by number."""
    with live_app.app_context():
        workflow = db.session.scalars(sa.select(Workflow).where(Workflow.name == NAME)).one()
        versions = {
            v.version: v.definition
            for v in db.session.scalars(
                sa.select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow.id)
            )
        }
        db.session.expunge(workflow)
        db.session.remove()
        return workflow, versions


def stored_secret_names(live_app: Flask, workflow_id: str) -> list[str]:
    with live_app.app_context():
        names = list(
            db.session.scalars(
                sa.select(WorkflowActionSecret.name).where(
                    WorkflowActionSecret.workflow_id == workflow_id
                )
            )
        )
        db.session.remove()
        return names


def payments_id(live_app: Flask) -> str:
    with live_app.app_context():
        team_id: str = db.session.scalars(sa.select(Team.id).where(Team.name == "Payments")).one()
        db.session.remove()
        return team_id


def without(definition: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A definition without the top-level ``version`` and the given settings keys."""
    data = {k: v for k, v in definition.items() if k != "version"}
    data["settings"] = {k: v for k, v in data["settings"].items() if k not in keys}
    return data


def test_template_to_rollback(page, live_app, templates) -> None:
    sign_in_as(page, "mia@example.com")
    node = page.locator("#node-panel")
    flash = page.locator(".flash")

    # --- the gallery: use a template into team Payments ---------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Workflow templates", level=1)).to_be_visible()
    card = page.locator("li.wf-card", has=page.get_by_role("heading", name=TEMPLATE))
    expect(card).to_contain_text("Needs the secret health_check_token.")
    card.get_by_role("link", name=f"Use template: {TEMPLATE}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Use the template “{TEMPLATE}”")
    expect(page.get_by_label("Name")).to_have_value(TEMPLATE)
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Belongs to").select_option(label="Team Payments")
    page.get_by_role("button", name="Create and open the editor").click()

    # --- the editor opens on v1 with the blanks highlighted -----------------------------
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit “{NAME}”")
    expect(flash).to_contain_text(f"{NAME} created from the template, disabled.")
    expect(flash).to_contain_text("Fill in the highlighted fields before enabling")
    fill_banner = page.locator("#problems-panel .editor-checklist")
    expect(fill_banner).to_contain_text("Webhook “Request a health check”")
    workflow, _ = stored_workflow(live_app)
    assert (workflow.version, workflow.team_id) == (1, payments_id(live_app))

    htmx_settled(page)
    fill_banner.get_by_role("link", name="Webhook “Request a health check”").click()
    expect(page).to_have_url(re.compile(r"\?node=health_check"))
    expect(node.get_by_role("heading")).to_have_text("Webhook: Request a health check")
    url_field = node.get_by_label("URL")
    expect(page.locator("#node-url-fill")).to_have_text("Fill in: your health-check endpoint")
    expect(url_field).to_have_value(re.compile(r"<<fill: your health-check endpoint>>"))
    htmx_settled(page)
    url_field.fill("https://hooks.example.com/payments/health")
    apply(page)
    expect(page.locator("#node-url-fill")).to_have_count(0)
    expect(page.locator("#problems-panel .editor-fill")).to_have_count(0)
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes, based on v1")

    # --- the secret it needs, through the secrets panel ---------------------------------
    htmx_settled(page)
    page.get_by_role("navigation", name="This workflow").get_by_role("link", name="Secrets").click()
    panel = page.locator("#secrets-panel")
    expect(page.locator("#secrets-missing")).to_contain_text("Missing: health_check_token.")
    row = panel.get_by_role("row", name=re.compile(r"^health_check_token"))
    expect(row).to_contain_text("Missing")
    panel.get_by_label("Name").fill("health_check_token")
    panel.get_by_label("Value").fill(SECRET_VALUE)
    panel.get_by_role("button", name="Save secret").click()
    expect(panel.get_by_role("status")).to_have_text("Secret health_check_token added.")
    expect(page.locator("#secrets-missing")).to_have_count(0)
    expect(panel.get_by_role("row", name=re.compile(r"^health_check_token"))).to_contain_text("Yes")
    expect(panel.get_by_label("Value")).to_have_value("")
    assert SECRET_VALUE not in page.content()
    page.reload()
    assert SECRET_VALUE not in page.content()

    # --- a condition with both branches, a delay, and a field error fixed ---------------
    page.get_by_role("navigation", name="This workflow").get_by_role("link", name="Editor").click()
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes, based on v1")
    add_node(page, "condition", after="health_check")
    expect(node.get_by_role("heading")).to_contain_text("Condition")
    htmx_settled(page)
    node.get_by_label("Name").fill("Still acknowledged?")
    node.get_by_label("Incident field").fill("status")
    node.get_by_label("Equals").fill("ACKNOWLEDGED")
    apply(page)
    expect(node.get_by_role("heading")).to_have_text("Condition: Still acknowledged?")

    add_node(page, "delay", after="condition_1", branch="true")
    expect(node.get_by_role("heading")).to_have_text("Delay: Wait 10 minutes")
    add_node(page, "webhook", after="condition_1", branch="false")
    expect(node.get_by_role("heading")).to_have_text("Webhook: Call a webhook")
    edges = page.locator("#edges-panel .editor-edge-list")
    expect(edges).to_contain_text("Request a health check → Still acknowledged?")
    expect(edges).to_contain_text("Still acknowledged? → Wait 10 minutes if true")
    expect(edges).to_contain_text("Still acknowledged? → Call a webhook if false")
    expect(page.locator("#graph-panel svg .wf-node-link")).to_have_count(5)

    htmx_settled(page)
    node.get_by_label("URL").fill("hooks.example.com/payments/reopened")
    apply(page)
    expect(page.locator("#node-url-error")).to_contain_text("must start with http://")
    expect(node.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#problems-panel")).to_contain_text("Webhook “Call a webhook”")
    node.get_by_label("URL").fill("https://hooks.example.com/payments/reopened")
    apply(page)
    expect(page.locator("#node-url-error")).to_have_count(0)
    expect(node.get_by_label("URL")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#problems-panel")).to_contain_text("No problems")

    # --- save: v2 -----------------------------------------------------------------------
    htmx_settled(page)
    page.get_by_label("Change note (optional)").fill("Filled in, branch on status")
    page.get_by_role("button", name="Save as version 2").click()
    expect(flash).to_contain_text("Saved as v2.")
    expect(page.locator("#draft-status")).to_have_text("No unsaved changes: this is version 2.")
    workflow, versions = stored_workflow(live_app)
    assert workflow.version == 2 and not workflow.is_enabled
    assert stored_secret_names(live_app, workflow.id) == ["health_check_token"]
    assert SECRET_VALUE not in repr(versions)

    # --- enable from the list, in place -------------------------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    switch = page.get_by_role("switch", name=f"Enabled: {NAME}")
    expect(switch).to_have_attribute("aria-checked", "false")
    list_url = page.url
    htmx_settled(page)
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch).to_have_text("On")
    expect(page.locator(f"#wf-{workflow.id} .wf-refusal")).to_have_count(0)
    assert page.url == list_url
    page.reload()  # it is stored, not just drawn
    expect(page.get_by_role("switch", name=f"Enabled: {NAME}")).to_have_attribute(
        "aria-checked", "true"
    )
    assert stored_workflow(live_app)[0].is_enabled

    # --- change a node and save again: v3 -----------------------------------------------
    expect(page.get_by_role("link", name=f"v2 of {NAME}: history")).to_contain_text("v2")
    page.get_by_role("link", name=NAME, exact=True).click()
    expect(page.locator("#enable-switch").get_by_role("switch")).to_have_attribute(
        "aria-checked", "true"
    )
    htmx_settled(page)
    page.locator('#graph-panel a.wf-node-link[data-node-id="delay_1"]').click()
    expect(node.get_by_role("heading")).to_have_text("Delay: Wait 10 minutes")
    htmx_settled(page)
    node.get_by_label("Wait (minutes)").fill("30")
    apply(page)
    # The generated name follows the setting (the node was never renamed).
    expect(node.get_by_role("heading")).to_have_text("Delay: Wait 30 minutes")
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes, based on v2")
    htmx_settled(page)
    page.get_by_label("Change note (optional)").fill("Wait longer")
    page.get_by_role("button", name="Save as version 3").click()
    expect(flash).to_contain_text("Saved as v3.")
    workflow, versions = stored_workflow(live_app)
    assert workflow.version == 3 and workflow.is_enabled

    # --- history and diffs ----------------------------------------------------------------
    page.get_by_role("navigation", name="This workflow").get_by_role(
        "link", name="Versions"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Versions of {NAME}")
    history = page.locator("table.wf-table tbody tr")
    expect(history).to_have_count(3)
    expect(history.nth(0)).to_contain_text("v3")
    expect(history.nth(0)).to_contain_text("current")
    expect(history.nth(0)).to_contain_text("Wait longer")
    expect(history.nth(1)).to_contain_text("Filled in, branch on status")
    expect(history.nth(2)).to_contain_text(f"Created from template {TEMPLATE}")

    # v1 → v2: the blank filled in and the three nodes added.
    page.get_by_role("link", name="Changes in v2").click()
    expect(page.get_by_role("heading", level=2).first).to_have_text("From v1 to v2")
    changed = page.locator(".wf-diff-item", has_text="health_check")
    expect(changed).to_contain_text("data.config.url")
    expect(changed.locator("code.wf-old")).to_contain_text("<<fill: your health-check endpoint>>")
    expect(changed.locator("code.wf-new")).to_contain_text("hooks.example.com/payments/health")
    added = page.locator("li.wf-change-added")
    for name in ("Still acknowledged?", "Wait 10 minutes", "Call a webhook"):
        expect(added.filter(has_text=name)).to_have_count(1)

    # v2 → v3, chosen with the compare form: the delay's duration.
    page.get_by_label("From version").select_option("2")
    page.get_by_label("to version").select_option("3")
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"from=2&to=3"))
    expect(page.get_by_role("heading", level=2).first).to_have_text("From v2 to v3")
    changed = page.locator(".wf-diff-item")
    expect(changed).to_have_count(1)
    expect(changed).to_contain_text("delay_1")
    duration = changed.get_by_role("row", name=re.compile("durationMinutes"))
    expect(duration.locator("code.wf-old")).to_have_text("10")
    expect(duration.locator("code.wf-new")).to_have_text("30")

    # --- roll back to v2 (the version before the change): v4 -----------------------------
    page.get_by_role("navigation", name="This workflow").get_by_role(
        "link", name="Versions"
    ).click()
    page.get_by_role("link", name="Roll back to v2").click()
    expect(page.locator("#rollback-question")).to_have_text(
        "Roll back to v2? This creates version v4 equal to v2."
    )
    page.get_by_role("button", name="Roll back to v2").click()
    expect(flash).to_contain_text("Rolled back to v2: saved as v4.")
    expect(history).to_have_count(4)
    expect(history.nth(0)).to_contain_text("v4")
    expect(history.nth(0)).to_contain_text("Rolled back to v2")

    page.get_by_role("link", name="v4", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{NAME}, version 4")
    definition_json = page.locator("pre.wf-json")
    expect(definition_json).to_contain_text('"durationMinutes": 10')
    expect(definition_json).not_to_contain_text('"durationMinutes": 30')

    workflow, versions = stored_workflow(live_app)
    assert workflow.version == 4 and workflow.is_enabled
    assert sorted(versions) == [1, 2, 3, 4]
    assert versions[4]["version"] == 4 and versions[4]["settings"]["enabled"] is True
    # Equal to v2 apart from the number, and the enabled flag, which the app copies from
    # the workflow row into every version it stores (v2 was saved while disabled).
    assert without(versions[4], "enabled") == without(versions[2], "enabled")
    assert without(versions[4], "enabled") != without(versions[3], "enabled")
    assert workflow.definition == versions[4]
