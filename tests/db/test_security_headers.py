"""Browser hardening: every page carries the CSP and anti-framing headers, and no page
has inline script, inline event handlers or inline styles the CSP would block."""

from __future__ import annotations

import re

import pytest

from app.security_headers import CONTENT_SECURITY_POLICY
from tests.conftest import csrf_token_from

from .test_route_sweep import rules, url_for_rule, world  # noqa: F401  (fixture)

EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=|<style", re.IGNORECASE)


def assert_hardened(response, what: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp == CONTENT_SECURITY_POLICY, what
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (what, name)


def assert_no_inline_code(html: str, what: str) -> None:
    assert not INLINE_SCRIPT.search(html), what
    assert not INLINE_HANDLER.search(html), (what, INLINE_HANDLER.search(html))
    assert not INLINE_STYLE.search(html), (what, INLINE_STYLE.search(html))


def test_every_page_is_hardened_and_has_no_inline_code(app, client, sign_in, world) -> None:  # noqa: F811
    from app.auth.models import User
    from app.extensions import db

    admin = User(email="admin@example.com", first_name="A", last_name="D", is_admin=True)
    admin.set_password("correct horse battery")
    db.session.add(admin)
    db.session.commit()
    values = {
        "incident_id": world["incident"].id,
        "id": world["incident"].id,
        "token_id": world["token"].id,
        "team_id": world["theirs"].id,
        "user_id": world["stranger"].id,
        "workflow_id": world["workflow"].id,
        "execution_id": world["execution"].id,
    }
    signed_out = client.get("/sign-in")
    assert_hardened(signed_out, "/sign-in")
    assert_no_inline_code(signed_out.text, "/sign-in")
    sign_in(admin.email)
    pages = 0
    for _method, rule, _endpoint in rules(app, {"GET"}):
        url = url_for_rule(rule, values)
        response = client.get(url)
        assert_hardened(response, url)
        if response.mimetype == "text/html":
            assert_no_inline_code(response.text, url)
            pages += response.status_code == 200
    assert pages >= 20
    # Error pages, htmx fragments and form failures too.
    assert_hardened(client.get("/no-such-page"), "404")
    fragment = client.get("/incidents", headers={"HX-Request": "true"})
    assert_hardened(fragment, "fragment")
    refused = client.post(
        "/incidents/new",
        data={"csrf_token": csrf_token_from(client.get("/incidents/new").text), "title": ""},
    )
    assert_hardened(refused, "422")


@pytest.mark.parametrize(
    ("env", "base_url", "hsts"),
    [
        ("production", "https://incidents.example.com", True),
        ("production", "http://incidents.example.com", False),
        ("development", "https://incidents.example.com", False),
    ],
)
def test_hsts_only_in_production_over_https(app, client, env, base_url, hsts) -> None:
    app.config["ENV_NAME"] = env
    response = client.get("/healthz", base_url=base_url)
    assert ("Strict-Transport-Security" in response.headers) is hsts
    if hsts:
        assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
