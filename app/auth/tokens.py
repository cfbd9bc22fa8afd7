"""API tokens: created and shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa

from app.auth.models import ApiToken, User
from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.extensions import db

TOKEN_PREFIX = "ifl_"


def _digest(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no password stretching).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; the plain value is returned here and never again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput.at("name", "Give the token a name of 1 to 100 characters.")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, prefix=plain[:10], token_hash=_digest(plain))
    db.session.add(token)
    db.session.flush()
    return token, plain


def user_tokens(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            sa.select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.created_at.desc())
        )
    )


def revoke_token(user: User, token_id: str) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such API token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


# ``last_used_at`` is for people ("used 3 minutes ago"), so it is written at most this
# often: a write on every call costs an UPDATE per request for nothing anyone reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate(plain: str) -> User | None:
    """The active user owning this unrevoked token, or None.

    One query (token and owner together). ``last_used_at`` is set, for the
    request's own commit, only when it is older than ``LAST_USED_RESOLUTION``.
    Revocation is checked on every call, in every process.
    """
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    found = db.session.execute(
        sa.select(ApiToken, User)
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(plain))
    ).first()
    if found is None:
        return None
    token, owner = found
    if token.revoked_at is not None or not owner.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
    return owner
