"""Sign-in attempts are rate-limited per account and per address, across processes."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.auth import throttle
from app.auth.models import SignInAttempt
from app.db import utcnow
from app.extensions import db


def test_five_failures_lock_the_account_for_a_while(
    client, sign_in_through_form, make_user
) -> None:
    make_user("target@example.com")
    for _ in range(throttle.MAX_FAILURES_PER_EMAIL):
        assert sign_in_through_form("target@example.com", "guess").status_code == 422
    # Even the right password is refused now, with a clear message and Retry-After.
    refused = sign_in_through_form("target@example.com")
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60 + 1
    assert client.get("/").status_code == 302


def test_the_lock_lifts_when_the_window_passes(client, sign_in_through_form, make_user) -> None:
    make_user("target@example.com")
    long_ago = utcnow() - throttle.WINDOW - timedelta(seconds=5)
    for _ in range(throttle.MAX_FAILURES_PER_EMAIL):
        db.session.add(
            SignInAttempt(email="target@example.com", ip="127.0.0.1", created_at=long_ago)
        )
    db.session.commit()
    assert sign_in_through_form("target@example.com").status_code == 303


def test_success_clears_the_failures(client, sign_in_through_form, make_user) -> None:
    make_user("target@example.com")
    for _ in range(throttle.MAX_FAILURES_PER_EMAIL - 1):
        sign_in_through_form("target@example.com", "guess")
    assert sign_in_through_form("target@example.com").status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SignInAttempt)) == 0


def test_one_address_guessing_many_accounts_is_limited(app) -> None:
    now = utcnow()
    for n in range(throttle.MAX_FAILURES_PER_IP):
        throttle.record_failure(f"user{n}@example.com", "203.0.113.9", now)
    db.session.commit()
    assert throttle.retry_after("fresh@example.com", "203.0.113.9", now) is not None
    assert throttle.retry_after("fresh@example.com", "198.51.100.1", now) is None
