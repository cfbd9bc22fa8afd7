"""Sign-in attempts are rate-limited per account and address, and per address, across
processes; the same work for known and unknown e-mails; a trusted proxy's client address."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.auth import throttle
from app.auth.models import SignInAttempt
from app.db import utcnow
from app.extensions import db
from tests.conftest import csrf_token_from


def post_sign_in(client, email: str, password: str = "correct horse battery", *, ip: str, **kw):
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
        environ_base={"REMOTE_ADDR": ip},
        **kw,
    )


def test_failures_from_one_address_make_that_address_wait(
    client, sign_in_through_form, make_user
) -> None:
    make_user("target@example.com")
    for _ in range(throttle.FREE_FAILURES):
        assert sign_in_through_form("target@example.com", "guess").status_code == 422
    # Even the right password waits now, with a clear message and Retry-After.
    refused = sign_in_through_form("target@example.com")
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= throttle.BACKOFF.total_seconds() + 1
    assert client.get("/").status_code == 302


def test_a_stranger_cannot_lock_the_owner_out(app, client, make_user) -> None:
    make_user("target@example.com")
    stranger = app.test_client()
    for _ in range(throttle.FREE_FAILURES * 3):
        post_sign_in(stranger, "target@example.com", "guess", ip="203.0.113.66")
    assert post_sign_in(stranger, "target@example.com", ip="203.0.113.66").status_code == 429
    # The owner, from their own address, signs in as usual.
    assert post_sign_in(client, "target@example.com", ip="198.51.100.1").status_code == 303


def test_the_wait_doubles_with_each_failure_up_to_the_window() -> None:
    waits = [throttle.backoff(n) for n in range(throttle.FREE_FAILURES + 8)]
    assert waits[: throttle.FREE_FAILURES] == [timedelta(0)] * throttle.FREE_FAILURES
    assert waits[throttle.FREE_FAILURES] == throttle.BACKOFF
    assert waits[throttle.FREE_FAILURES + 1] == throttle.BACKOFF * 2
    assert waits[-1] == throttle.WINDOW


def test_the_wait_is_over_after_the_backoff(app, make_user) -> None:
    make_user("target@example.com")
    now = utcnow()
    last = now - throttle.BACKOFF - timedelta(seconds=1)
    for _ in range(throttle.FREE_FAILURES):
        throttle.record_failure("target@example.com", "127.0.0.1", last)
    db.session.commit()
    assert throttle.retry_after("target@example.com", "127.0.0.1", now) is None
    throttle.record_failure("target@example.com", "127.0.0.1", now)
    db.session.commit()
    wait = throttle.retry_after("target@example.com", "127.0.0.1", now)
    assert wait == throttle.BACKOFF * 2


def test_the_lock_lifts_when_the_window_passes(client, sign_in_through_form, make_user) -> None:
    make_user("target@example.com")
    long_ago = utcnow() - throttle.WINDOW - timedelta(seconds=5)
    for _ in range(throttle.FREE_FAILURES * 2):
        db.session.add(
            SignInAttempt(email="target@example.com", ip="127.0.0.1", created_at=long_ago)
        )
    db.session.commit()
    assert sign_in_through_form("target@example.com").status_code == 303


def test_success_clears_the_failures(client, sign_in_through_form, make_user) -> None:
    make_user("target@example.com")
    for _ in range(throttle.FREE_FAILURES - 1):
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


def test_unknown_and_known_emails_cost_one_password_hash_each(
    client, sign_in_through_form, make_user, monkeypatch
) -> None:
    """The same work either way (a dummy hash for unknown e-mails): no enumeration by time."""
    from app.auth import models, routes

    make_user("known@example.com")
    make_user("invited@example.com", password_hash=None)
    checks: list[str] = []
    real = models.check_password_hash

    def counting(hash_: str, password: str) -> bool:
        checks.append(hash_.split("$")[0])
        return real(hash_, password)

    monkeypatch.setattr(models, "check_password_hash", counting)
    monkeypatch.setattr(routes, "check_password_hash", counting)
    for email in ("known@example.com", "nobody@example.com", "invited@example.com"):
        checks.clear()
        assert sign_in_through_form(email, "wrong password").status_code == 422
        assert len(checks) == 1, email
    # The dummy hash is made like a real one.
    known = db.session.scalar(
        sa.select(models.User).where(models.User.email == "known@example.com")
    )
    dummy = routes._dummy_hash(models.password_hash_method())
    assert dummy.split("$")[0] == known.password_hash.split("$")[0]


def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(app, make_user) -> None:
    from app import create_app
    from tests.conftest import IsolatedClient

    make_user("target@example.com")
    proxied = create_app({**app.config, "TRUSTED_PROXIES": 1})
    proxied.test_client_class = IsolatedClient
    client = proxied.test_client()
    headers = {"X-Forwarded-For": "203.0.113.5"}
    post_sign_in(client, "target@example.com", "guess", ip="10.0.0.2", headers=headers)
    assert db.session.scalars(sa.select(SignInAttempt.ip)).all() == ["203.0.113.5"]


def test_without_a_trusted_proxy_a_forwarded_address_is_ignored(client, make_user) -> None:
    make_user("target@example.com")
    headers = {"X-Forwarded-For": "203.0.113.5"}
    post_sign_in(client, "target@example.com", "guess", ip="10.0.0.2", headers=headers)
    assert db.session.scalars(sa.select(SignInAttempt.ip)).all() == ["10.0.0.2"]


@pytest.mark.parametrize(
    "target",
    [
        "/incidents\r\nSet-Cookie: x=1",
        "/a\nb",
        "/\\evil.example",
        "//evil.example",
        "https://x",
    ],
)
def test_an_unsafe_next_goes_home(client, make_user, target) -> None:
    make_user("mia@example.com")
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        query_string={"next": target},
        data={
            "email": "mia@example.com",
            "password": "correct horse battery",
            "csrf_token": csrf_token_from(page.text),
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_safe_next_is_followed(client, make_user) -> None:
    make_user("mia@example.com")
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        query_string={"next": "/incidents?status=TRIGGERED"},
        data={
            "email": "mia@example.com",
            "password": "correct horse battery",
            "csrf_token": csrf_token_from(page.text),
        },
    )
    assert response.headers["Location"] == "/incidents?status=TRIGGERED"
