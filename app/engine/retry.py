"""When a failed action is tried again, and after how long.

Only failures worth retrying are: network errors, timeouts, 408, 429 and
5xx. The delay is exponential backoff with full jitter — uniform between 0
and ``initial * 2**(attempt - 1)`` — with a server's ``Retry-After`` as a
floor, and everything capped. The caller supplies the random source and the
current time, so tests decide both.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

__all__ = [
    "MAX_RETRY_AFTER_SECONDS",
    "backoff_seconds",
    "is_retryable",
    "jitter_ceiling_seconds",
    "next_retry_delay",
    "parse_retry_after",
    "retryable_status",
]

#: A Retry-After further out than this is read as this (one day).
MAX_RETRY_AFTER_SECONDS = 86_400.0


class _Outcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def retryable(self) -> bool: ...

    @property
    def retry_after_seconds(self) -> float | None: ...


class _RetrySettings(Protocol):
    @property
    def attempts(self) -> int: ...

    @property
    def initial_delay_ms(self) -> int: ...


def retryable_status(status_code: int) -> bool:
    """408 Request Timeout, 429 Too Many Requests and every 5xx."""
    return status_code in (408, 429) or 500 <= status_code <= 599


def is_retryable(outcome: _Outcome) -> bool:
    """Whether a failed attempt is worth another one (a success never is)."""
    return not outcome.ok and outcome.retryable


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date.

    A date in the past gives 0; a value that is neither gives None; anything
    beyond a day is read as a day.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(int(text[:12])), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" dates: RFC 9110 dates are always GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def jitter_ceiling_seconds(attempt: int, initial_delay_ms: int, cap_seconds: float) -> float:
    """The upper bound of the jitter after failed attempt number ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError("attempt counts from 1 (the first attempt)")
    exponent = min(attempt - 1, 64)  # beyond this every ceiling is capped anyway
    return min(initial_delay_ms / 1000 * 2.0**exponent, cap_seconds)


def backoff_seconds(
    attempt: int,
    initial_delay_ms: int,
    rng: random.Random,
    retry_after: float | None = None,
    cap_seconds: float = 300.0,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter: uniform in ``[0, min(initial * 2**(attempt-1), cap)]``. A
    server's ``retry_after`` (seconds) raises the delay to at least that
    much. The result never exceeds ``cap_seconds``, even for a longer
    Retry-After: the caller compares ``retry_after`` with its own limits if
    it would rather give up than retry early.
    """
    if cap_seconds < 0:
        raise ValueError("cap_seconds must not be negative")
    delay = rng.uniform(0.0, jitter_ceiling_seconds(attempt, initial_delay_ms, cap_seconds))
    if retry_after is not None and math.isfinite(retry_after):
        delay = max(delay, retry_after)
    return min(delay, cap_seconds)


def next_retry_delay(
    outcome: _Outcome,
    *,
    attempt: int,
    retry: _RetrySettings,
    rng: random.Random,
    cap_seconds: float = 300.0,
) -> float | None:
    """The wait before the next attempt, or None when there is none.

    None when the attempt succeeded, failed in a way not worth retrying, or
    was the last of ``retry.attempts``.
    """
    if not is_retryable(outcome) or attempt >= retry.attempts:
        return None
    return backoff_seconds(
        attempt, retry.initial_delay_ms, rng, outcome.retry_after_seconds, cap_seconds
    )
