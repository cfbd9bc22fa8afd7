"""axe-core on every page, on a desktop (1366×900) and a phone (390×844): no serious or
critical violation. axe-core is vendored for the tests only (tests/vendor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.e2e.site import Site, populate
from tests.fakes.servers import WebhookReceiver
from tests.fixtures.browser import LiveServer, sign_in_as

AXE_VERSION = "4.14.1"
AXE = Path(__file__).resolve().parents[1] / "vendor" / f"axe-core-{AXE_VERSION}.min.js"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

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


def violations(page: Any, path: str, source: str) -> list[str]:
    response = page.goto(path)
    assert response is not None and response.status < 500, path
    page.wait_for_load_state("networkidle")
    # Evaluated through the DevTools protocol, so the page's CSP does not apply to it.
    page.evaluate(source)
    return [f"{path}: {v}" for v in page.evaluate(RUN_AXE)]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_page_has_a_serious_or_critical_axe_violation(
    browser: Any, live_server: LiveServer, site: Site, viewport: dict[str, int]
) -> None:
    source = AXE.read_text()
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        found = violations(page, "/sign-in", source)
        sign_in_as(page, "ada@example.com")
        for path in site.pages.values():
            found += violations(page, path, source)
        assert found == []
    finally:
        context.close()
