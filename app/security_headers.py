"""Browser hardening headers on every response.

The Content-Security-Policy allows scripts, styles and everything else from this
origin only: no inline script, no inline style, no ``eval``. htmx is configured
by a ``<meta name="htmx-config">`` (no inline script; its injected indicator
style is turned off and lives in ``app.css``), and the few behaviours pages need
beyond htmx are in ``static/js/app.js``. No page may be framed (clickjacking on
enable, delete, rollback and revoke buttons). HSTS is sent in production over
HTTPS (``request.is_secure`` honours ``X-Forwarded-Proto`` from a trusted proxy).
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if current_app.config.get("ENV_NAME") == "production" and request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
