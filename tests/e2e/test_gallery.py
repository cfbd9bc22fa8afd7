"""The template gallery: cards in a row line up, previews are readable, and a search box
and a category filter work as a plain GET form (no JavaScript needed)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from app.workflows.templates_builtin import install_builtin_templates
from tests.fixtures.browser import LiveServer, sign_in_as


@pytest.fixture
def templates(live_app: Flask) -> None:
    """The built-in templates."""
    with live_app.app_context():
        assert install_builtin_templates() > 0
        db.session.commit()
        db.session.remove()


# Tops of the cards, grouped by row (cards whose tops differ by less than a card height).
ROWS = """() => [...document.querySelectorAll('.wf-cards')].map(list =>
  [...list.children].map(card => {
    const box = card.getBoundingClientRect();
    return {top: Math.round(box.top), left: Math.round(box.left), height: box.height};
  }))"""

# The smallest on-screen size of a node name in any preview, in CSS pixels.
SMALLEST_NAME = """() => Math.min(...[...document.querySelectorAll('.wf-card-picture svg')]
  .flatMap(svg => [...svg.querySelectorAll('.wf-node-name')])
  .map(text => text.getBoundingClientRect().height))"""


def test_cards_in_a_row_are_aligned_and_previews_readable(
    browser: Any, live_server: LiveServer, templates: None
) -> None:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        sign_in_as(page, "mia@example.com")
        page.goto("/workflows/templates")
        rows_checked = 0
        for cards in page.evaluate(ROWS):
            rows: dict[int, list[int]] = {}
            for card in cards:
                row = next((r for r in rows if abs(r - card["top"]) < 40), card["top"])
                rows.setdefault(row, []).append(card["top"])
            for tops in rows.values():
                if len(tops) > 1:
                    rows_checked += 1
                    assert max(tops) - min(tops) <= 1, tops
        assert rows_checked >= 2
        # Names drawn at least 12 px tall (the old thumbnails drew them at about 6 px).
        assert page.evaluate(SMALLEST_NAME) >= 12
    finally:
        context.close()


def test_search_and_category_filter_without_javascript(
    browser: Any, live_server: LiveServer, templates: None
) -> None:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in_as(page, "mia@example.com")
        page.goto("/workflows/templates")
        all_cards = page.locator(".wf-card").count()
        assert all_cards > 5
        page.get_by_label("Search").fill("pagerduty")
        page.get_by_role("button", name="Show templates").click()
        assert parse_qs(urlsplit(page.url).query)["q"] == ["pagerduty"]
        names = page.locator(".wf-card h3").all_inner_texts()
        assert 0 < len(names) < all_cards
        for card in page.locator(".wf-card").all():
            assert "pagerduty" in card.inner_text().lower()
        found = f"{len(names)} template{'' if len(names) == 1 else 's'} found."
        expect(page.get_by_test_id("gallery-count")).to_have_text(found)

        page.get_by_label("Search").fill("")
        page.get_by_label("Category").select_option("Ticketing")
        page.get_by_role("button", name="Show templates").click()
        expect(page.get_by_role("heading", name="Ticketing", level=2)).to_be_visible()
        expect(page.get_by_role("heading", name="Communication", level=2)).to_have_count(0)
        assert 0 < page.locator(".wf-card").count() < all_cards
        for name in page.locator(".wf-card h3").all_inner_texts():
            assert "jira" in name.lower() or "linear" in name.lower()

        page.get_by_label("Search").fill("no template says this")
        page.get_by_role("button", name="Show templates").click()
        expect(page.get_by_test_id("gallery-count")).to_have_text("0 templates found.")
    finally:
        context.close()
