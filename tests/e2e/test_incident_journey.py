"""A responder signs in, opens an incident, acknowledges and resolves it, and sees it all."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.fixtures.browser import sign_in_as


def test_open_acknowledge_resolve_and_read_the_timeline(page) -> None:
    sign_in_as(page, "mia@example.com")
    expect(page.get_by_test_id("incidents")).to_have_text("0")

    page.get_by_role("link", name="Incidents").click()
    page.get_by_role("link", name="Open an incident").click()
    page.get_by_label("Title").fill("Checkout returns 502")
    page.get_by_label("Priority").select_option("P1")
    page.get_by_label("Service").fill("checkout")
    page.get_by_label("Metadata (JSON object)").fill('{"region": "eu-west-1"}')
    page.get_by_role("button", name="Open incident").click()

    expect(page.get_by_role("heading", name="Checkout returns 502")).to_be_visible()
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("li.event")).to_have_count(1)
    expect(timeline).to_contain_text("Incident created")

    # htmx swaps the detail in place: the URL does not change, the timeline grows.
    url = page.url
    page.get_by_role("button", name="Acknowledge").click()
    expect(timeline.locator("li.event")).to_have_count(2)
    expect(timeline.locator("li.event").first).to_contain_text("TRIGGERED → ACKNOWLEDGED")
    expect(timeline.locator("li.event").first).to_contain_text("by Mia Member")

    page.get_by_role("button", name="Resolve").click()
    expect(timeline.locator("li.event")).to_have_count(3)
    expect(timeline.locator("li.event").first).to_contain_text("ACKNOWLEDGED → RESOLVED")
    assert page.url == url
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()

    # A full reload shows the same history from the database.
    page.reload()
    expect(page.get_by_test_id("timeline").locator("li.event")).to_have_count(3)
    expect(page.locator(".incident-head")).to_contain_text(re.compile("Resolved", re.I))


def test_a_field_error_is_shown_next_to_the_field(page) -> None:
    sign_in_as(page, "mia@example.com")
    page.goto("/incidents/new")
    page.get_by_label("Title").fill("Bad metadata")
    page.get_by_label("Metadata (JSON object)").fill("[1, 2]")
    page.get_by_role("button", name="Open incident").click()
    expect(page.locator("#metadata-error")).to_contain_text("must be a JSON object")
    expect(page.get_by_label("Metadata (JSON object)")).to_have_attribute("aria-invalid", "true")
