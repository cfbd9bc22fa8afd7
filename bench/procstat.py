"""CPU time and memory of processes, from Linux's ``/proc``.

``CpuTracker`` follows a changing set of processes (a web server's workers, a
Celery pool, PostgreSQL backends that come and go with connections): it samples
``utime + stime`` of every process its source names, every half second from a
thread, and adds up for each process the CPU it used between the first and the
last time it was seen. A process first seen after the start began during the
measurement, so all of its CPU counts. Threads are included (``/proc/<pid>/stat``
sums them); children are counted through the pids the source returns, not through
``cutime``, so nothing is counted twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat_ticks(text: str) -> int:
    """``utime + stime`` (clock ticks) from the text of ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may hold spaces or ``)``;
    the fields after the last ``)`` are split: state is field 3, utime 14, stime 15.
    """
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def parse_pss_kib(text: str) -> int:
    """``Pss`` (KiB) from the text of ``/proc/<pid>/smaps_rollup``."""
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError("no Pss line")


def cpu_ticks(pid: int) -> int | None:
    """The process's CPU so far (ticks), or None when it has gone."""
    try:
        return parse_stat_ticks(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def pss_kib(pid: int) -> int | None:
    try:
        return parse_pss_kib(Path(f"/proc/{pid}/smaps_rollup").read_text())
    except (OSError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children of all its threads, recursively)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
            except OSError:
                continue
            for child in text.split():
                found.append(int(child))
                stack.append(int(child))
    return found


def tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants, without repeats."""
    seen: dict[int, None] = {}
    for pid in pids:
        seen[pid] = None
        for child in descendants(pid):
            seen[child] = None
    return list(seen)


# pid -> role ("web", "workers", "postgres", ...)
Source = Callable[[], Mapping[int, str]]


@dataclass
class CpuTracker:
    """CPU seconds used by the processes ``source`` names, while it runs."""

    source: Source
    interval: float = 0.5
    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    started: float = 0.0
    stopped: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self, *, initial: bool = False) -> None:
        try:
            pids = dict(self.source())
        except Exception:
            if initial:  # without a first sighting every process would count from 0
                raise
            return  # a source that failed once (a busy database): next time
        with self._lock:
            for pid, role in pids.items():
                ticks = cpu_ticks(pid)
                if ticks is None:
                    continue
                if pid not in self.first:
                    self.first[pid] = ticks if initial else 0
                    self.roles[pid] = role
                self.last[pid] = ticks

    def start(self) -> CpuTracker:
        import time

        self.sample(initial=True)
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="cpu-tracker", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> CpuTracker:
        import time

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        self.stopped = time.monotonic()
        return self

    @property
    def seconds(self) -> float:
        return self.stopped - self.started

    def per_process(self) -> dict[int, float]:
        """CPU seconds of each process seen."""
        with self._lock:
            return {pid: (self.last[pid] - self.first[pid]) / TICKS_PER_SECOND for pid in self.last}

    def by_role(self) -> dict[str, float]:
        """CPU seconds per role."""
        totals: dict[str, float] = {}
        for pid, seconds in self.per_process().items():
            role = self.roles[pid]
            totals[role] = totals.get(role, 0.0) + seconds
        return totals
