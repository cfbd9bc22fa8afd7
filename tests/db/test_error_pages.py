"""App-wide error pages: page requests meet errors in the app's layout, htmx requests
get them in the main area, and the API keeps answering JSON."""

from __future__ import annotations

import pytest
from flask import Flask

from app.extensions import db


@pytest.fixture
def member(make_user, sign_in):
    make_user("ann@example.com")
    return sign_in("ann@example.com")


def test_an_unknown_page_is_a_404_in_the_layout(client, member) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<h1>Not found</h1>" in html
    assert 'aria-label="Main"' in html  # the app's layout, with its navigation
    assert "Back to the start page" in html
    assert response.headers["Content-Security-Policy"]  # security headers as on every page


def test_an_htmx_request_gets_the_error_in_the_main_area(client, member) -> None:
    response = client.get("/no/such/page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#main"
    assert response.headers["HX-Reswap"] == "innerHTML"
    html = response.get_data(as_text=True)
    assert "<h1>Not found</h1>" in html and "<html" not in html


def test_a_wrong_method_keeps_its_allow_header(client, member) -> None:
    response = client.delete("/incidents")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "This action is not available here" in response.get_data(as_text=True)


def test_the_api_still_answers_json(client) -> None:
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.is_json and response.json["error"]["code"] == "not_found"


def test_a_crash_is_a_500_page_without_its_details(app: Flask, client, member, monkeypatch) -> None:
    def crash() -> str:
        raise RuntimeError("secret detail of the crash")

    monkeypatch.setitem(app.view_functions, "home.index", crash)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr(app, "testing", False)
    response = client.get("/")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "<h1>Something went wrong</h1>" in html
    assert "secret detail" not in html and "Traceback" not in html
    # The session is usable afterwards: the failed request left no transaction open.
    assert db.session.execute(db.text("SELECT 1")).scalar() == 1
