"""The /api/v1 blueprint and its operation registry: JSON errors, token auth and
Idempotency-Key replay are installed on it here. The operations are declared in
routes.py (incidents, meta), runs.py and workflows.py; importing ``app.api`` loads them."""

from __future__ import annotations

from flask import Blueprint

from app.api.auth import install_token_auth
from app.api.errors import register_error_handlers
from app.api.idempotency import HEADER, install_idempotency
from app.api.registry import ApiRoutes

bp = Blueprint("api", __name__, url_prefix="/api/v1")
routes = ApiRoutes(bp)
register_error_handlers(bp)
install_token_auth(bp, routes)
install_idempotency(bp, routes)

IDEMPOTENT = (
    f" Send an `{HEADER}` header to make a retry safe: a repeat within 24 hours "
    "answers the first response and changes nothing."
)
