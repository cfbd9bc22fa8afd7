"""App-wide error pages: page requests meet errors in the app's layout, htmx requests
get them in the main area, and the API keeps answering JSON."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
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


def outage() -> sa.exc.OperationalError:
    """What SQLAlchemy raises when PostgreSQL refuses the connection."""
    return sa.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))


def failing_home_page(app: Flask, monkeypatch, error: Exception) -> None:
    def fail() -> str:
        raise error

    monkeypatch.setitem(app.view_functions, "home.index", fail)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr(app, "testing", False)


def no_such_incident(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    return "get", "/incidents/no-such-incident", {}


def admins_only(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    return "get", "/admin/users", {}


def wrong_method(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    return "delete", "/incidents", {}


def too_large(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    body = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    return "post", "/incidents/new", {"data": {"title": body}}


def refused_input(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    return "get", "/incidents?q=a%00b", {}


def crash(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    failing_home_page(app, monkeypatch, RuntimeError("secret detail of the crash"))
    return "get", "/", {}


def database_down(client, app, monkeypatch):  # type: ignore[no-untyped-def]
    failing_home_page(app, monkeypatch, outage())
    return "get", "/", {}


ERRORS = [
    pytest.param(no_such_incident, 404, "Not found", "No such incident.", id="404"),
    pytest.param(admins_only, 403, "You may not do this", "This page is for admins", id="403"),
    pytest.param(wrong_method, 405, "This action is not available here", "", id="405"),
    pytest.param(too_large, 413, "Too large", "", id="413"),
    pytest.param(
        refused_input, 422, "This request was not accepted", "<strong>q</strong>", id="422"
    ),
    pytest.param(crash, 500, "Something went wrong", "Nothing was half-saved", id="500"),
    pytest.param(
        database_down, 503, "IncidentFlow is temporarily unavailable", "tries again", id="503"
    ),
]


@pytest.mark.parametrize(("cause", "status", "title", "text"), ERRORS)
def test_each_error_is_a_page_in_the_layout(
    app: Flask, client, member, monkeypatch, cause, status, title, text
) -> None:
    method, url, options = cause(client, app, monkeypatch)
    response = getattr(client, method)(url, **options)
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert f"<h1>{title}</h1>" in html and text in html
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert 'id="main"' in html
    assert "HX-Retarget" not in response.headers
    if status == 503:
        # Its own page: the layout would load the signed-in user from the database.
        assert 'aria-label="Main"' not in html
        assert response.headers["Retry-After"] == "5"
    else:
        assert 'aria-label="Main"' in html  # the app's layout, with its navigation
    assert "secret detail" not in html and "Traceback" not in html


@pytest.mark.parametrize(("cause", "status", "title", "text"), ERRORS)
def test_each_error_is_a_fragment_into_main_for_htmx(
    app: Flask, client, member, monkeypatch, cause, status, title, text
) -> None:
    method, url, options = cause(client, app, monkeypatch)
    response = getattr(client, method)(url, headers={"HX-Request": "true"}, **options)
    assert response.status_code == status
    assert response.headers["HX-Retarget"] == "#main"
    assert response.headers["HX-Reswap"] == "innerHTML"
    html = response.get_data(as_text=True)
    assert f"<h1>{title}</h1>" in html and text in html
    assert "<html" not in html and 'aria-label="Main"' not in html
    assert 'role="alert"' in html
