"""The engine's only source of time. Tests give it a FakeClock and move time by hand."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going backwards."""

    def sleep(self, seconds: float, until: threading.Event | None = None) -> None:
        """Wait, returning early if ``until`` is set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, until: threading.Event | None = None) -> None:
        if until is not None:
            until.wait(seconds)
        elif seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """Wall time that only moves when told to (``advance``), or when someone sleeps.

    ``monotonic`` also counts real elapsed time, so that time-outs of real requests
    (which take real time) are still measured while the wall clock stands still.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._mono = 1000.0
        self._real_start = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono + (time.monotonic() - self._real_start)

    def advance(self, seconds: float = 0, **delta: float) -> None:
        step = timedelta(seconds=seconds, **delta).total_seconds()
        with self._lock:
            self._now += timedelta(seconds=step)
            self._mono += step

    def sleep(self, seconds: float, until: threading.Event | None = None) -> None:
        self.advance(max(seconds, 0))
