"""The benchmark report writer, on a small fake result set (no timing is measured)."""

from __future__ import annotations

import json
import math

import pytest

from bench import analysis, report
from bench.results import Figure, Group, Target, figure, not_measured, percentile

MACHINE = {
    "cpu": "Test CPU @ 1 GHz",
    "cores": 2,
    "usable_cores": 2,
    "memory_gib": 3.9,
    "os": "Linux 6",
    "python": "3.11.7",
    "sqlite": "3.40.1",
    "postgresql": "15.4",
    "redis": "7.0.15",
    "date": "2026-01-01 12:00 UTC",
    "commit": "abc1234",
    "load_average_at_start": [0.2, 0.1, 0.1],
    "load_average_at_end": [1.5, 0.5, 0.2],
    "fdatasync_ms": {"p50": 0.07, "p99": 1.3},
}


def fake_results() -> dict:
    throughput = Group(
        name="throughput",
        title="Runs completed per second",
        method="Runs are counted | carefully.",
        seconds=12.0,
        figures=[
            figure(
                "throughput.sqlite-embedded.1",
                "throughput",
                "Runs completed per second",
                "Embedded worker, SQLite, 1 worker",
                "runs/s",
                [90.0, 120.5, 101.0],
                target=Target(">=", 100, "≥ 100 runs/s (embedded default)"),
                note="1 worker; SQLite serialises writers",
            ),
            figure(
                "throughput.postgresql-celery.4",
                "throughput",
                "Runs completed per second",
                "Celery + Redis, PostgreSQL, 4 worker processes",
                "runs/s",
                [200.0, 180.0, 190.0],
                target=Target(">=", 250, "≥ 250 runs/s (PostgreSQL + Celery)"),
            ),
            not_measured(
                "throughput.postgresql-embedded.2",
                "throughput",
                "Runs completed per second",
                "Embedded workers, PostgreSQL, 2 workers",
                "runs/s",
                "PostgreSQL at postgresql://x is not reachable (OperationalError)",
                None,
            ),
        ],
    )
    latency = Group(
        name="latency",
        title="Latency and step overhead",
        method="Latency is measured from commit to arrival.",
        figures=[
            figure(
                "latency.first_request.p99.sqlite-embedded",
                "latency",
                "Trigger → first webhook request, p99",
                "Embedded worker, SQLite, 1 worker, 20 runs/s",
                "ms",
                [41.0, 45.5, 39.0],
                target=Target("<", 100, "p99 < 100 ms"),
            )
        ],
    )
    latency.load_average = [2.5, 1.0, 0.5]
    broken = Group(name="pages", title="Page server time", method="Pages.", error="boom: no db")
    return {
        "machine": MACHINE,
        "quick": False,
        "repeats": 3,
        "seconds": 700.0,
        "groups": [g.to_json() for g in (throughput, latency, broken)],
    }


def test_a_figure_is_the_median_of_its_samples_and_checks_its_target() -> None:
    fig = figure(
        "k", "g", "label", "setup", "unit", [3.0, None, 1.0, 2.0], target=Target("<", 2.5, "t")
    )
    assert fig.samples == [3.0, 1.0, 2.0]
    assert fig.value == 2.0
    assert fig.met is True
    assert figure("k", "g", "l", "s", "u", [None]).value is None
    assert figure("k", "g", "l", "s", "u", [None]).met is None


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_results_survive_a_round_trip_through_json() -> None:
    data = json.loads(json.dumps(fake_results()))
    groups = report.groups_of(data)
    fig = groups[0].figures[0]
    assert isinstance(fig, Figure)
    assert fig.target == Target(">=", 100, "≥ 100 runs/s (embedded default)")
    assert fig.value == 101.0
    assert groups[2].error == "boom: no db"


def test_the_report_writes_json_and_the_markdown_table(tmp_path) -> None:
    json_path = tmp_path / "results" / "latest.json"
    markdown_path = tmp_path / "docs" / "benchmarks.md"
    report.write(fake_results(), json_path=json_path, markdown_path=markdown_path)

    saved = json.loads(json_path.read_text())
    assert saved["groups"][0]["figures"][0]["met"] is True
    assert saved["groups"][0]["figures"][1]["met"] is False
    text = markdown_path.read_text()
    # The machine is described.
    assert "| CPU | Test CPU @ 1 GHz |" in text
    assert "| PostgreSQL | 15.4 |" in text
    assert "| Date | 2026-01-01 12:00 UTC |" in text
    # The table: median, every repetition, target, verdict.
    assert (
        "| Runs completed per second | Embedded worker, SQLite, 1 worker (note 1) | 101 | runs/s "
        "| 90.0, 120, 101 | ≥ 100 runs/s (embedded default) | yes |"
    ) in text
    assert "1. 1 worker; SQLite serialises writers." in text
    assert "| 190 | runs/s | 200, 180, 190 | ≥ 250 runs/s (PostgreSQL + Celery) | **no** |" in text
    assert "not measured: PostgreSQL at postgresql://x is not reachable" in text
    # Table cells never break the table.
    assert "Runs are counted \\| carefully." not in text  # methods are prose, not cells
    assert "Runs are counted | carefully." in text


def test_the_gaps_section_lists_missed_targets_with_their_analysis(monkeypatch) -> None:
    monkeypatch.setattr(
        analysis, "ANALYSIS", {"throughput.postgresql-celery": "Each step commits; see X."}
    )
    text = report.markdown(fake_results())
    gaps = text.split("## Gaps", 1)[1].split("## Method", 1)[0]
    assert "Celery + Redis, PostgreSQL, 4 worker processes**: 190 runs/s against a target" in gaps
    assert "Each step commits; see X." in gaps
    assert "Embedded worker, SQLite" not in gaps  # that target was met
    assert "was not measured: PostgreSQL at postgresql://x is not reachable" in gaps
    assert "The page server time group failed: `boom: no db`" in gaps


def test_a_missed_target_without_analysis_says_so(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "ANALYSIS", {})
    assert "The cause has not been analysed yet." in report.markdown(fake_results())


def test_the_longest_matching_analysis_prefix_wins(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "ANALYSIS", {"throughput": "general", "throughput.sqlite": "sql"})
    assert analysis.analysis_for("throughput.sqlite-embedded.1") == "sql"
    assert analysis.analysis_for("throughput.postgresql-celery.4") == "general"
    assert analysis.analysis_for("latency.x") is None


def test_a_busy_machine_and_a_smoke_run_are_flagged() -> None:
    data = fake_results()
    assert "was not idle" not in report.markdown(data)
    data["machine"] = {**MACHINE, "load_average_at_start": [3.5, 2.0, 1.0]}
    data["quick"] = True
    text = report.markdown(data)
    assert "a load average of 3.5 on 2 cores" in text
    assert "Smoke run (`--quick`)" in text


def test_numbers_are_rounded_for_reading() -> None:
    assert report.number(1234.5) == "1,234"
    assert report.number(12.345) == "12.3"
    assert report.number(1.2345) == "1.23"
    assert report.number(0.01234) == "0.012"
    assert report.number(None) == "—"
    assert report.number(0.0) == "0"


def test_findings_are_shown_for_the_groups_that_ran(monkeypatch) -> None:
    monkeypatch.setattr(
        analysis,
        "FINDINGS",
        [
            ("latency.first", "About latency", "The poll adds 20 ms."),
            ("matching", "About matching", "Loading dominates."),
        ],
    )
    text = report.markdown(fake_results())
    findings = text.split("## Findings", 1)[1].split("## Method", 1)[0]
    assert "### About latency" in findings
    assert "The poll adds 20 ms." in findings
    assert "About matching" not in text  # no matching figures in these results


def test_the_method_section_gives_each_group_its_load_and_the_disk(tmp_path) -> None:
    data = fake_results()
    data["groups"][1]["measured_at"] = "2026-01-01 12:05 UTC"
    text = report.markdown(data)
    method = text.split("## Method", 1)[1]
    assert "Measured 2026-01-01 12:05 UTC, in 0 s; load average at its start 2.5" in method
    assert "| Disk: 4 KiB write + fdatasync (temp folder) | p50 0.070 ms, p99 1.30 ms |" in text


def test_only_refuses_when_the_other_groups_figures_would_be_lost(
    tmp_path, monkeypatch, capsys
) -> None:
    from bench import suite

    markdown_path = tmp_path / "benchmarks.md"
    markdown_path.write_text("# Benchmarks\n")
    json_path = tmp_path / "benchmarks.json"
    monkeypatch.setattr(suite, "paths", lambda quick: (json_path, markdown_path))
    monkeypatch.setattr(suite, "run_group", lambda *args: pytest.fail("measured anyway"))

    assert suite.main(["--only", "commits"]) == 2
    assert "run the whole suite once" in capsys.readouterr().out
    assert markdown_path.read_text() == "# Benchmarks\n"


def test_the_published_results_are_kept_in_the_repository() -> None:
    from bench import suite

    json_path, markdown_path = suite.paths(quick=False)
    assert json_path.parent == markdown_path.parent == report.ROOT / "docs"
    assert "bench/results" not in report.markdown(fake_results())
