"""The navigation on a desktop (1366×900) and a phone (390×844): on a phone it collapses
behind a menu button that opens without JavaScript. (That every page fits its viewport is
checked in test_every_page.py, in the same pass as accessibility.)"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.e2e.site import Site, populate
from tests.fakes.servers import WebhookReceiver
from tests.fixtures.browser import LiveServer, sign_in_as

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
NAV = ["Home", "Incidents", "Workflows", "Templates", "Runs", "Users", "Teams", "Audit log"]


@pytest.fixture
def site(live_app: Flask, webhook_receiver: WebhookReceiver) -> Site:
    """A workflow that ran on an incident, templates, versions: every page has content."""
    return populate(live_app, webhook_receiver)


def test_the_phone_menu_opens_without_javascript(
    browser: Any, live_server: LiveServer, site: Site
) -> None:
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, java_script_enabled=False
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        sign_in_as(page, "ada@example.com")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Incidents")).to_be_hidden()
        page.get_by_text("Menu").click()
        for name in NAV + ["Profile"]:
            link = nav.get_by_role("link", name=name, exact=True)
            expect(link).to_be_visible()
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        nav.get_by_role("link", name="Runs", exact=True).click()
        page.wait_for_url("**/runs")
    finally:
        context.close()


def test_the_desktop_nav_shows_every_item_without_a_menu(
    browser: Any, live_server: LiveServer, site: Site
) -> None:
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    try:
        sign_in_as(page, "ada@example.com")
        expect(page.get_by_text("Menu")).to_be_hidden()
        nav = page.get_by_role("navigation", name="Main")
        for name in NAV:
            expect(nav.get_by_role("link", name=name, exact=True)).to_be_in_viewport()
    finally:
        context.close()
