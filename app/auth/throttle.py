"""Sign-in rate limiting, kept in the database so every web process shares it.

Failures are counted per e-mail **and** address: after ``FREE_FAILURES`` failures
of one e-mail from one address, that pair waits before its next try, twice as
long after each further failure (``BACKOFF`` doubling, at most ``WINDOW``). A
stranger guessing from elsewhere only slows themselves down: the account's owner,
from their own address, signs in as usual. One address guessing many accounts is
limited as a whole (``MAX_FAILURES_PER_IP`` in ``WINDOW``). Addresses are the
client's as the trusted proxy reports it (``INCIDENTFLOW_TRUSTED_PROXIES``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.auth.models import SignInAttempt
from app.db import utcnow
from app.extensions import db

WINDOW = timedelta(minutes=15)
FREE_FAILURES = 5
BACKOFF = timedelta(seconds=30)
MAX_FAILURES_PER_IP = 30


def backoff(failures: int) -> timedelta:
    """How long a pair waits after this many failures in the window."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(BACKOFF * (1 << min(failures - FREE_FAILURES, 16)), WINDOW)


def retry_after(email: str, ip: str, now: datetime | None = None) -> timedelta | None:
    """How long until this e-mail may be tried again from this address, or None if now."""
    now = now or utcnow()
    since = now - WINDOW
    pair = db.session.scalars(
        sa.select(SignInAttempt.created_at)
        .where(
            SignInAttempt.email == email,
            SignInAttempt.ip == ip,
            SignInAttempt.created_at > since,
        )
        .order_by(SignInAttempt.created_at.desc())
    ).all()
    waits = []
    if pair:
        free_at = pair[0] + backoff(len(pair))
        if free_at > now:
            waits.append(free_at - now)
    by_ip = db.session.scalars(
        sa.select(SignInAttempt.created_at)
        .where(SignInAttempt.ip == ip, SignInAttempt.created_at > since)
        .order_by(SignInAttempt.created_at.desc())
        .limit(MAX_FAILURES_PER_IP)
    ).all()
    if len(by_ip) >= MAX_FAILURES_PER_IP:
        # Free again when the oldest of the last `limit` failures leaves the window.
        waits.append(by_ip[-1] + WINDOW - now)
    if not waits:
        return None
    return max(max(waits), timedelta(seconds=1))


def record_failure(email: str, ip: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    db.session.add(SignInAttempt(email=email, ip=ip, created_at=now))
    db.session.execute(sa.delete(SignInAttempt).where(SignInAttempt.created_at < now - WINDOW))


def clear_failures(email: str, ip: str) -> None:
    db.session.execute(
        sa.delete(SignInAttempt).where(SignInAttempt.email == email, SignInAttempt.ip == ip)
    )
