"""What a view answers an htmx request, in one place.

- ``is_htmx()``: the request is an ``hx-get``/``hx-post`` aimed at part of a page. A
  boosted link or form (``hx-boost``) wants the whole page, so it counts as a plain one.
- ``see_other(url)``: after a change, go to ``url``. A plain form post gets a 303; an
  htmx request gets 204 with ``HX-Redirect`` (a 303 would be followed by htmx and the
  whole next page swapped into the element that asked).
- ``page_or_part(page, part, ...)``: one template serves a page and its htmx fragment:
  the page ``{% include %}``s its part (``_name.html``); an htmx request gets the part
  alone (``Vary: HX-Request`` is set on every response, ``app/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import make_response, redirect, render_template, request
from werkzeug.wrappers import Response


def is_htmx() -> bool:
    htmx = request.htmx  # type: ignore[attr-defined]
    return bool(htmx) and not htmx.boosted


def see_other(url: str) -> Response:
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def page_or_part(
    page: str, part: str, context: Mapping[str, Any], *, target: str | None = None
) -> str:
    """``part`` for an htmx request (aimed at the element ``target``, when given: other
    htmx requests to the same URL get the page), else ``page``; both with ``context``."""
    wants_part = is_htmx() and (target is None or request.htmx.target == target)  # type: ignore[attr-defined]
    return render_template(part if wants_part else page, **context)
