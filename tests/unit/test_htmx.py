"""app.htmx: after a change, a plain post gets 303, an htmx request 204 with HX-Redirect,
and a boosted one (it wants the whole page) a plain 303."""

from __future__ import annotations

import pytest
from flask import Flask

from app import htmx
from app.htmx import see_other


@pytest.mark.parametrize(
    ("headers", "status", "location", "hx_redirect"),
    [
        ({}, 303, "/next", None),
        ({"HX-Request": "true"}, 204, None, "/next"),
        ({"HX-Request": "true", "HX-Boosted": "true"}, 303, "/next", None),
    ],
    ids=["plain", "htmx", "boosted"],
)
def test_see_other(app: Flask, headers, status, location, hx_redirect) -> None:
    with app.test_request_context("/", method="POST", headers=headers):
        response = see_other("/next")
    assert response.status_code == status
    assert response.headers.get("Location") == location
    assert response.headers.get("HX-Redirect") == hx_redirect


@pytest.mark.parametrize(
    ("headers", "target", "chosen"),
    [
        ({}, None, "page.html"),
        ({"HX-Request": "true"}, None, "_part.html"),
        ({"HX-Request": "true", "HX-Boosted": "true"}, None, "page.html"),
        ({"HX-Request": "true", "HX-Target": "list"}, "list", "_part.html"),
        ({"HX-Request": "true", "HX-Target": "main"}, "list", "page.html"),
        ({"HX-Request": "true"}, "list", "page.html"),
    ],
    ids=["plain", "htmx", "boosted", "aimed-at-target", "aimed-elsewhere", "no-target"],
)
def test_page_or_part(app: Flask, monkeypatch: pytest.MonkeyPatch, headers, target, chosen) -> None:
    rendered: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        htmx, "render_template", lambda name, **context: rendered.append((name, context)) or name
    )
    with app.test_request_context("/", headers=headers):
        assert htmx.page_or_part("page.html", "_part.html", {"n": 1}, target=target) == chosen
    assert rendered == [(chosen, {"n": 1})]
