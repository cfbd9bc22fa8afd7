"""Idempotent requests, and the one way API changes are committed.

A client that may send a request twice (a retry after a timeout) sends it with
an ``Idempotency-Key: <unique key>`` header. Within ``WINDOW`` of the first
success, a repeat by the same token owner with the same key answers the first
response again (status, body and ``Location``, with ``Idempotent-Replayed:
true``) and changes nothing. A repeat with another method, path or body is
refused (422 ``idempotency_key_reused``). A request that failed is not
remembered: failures change nothing, so sending it again is safe.

``finish(response)`` commits a write: the response is built first (a request
never answers 500 after changing data), then remembered under its key in the
same transaction as the change. Two concurrent requests with one key: the
second waits on the key's unique index, finds the first one's row, rolls its
own change back and answers the first response.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, current_app, g, request
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from app.api.auth import api_user
from app.api.errors import ERROR_CODES, ApiError, ErrorDetail
from app.api.models import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotentRequest
from app.api.registry import ApiRoutes
from app.db import utcnow
from app.extensions import db

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
WINDOW = timedelta(hours=24)
# Printable ASCII without spaces: what a UUID, a ULID or any token looks like.
KEY_PATTERN = r"^[\x21-\x7e]+$"
_KEY = re.compile(KEY_PATTERN)
_PATH_MAX_LENGTH = 400

ERROR_CODES.setdefault(
    "idempotency_key_reused",
    (
        422,
        f"This {HEADER} was used in the last 24 hours for a different request; "
        "send a new key with a new request.",
    ),
)


@dataclass(frozen=True)
class _Pending:
    key: str
    fingerprint: str


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.get_data()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _key_from_header() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not _KEY.match(key):
        message = (
            f"'{HEADER}' must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters "
            "without spaces, for example a UUID."
        )
        raise ApiError(
            422,
            "validation_error",
            message,
            details=[ErrorDetail(loc=f"header.{HEADER}", message=message)],
        )
    return key


def _stored(key: str) -> IdempotentRequest | None:
    return db.session.scalar(
        sa.select(IdempotentRequest).where(
            IdempotentRequest.user_id == api_user().id,
            IdempotentRequest.key == key,
            IdempotentRequest.created_at > utcnow() - WINDOW,
        )
    )


def _replay(stored: IdempotentRequest, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"The {HEADER} '{stored.key}' was used at {stored.created_at:%Y-%m-%d %H:%M:%S} UTC "
            f"for a different request ({stored.method} {stored.path} with another body). "
            "Nothing was changed: send a new key with a new request.",
            details=[
                ErrorDetail(loc=f"header.{HEADER}", message="Already used for a different request.")
            ],
        )
    headers = {REPLAYED_HEADER: "true"}
    if stored.location:
        headers["Location"] = stored.location
    return current_app.response_class(
        stored.body, status=stored.status_code, headers=headers, mimetype="application/json"
    )


def install_idempotency(bp: Blueprint, routes: ApiRoutes) -> None:
    """Answer a repeat from what was stored; remember a first request's key.

    Install after token auth: keys belong to the token's owner.
    """

    @bp.before_request
    def replay_or_remember() -> Response | None:
        operation = routes.find((request.endpoint or "").rpartition(".")[2])
        if operation is None or not operation.idempotent:
            return None
        key = _key_from_header()
        if key is None:
            return None
        # Keys older than the window are forgotten (and may be used again).
        db.session.execute(
            sa.delete(IdempotentRequest).where(
                IdempotentRequest.user_id == api_user().id,
                IdempotentRequest.created_at <= utcnow() - WINDOW,
            )
        )
        fingerprint = _fingerprint()
        stored = _stored(key)
        if stored is not None:
            response = _replay(stored, fingerprint)
            db.session.commit()  # the token's last_used_at, the forgotten keys
            return response
        g.idempotency = _Pending(key, fingerprint)
        return None


def finish(response: Response) -> Response:
    """Commit the request's change, with its response already built.

    Under an ``Idempotency-Key``, a successful response is stored with the change;
    if another request with the key got there first, this change is rolled back and
    that request's response is the answer.
    """
    pending: _Pending | None = g.pop("idempotency", None)
    if pending is not None and 200 <= response.status_code < 300:
        db.session.add(
            IdempotentRequest(
                user_id=api_user().id,
                key=pending.key,
                fingerprint=pending.fingerprint,
                method=request.method,
                path=request.path[:_PATH_MAX_LENGTH],
                status_code=response.status_code,
                body=response.get_data(as_text=True),
                location=(response.headers.get("Location") or "")[:_PATH_MAX_LENGTH] or None,
            )
        )
        try:
            db.session.flush()
        except IntegrityError:
            # The unique (user, key) index: a concurrent request with this key committed.
            db.session.rollback()
            stored = _stored(pending.key)
            if stored is None:
                raise
            return _replay(stored, pending.fingerprint)
    db.session.commit()
    return response
