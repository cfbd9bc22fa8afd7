"""Many runs in flight per worker process, and no destination can take them all.

A ``ConcurrentDriver`` drives claimed runs on a bounded pool of threads
(``ENGINE_CONCURRENCY``, default 50): while one run waits for a slow answer,
the others keep moving. Threads, not asyncio: the database layer (SQLAlchemy,
psycopg, sqlite3) is synchronous, a thread waiting on a socket releases the
GIL, and each run keeps the exact commit-before-request and commit-after-result
sequence of the one-at-a-time worker, unchanged.

``DestinationSlots`` caps the requests in flight to one destination (scheme,
host and port; ``ENGINE_PER_DESTINATION``, default 8). A run whose destination
is full does not wait in a thread: its step is deferred for a moment (no attempt
is counted, nothing is sent), so a destination that hangs uses only its own slots.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Generic, TypeVar

log = logging.getLogger("incidentflow.engine.driver")

Destination = tuple[str, str, int]
Run = TypeVar("Run")


class DestinationSlots:
    """At most ``limit`` requests in flight to each destination at once."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._in_flight: dict[Destination, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, destination: Destination) -> Iterator[bool]:
        """Take a slot if one is free; yields whether it was taken (and frees it after)."""
        with self._lock:
            busy = self._in_flight.get(destination, 0)
            taken = busy < self.limit
            if taken:
                self._in_flight[destination] = busy + 1
        try:
            yield taken
        finally:
            if taken:
                with self._lock:
                    left = self._in_flight[destination] - 1
                    if left:
                        self._in_flight[destination] = left
                    else:
                        del self._in_flight[destination]

    def in_flight(self, destination: Destination) -> int:
        with self._lock:
            return self._in_flight.get(destination, 0)


class ConcurrentDriver(Generic[Run]):
    """Runs ``drive(run)`` for up to ``size`` runs at once, each in its own thread."""

    def __init__(
        self,
        drive: Callable[[Run], object],
        size: int,
        *,
        on_free: Callable[[], None] | None = None,
    ) -> None:
        self.size = max(1, size)
        self._drive = drive
        self._on_free = on_free
        self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="run")
        self._busy = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._slot = threading.Semaphore(self.size)

    def free(self) -> int:
        with self._lock:
            return self.size - self._busy

    def busy(self) -> int:
        with self._lock:
            return self._busy

    def submit(self, run: Run, *, block: bool = False) -> bool:
        """Start driving ``run`` in a free thread; False (not started) when none is free,
        unless ``block``, which waits for one."""
        if not self._slot.acquire(blocking=block):
            return False
        with self._lock:
            self._busy += 1
        try:
            self._pool.submit(self._run, run)
        except RuntimeError:  # shut down
            self._done()
            return False
        return True

    def _run(self, run: Run) -> None:
        try:
            self._drive(run)
        except Exception:
            log.exception("driving a run failed")
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0:
                self._idle.notify_all()
        self._slot.release()
        if self._on_free is not None:
            self._on_free()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is being driven; False if some still are after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
