"""Sign-in rate limiting, kept in the database so every web process shares it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.auth.models import SignInAttempt
from app.db import utcnow
from app.extensions import db

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 30


def retry_after(email: str, ip: str, now: datetime | None = None) -> timedelta | None:
    """How long until this email/address may try again, or None if it may now."""
    now = now or utcnow()
    since = now - WINDOW
    for column, value, limit in (
        (SignInAttempt.email, email, MAX_FAILURES_PER_EMAIL),
        (SignInAttempt.ip, ip, MAX_FAILURES_PER_IP),
    ):
        times = db.session.scalars(
            sa.select(SignInAttempt.created_at)
            .where(column == value, SignInAttempt.created_at > since)
            .order_by(SignInAttempt.created_at.desc())
            .limit(limit)
        ).all()
        if len(times) >= limit:
            # Free again when the oldest of the last `limit` failures leaves the window.
            return max(times[-1] + WINDOW - now, timedelta(seconds=1))
    return None


def record_failure(email: str, ip: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    db.session.add(SignInAttempt(email=email, ip=ip, created_at=now))
    db.session.execute(sa.delete(SignInAttempt).where(SignInAttempt.created_at < now - WINDOW))


def clear_failures(email: str) -> None:
    db.session.execute(sa.delete(SignInAttempt).where(SignInAttempt.email == email))
