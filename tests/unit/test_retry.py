"""The retry policy: what is retried, full-jitter backoff bounds, Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.engine.retry import (
    MAX_RETRY_AFTER_SECONDS,
    backoff_seconds,
    is_retryable,
    jitter_ceiling_seconds,
    next_retry_delay,
    parse_retry_after,
    retryable_status,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retryable: bool
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class Retry:
    attempts: int
    initial_delay_ms: int


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_timeouts_rate_limits_and_server_errors_are_retryable(status: int) -> None:
    assert retryable_status(status)


@pytest.mark.parametrize("status", [200, 201, 301, 302, 400, 401, 403, 404, 409, 422])
def test_other_statuses_are_not(status: int) -> None:
    assert not retryable_status(status)


def test_only_failures_marked_retryable_are_retried() -> None:
    assert is_retryable(Outcome(ok=False, retryable=True))
    assert not is_retryable(Outcome(ok=False, retryable=False))
    assert not is_retryable(Outcome(ok=True, retryable=True))


@pytest.mark.parametrize("initial_ms", [100, 1_000, 30_000])
def test_every_backoff_falls_inside_its_full_jitter_bounds(initial_ms: int) -> None:
    rng = random.Random(1234)
    cap = 300.0
    for attempt in range(1, 11):
        ceiling = min(initial_ms / 1000 * 2 ** (attempt - 1), cap)
        assert jitter_ceiling_seconds(attempt, initial_ms, cap) == ceiling
        samples = [backoff_seconds(attempt, initial_ms, rng, None, cap) for _ in range(300)]
        assert all(0.0 <= sample <= ceiling for sample in samples)
        # Full jitter spreads over the whole range, not just near zero or the top.
        assert min(samples) < ceiling * 0.1
        assert max(samples) > ceiling * 0.9


def test_the_same_seed_gives_the_same_delays() -> None:
    first = [backoff_seconds(n, 500, random.Random(7), None, 60) for n in range(1, 6)]
    second = [backoff_seconds(n, 500, random.Random(7), None, 60) for n in range(1, 6)]
    assert first == second


def test_retry_after_is_a_floor_and_the_cap_still_holds() -> None:
    rng = random.Random(0)
    assert backoff_seconds(1, 100, rng, retry_after=5.0, cap_seconds=300) == 5.0
    assert backoff_seconds(1, 100, rng, retry_after=1_000.0, cap_seconds=300) == 300.0
    assert backoff_seconds(9, 300_000, rng, retry_after=None, cap_seconds=10) <= 10


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_seconds(0, 100, random.Random(0))


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 0 ", NOW) == 0.0
    assert parse_retry_after("99999999999999", NOW) == MAX_RETRY_AFTER_SECONDS


def test_retry_after_as_an_http_date_is_relative_to_the_injected_now() -> None:
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, NOW) == 90.0
    assert parse_retry_after(later, NOW + timedelta(seconds=30)) == 60.0
    earlier = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e3x"])
def test_unreadable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_next_retry_delay_stops_after_the_last_attempt() -> None:
    retry = Retry(attempts=3, initial_delay_ms=1_000)
    failure = Outcome(ok=False, retryable=True, retry_after_seconds=None)
    rng = random.Random(3)
    first = next_retry_delay(failure, attempt=1, retry=retry, rng=rng)
    second = next_retry_delay(failure, attempt=2, retry=retry, rng=rng)
    assert first is not None and 0 <= first <= 1.0
    assert second is not None and 0 <= second <= 2.0
    assert next_retry_delay(failure, attempt=3, retry=retry, rng=rng) is None
    assert next_retry_delay(Outcome(False, False), attempt=1, retry=retry, rng=rng) is None
    assert next_retry_delay(Outcome(True, False), attempt=1, retry=retry, rng=rng) is None


def test_next_retry_delay_honours_retry_after() -> None:
    retry = Retry(attempts=5, initial_delay_ms=100)
    limited = Outcome(ok=False, retryable=True, retry_after_seconds=30.0)
    delay = next_retry_delay(limited, attempt=1, retry=retry, rng=random.Random(1))
    assert delay == 30.0
