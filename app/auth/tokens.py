"""API tokens: created and shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

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


def authenticate(plain: str) -> User | None:
    """The active user owning this unrevoked token, or None."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _digest(plain)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    token.last_used_at = utcnow()
    owner: User = token.user
    return owner
