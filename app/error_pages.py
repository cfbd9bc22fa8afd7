"""App-wide error pages: every HTTP error a page request meets (404, 403, 405, 413, 422,
500, ...) answers a page in the app's layout, so views do not catch errors one by one.

- A ``ServiceError`` a view lets through (refused input, a missing or forbidden object)
  answers the same page, with its status, its message and where the input was wrong: a
  view calls the service and catches only what it shows inside its own form.
- A database outage answers 503 (``ops/unavailable`` tells an outage from a bug), from
  ``errors/unavailable.html``: a page of its own, as the layout reads the signed-in user
  from the database that is down.
- Under ``/api/v1`` the API's own handlers answer JSON; nothing here touches those.
- An htmx request gets the page's main part (``errors/_http.html``,
  ``errors/_unavailable.html``), retargeted to ``#main``, so the error shows where the
  user looks instead of inside the element that asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from app.errors import Problem, ServiceError
from app.extensions import db

log = logging.getLogger(__name__)

#: Headers of the original error response that still apply to the page.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

_TITLES = {
    400: "This request was not understood",
    403: "You may not do this",
    404: "Not found",
    409: "This request was not accepted",
    405: "This action is not available here",
    413: "Too large",
    422: "This request was not accepted",
    429: "Too many requests",
    500: "Something went wrong",
}


def _is_api_path() -> bool:
    return request.path == "/api/v1" or request.path.startswith("/api/v1/")


def _fragment_headers() -> dict[str, str]:
    """An htmx request gets the main part of the page, swapped into ``#main``."""
    if request.headers.get("HX-Request"):
        return {"HX-Retarget": "#main", "HX-Reswap": "innerHTML"}
    return {}


def _page(
    status: int,
    message: str,
    original: Response | None = None,
    problems: list[Problem] | None = None,
) -> Response:
    title = _TITLES.get(status, "This request could not be completed")
    headers = _fragment_headers()
    template = "errors/_http.html" if headers else "errors/http.html"
    body = render_template(
        template, status=status, title=title, message=message, problems=problems or []
    )
    if original is not None:
        headers |= {k: v for k, v in original.headers.items() if k in _KEPT_HEADERS}
    return Response(body, status=status, headers=headers, mimetype="text/html")


def http_error_page(error: HTTPException) -> Response | HTTPException:
    if _is_api_path() or error.code is None or error.code < 400:
        return error  # the API's JSON, or not an error at all
    db.session.rollback()
    if error.code == 500:
        return internal_error_page(error)
    return _page(error.code, error.description or error.name, error.get_response())


def internal_error_page(error: Exception) -> Response:
    """500 for a page: no detail of the failure (it is in the log), nothing half-saved."""
    db.session.rollback()
    message = "The error has been logged. Nothing was half-saved; try again in a moment."
    try:
        return _page(500, message)
    except Exception:  # the layout itself failed (it reads the session user): plain text
        log.exception("rendering the error page failed")
        return Response(f"Something went wrong. {message}\n", status=500, mimetype="text/plain")


def service_error_page(error: ServiceError) -> Response:
    """A refused service call a view did not show in its own form (the API has its own)."""
    db.session.rollback()
    return _page(error.status, error.message, problems=error.problems)


def unavailable_page(retry_after: int, headers: Mapping[str, str]) -> Response:
    """503 while the database cannot be reached (``ops/unavailable`` decides that)."""
    fragment_headers = _fragment_headers()
    template = "errors/_unavailable.html" if fragment_headers else "errors/unavailable.html"
    # Straight from the Jinja environment: the app's context processors load the
    # signed-in user, from the database that is down.
    page = current_app.jinja_env.get_template(template).render(retry_after=retry_after)
    return Response(page, status=503, headers={**headers, **fragment_headers}, mimetype="text/html")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error_page)
    app.register_error_handler(ServiceError, service_error_page)
    app.register_error_handler(InternalServerError, internal_error_page)
