"""How big and how often: the full suite, or ``--quick`` for a smoke run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass
class Options:
    quick: bool = False
    repeats: int = 3
    # Throughput: each timed repetition is sized to last about this long.
    throughput_seconds: float = 8.0
    latency_seconds: float = 10.0
    latency_rate: float = 20.0
    parked_runs: int = 100_000
    wake_sample: int = 300
    workflows_for_matching: int = 1_000
    matching_events: int = 40
    workflows_for_list: int = 10_000
    page_requests: int = 15
    editor_nodes: int = 50
    commit_runs: int = 100
    # End to end (bench/endtoend.py): each load phase, the idle window, the canaries
    # while runs hang, and the backlog under which a worker is killed.
    endtoend_seconds: float = 30.0
    idle_seconds: float = 10.0
    canary_seconds: float = 20.0
    takeover_backlog: int = 300
    # Seconds an idle worker is left alone before and after the parked runs appear.
    settle_seconds: float = 3.0
    # Worker counts measured for throughput; a smoke run skips the middle ones.
    all_worker_counts: bool = True
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def make(cls, quick: bool, repeats: int | None) -> Options:
        if not quick:
            return cls(repeats=repeats or 3)
        return cls(
            quick=True,
            repeats=repeats or 1,
            throughput_seconds=2.0,
            latency_seconds=3.0,
            parked_runs=5_000,
            wake_sample=50,
            settle_seconds=1.5,
            all_worker_counts=False,
            matching_events=10,
            workflows_for_list=2_000,
            page_requests=5,
            commit_runs=20,
            endtoend_seconds=8.0,
            idle_seconds=5.0,
            canary_seconds=8.0,
            takeover_backlog=100,
        )

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)
