"""Every page, on a desktop (1366×900) and a phone (390×844), loaded once per size
(in three parts, each on its own populated site, so parallel workers share the sweep):

- it fits its viewport: no page is wider than the window (tables scroll inside their
  frame or stack) and no card's content spills out of the card;
- axe-core finds no serious or critical violation (axe-core is vendored for the tests
  only, in tests/vendor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.e2e.site import Site, populate
from tests.fakes.servers import WebhookReceiver
from tests.fixtures.browser import LiveServer, sign_in_as

AXE_VERSION = "4.14.1"
AXE = Path(__file__).resolve().parents[1] / "vendor" / f"axe-core-{AXE_VERSION}.min.js"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

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

# Serious and critical violations: rule, impact, and the first offending elements.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ` +
      v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""


@pytest.fixture
def site(live_app: Flask, webhook_receiver: WebhookReceiver) -> Site:
    """A workflow that ran on an incident, templates, versions: every page has content."""
    return populate(live_app, webhook_receiver)


def problems_of(page: Any, path: str, source: str) -> list[str]:
    """What is wrong with the page at ``path``: its width, then axe's violations."""
    response = page.goto(path)
    assert response is not None and response.status < 500, path
    page.wait_for_load_state("networkidle")
    found = []
    measured = page.evaluate(MEASURE)
    if measured["width"] > measured["viewport"] or measured["spill"]:
        width, viewport = measured["width"], measured["viewport"]
        found.append(f"{path}: page {width}px in {viewport}px; {measured['spill']}")
    # Evaluated through the DevTools protocol, so the page's CSP does not apply to it.
    page.evaluate(source)
    return found + [f"{path}: {v}" for v in page.evaluate(RUN_AXE)]


#: The pages are checked in this many parts, so parallel test workers share the sweep.
PARTS = 3


@pytest.mark.parametrize("part", range(PARTS), ids=[f"part{n + 1}of{PARTS}" for n in range(PARTS)])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_fits_its_viewport_and_has_no_serious_axe_violation(
    browser: Any, live_server: LiveServer, site: Site, viewport: dict[str, int], part: int
) -> None:
    paths = list(site.pages.values())[part::PARTS]
    assert paths, "a part with no page to check"
    source = AXE.read_text()
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        found = problems_of(page, "/sign-in", source) if part == 0 else []
        sign_in_as(page, "ada@example.com")
        for path in paths:
            found += problems_of(page, path, source)
        assert found == []
        if viewport == DESKTOP and part == 0:
            # On a desktop the incident's runs table fits its column without scrolling.
            page.goto(site.pages["incident"])
            frame = page.locator("#incident-runs .table-scroll")
            expect(frame).to_be_visible()
            assert frame.evaluate("f => f.scrollWidth <= f.clientWidth"), "runs table scrolls"
    finally:
        context.close()
