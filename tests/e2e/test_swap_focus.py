"""After an htmx swap the user asked for, focus moves to the new content and a polite
live region announces it (static/js/swap-focus.js); keyboard only, no mouse."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.builders import htmx_settled
from tests.e2e.site import Site, populate
from tests.fakes.servers import WebhookReceiver
from tests.fixtures.browser import sign_in_as

FOCUSED_IN = "selector => document.querySelector(selector).contains(document.activeElement)"


@pytest.fixture
def site(live_app: Flask, webhook_receiver: WebhookReceiver) -> Site:
    """A workflow that ran on an incident."""
    return populate(live_app, webhook_receiver)


def test_acknowledging_moves_focus_into_the_new_detail_and_announces_it(
    page: Any, site: Site
) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(site.pages["incident"])
    htmx_settled(page)
    page.get_by_role("button", name="Acknowledge").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Resolve")).to_be_visible()
    htmx_settled(page)
    expect(page.locator("#live-region")).not_to_have_text("")
    assert page.evaluate("() => document.activeElement !== document.body")
    assert page.evaluate(FOCUSED_IN, "#incident-detail")


def test_adding_a_node_moves_focus_to_its_form(page: Any, site: Site) -> None:
    sign_in_as(page, "ada@example.com")
    page.goto(site.pages["editor"])
    htmx_settled(page)
    panel = page.locator("#add-node-panel")
    panel.get_by_label("After node").select_option("second")
    htmx_settled(page)
    panel.get_by_label("New node", exact=True).select_option("delay")
    panel.get_by_role("button", name="Add node").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#node-panel")).to_contain_text("Wait")
    htmx_settled(page)
    expect(page.locator("#live-region")).to_contain_text("updated")
    assert page.evaluate(FOCUSED_IN, "#node-panel")
    # From there the keyboard reaches the new node's first field.
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_IN, "#node-panel")
    assert page.evaluate("() => document.activeElement.matches('input, select, textarea')")


def test_a_refresh_nobody_asked_for_leaves_focus_alone(page: Any, site: Site) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto(site.pages["incident"])
    # The runs panel loads itself (hx-trigger="load") while focus is on the back link.
    page.get_by_role("link", name="← Incidents").focus()
    expect(page.locator("#incident-runs")).to_be_visible()
    htmx_settled(page)
    assert page.evaluate("() => document.activeElement.textContent") == "← Incidents"
    expect(page.locator("#live-region")).to_have_text("")
