"""What a view answers an htmx request, in one place.

- ``is_htmx()``: the request is an ``hx-get``/``hx-post`` aimed at part of a page. A
  boosted link or form (``hx-boost``) wants the whole page, so it counts as a plain one.
- ``see_other(url)``: after a change, go to ``url``. A plain form post gets a 303; an
  htmx request gets 204 with ``HX-Redirect`` (a 303 would be followed by htmx and the
  whole next page swapped into the element that asked).
"""

from __future__ import annotations

from flask import make_response, redirect, request
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
