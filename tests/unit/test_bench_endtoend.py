"""The end-to-end benchmark's pure helpers: /proc parsing, CPU tracking, arrival matching."""

from __future__ import annotations

import os

import pytest

from bench import procstat
from bench.endtoend import backlog_growth, first_arrivals, title_of

# A real /proc/<pid>/stat line whose command name holds a space and a parenthesis.
STAT = (
    "4242 (gunicorn: w) ker) S 4200 4200 4200 0 -1 4194560 12345 0 3 0 "
    "731 129 0 0 20 0 5 0 1020304 123456789 4321 18446744073709551615 "
    "1 1 0 0 0 0 0 16781312 134234627 0 0 0 17 1 0 0 0 0 0"
)


def test_stat_ticks_are_utime_plus_stime_after_the_last_parenthesis() -> None:
    assert procstat.parse_stat_ticks(STAT) == 731 + 129


def test_stat_of_this_process_parses() -> None:
    with open(f"/proc/{os.getpid()}/stat") as handle:
        assert procstat.parse_stat_ticks(handle.read()) >= 0


def test_pss_is_read_from_smaps_rollup() -> None:
    text = (
        "55d0-7ffd ---p 00000000 00:00 0   [rollup]\n"
        "Rss:               51200 kB\nPss:               20480 kB\nPss_Anon:  100 kB\n"
    )
    assert procstat.parse_pss_kib(text) == 20480
    with pytest.raises(ValueError):
        procstat.parse_pss_kib("Rss: 1 kB\n")


def test_tracker_counts_between_first_and_last_sight_and_new_processes_from_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = {1: 1000, 2: 50}
    monkeypatch.setattr(procstat, "cpu_ticks", lambda pid: ticks.get(pid))
    pids = {1: "web", 2: "workers"}
    tracker = procstat.CpuTracker(lambda: dict(pids))
    tracker.sample(initial=True)
    ticks[1] = 1100  # 100 ticks of work
    ticks[2] = 80
    pids[3] = "workers"  # born during the measurement: all of it counts
    ticks[3] = 40
    tracker.sample()
    del ticks[2]  # gone: its last sighting stands
    tracker.sample()
    per = tracker.per_process()
    tick = 1 / procstat.TICKS_PER_SECOND
    assert per[1] == pytest.approx(100 * tick)
    assert per[2] == pytest.approx(30 * tick)
    assert per[3] == pytest.approx(40 * tick)
    assert tracker.by_role() == pytest.approx({"web": 100 * tick, "workers": 70 * tick})


def test_tree_contains_the_process_itself() -> None:
    assert os.getpid() in procstat.tree([os.getpid()])


def test_arrivals_map_to_titles_and_repeats_are_counted() -> None:
    arrivals = [
        [10.0, "POST", "/e2e/c1-0-0"],
        [11.0, "POST", "/e2e/c1-0-1"],
        [12.0, "POST", "/hang/x"],
        [9.5, "POST", "/e2e/c1-0-0"],  # a repeat: the earliest counts
    ]
    first, repeats = first_arrivals(arrivals, "e2e")
    assert first == {"c1-0-0": 9.5, "c1-0-1": 11.0}
    assert repeats == 1
    assert title_of("/hang/abc", "hang") == "abc"
    assert title_of("/e2e/abc", "hang") is None


def test_backlog_growth_is_zero_when_arrivals_keep_up_and_positive_when_not() -> None:
    answered = [i * 0.1 for i in range(100)]  # 10 per second for 10 s
    kept_up = [t + 0.05 for t in answered]
    assert backlog_growth(answered, kept_up, 0.0, 10.0) == pytest.approx(0.0, abs=0.3)
    half_speed = [i * 0.2 for i in range(50)]  # 5 per second
    assert backlog_growth(answered, half_speed, 0.0, 10.0) == pytest.approx(5.0, abs=0.5)
