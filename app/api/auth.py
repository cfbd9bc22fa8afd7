"""Bearer-token authentication for /api/v1.

Only ``Authorization: Bearer <token>`` counts; the session cookie is never
looked at, which is why CSRF protection does not apply to the API. The token's
``last_used_at`` is set here (at most once a minute) and committed with the
request's own transaction.
"""

from __future__ import annotations

from flask import Blueprint, g, request

from app.api.errors import ApiError, body_too_large_message
from app.api.limits import API_MAX_BODY_BYTES
from app.api.registry import ApiRoutes
from app.auth.models import User
from app.auth.tokens import authenticate
from app.engine.guards import RUN_HEADER, run_from_marker
from app.incidents.enums import ChangeSource
from app.incidents.service import Actor

REALM = 'Bearer realm="IncidentFlow API"'
INVALID_TOKEN = (
    "This API token is not valid: it is unknown, revoked, or its user is deactivated. "
    "Create a new token on your profile page."
)


def _unauthorized(code: str, message: str, challenge: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def _token_from_header() -> str:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise _unauthorized(
            "authentication_required",
            "Send an API token in the header 'Authorization: Bearer <token>'.",
            REALM,
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _unauthorized(
            "invalid_token",
            "The Authorization header must be 'Bearer <token>'.",
            f'{REALM}, error="invalid_request"',
        )
    return token


def install_token_auth(bp: Blueprint, routes: ApiRoutes) -> None:
    @bp.before_request
    def require_token() -> None:
        # Far below the app's 1 MiB for forms. A body without a Content-Length (chunked)
        # is read at most one byte past the limit, so that reading it can tell "too large".
        request.max_content_length = API_MAX_BODY_BYTES + 1
        if routes.is_public(request.endpoint):
            return
        user = authenticate(_token_from_header())
        if user is None:
            raise _unauthorized("invalid_token", INVALID_TOKEN, f'{REALM}, error="invalid_token"')
        g.api_user = user
        if request.content_length is not None and request.content_length > API_MAX_BODY_BYTES:
            # Refused before anything reads it, whether or not the route takes a body.
            raise ApiError(413, "body_too_large", body_too_large_message())


def api_user() -> User:
    user = g.get("api_user")
    if not isinstance(user, User):
        raise RuntimeError("api_user() called outside an authenticated API request")
    return user


def acting_run() -> str | None:
    """The workflow run a request comes from, from its marker header (see engine.guards).

    Changes made with it are linked to the run, so the loop guard can follow chains.
    """
    marker = request.headers.get(RUN_HEADER)
    if marker is None:
        return None
    execution_id = run_from_marker(marker)
    if execution_id is None:
        raise ApiError(
            400,
            "invalid_run_marker",
            f"The {RUN_HEADER} header is not a marker this server gave one of its workflow "
            "runs. Remove it: workflow webhooks send it on their own.",
        )
    return execution_id


def api_actor() -> Actor:
    return Actor(api_user(), ChangeSource.API, acting_run())
