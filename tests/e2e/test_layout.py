"""Every page fits its viewport, on a desktop (1366×900) and a phone (390×844).

No page is wider than the window (tables scroll inside their frame or stack), no
card's content spills out of the card, and on a phone the main navigation
collapses behind a menu button that opens without JavaScript.
"""

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

# The page's width, and each card (or main) whose content is wider than itself.
MEASURE = """() => {
  const spill = [];
  for (const el of document.querySelectorAll("main, .card, section, .two-columns > *")) {
    if (el.scrollWidth > el.clientWidth + 1) {
      spill.push(`${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth}>${el.clientWidth}`);
    }
  }
  return {width: document.documentElement.scrollWidth, viewport: innerWidth, spill};
}"""


@pytest.fixture
def site(live_app: Flask, webhook_receiver: WebhookReceiver) -> Site:
    """A workflow that ran on an incident, templates, versions: every page has content."""
    return populate(live_app, webhook_receiver)


def fits(page: Any, path: str) -> str | None:
    response = page.goto(path)
    assert response is not None and response.status < 500, path
    page.wait_for_load_state("networkidle")
    measured = page.evaluate(MEASURE)
    if measured["width"] > measured["viewport"] or measured["spill"]:
        width, viewport = measured["width"], measured["viewport"]
        return f"{path}: page {width}px in {viewport}px; {measured['spill']}"
    return None


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_page_is_wider_than_the_viewport(
    browser: Any, live_server: LiveServer, site: Site, viewport: dict[str, int]
) -> None:
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        problems = [fits(page, "/sign-in")]
        sign_in_as(page, "ada@example.com")
        problems += [fits(page, path) for path in site.pages.values()]
        assert [p for p in problems if p] == []
        if viewport == DESKTOP:
            # On a desktop the incident's runs table fits its column without scrolling.
            page.goto(site.pages["incident"])
            frame = page.locator("#incident-runs .table-scroll")
            expect(frame).to_be_visible()
            assert frame.evaluate("f => f.scrollWidth <= f.clientWidth"), "runs table scrolls"
    finally:
        context.close()


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
