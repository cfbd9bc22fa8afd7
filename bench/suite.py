"""Runs the measurement groups, collects their figures, and hands them to the report."""

from __future__ import annotations

import argparse
import importlib
import json
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.options import Options
from bench.results import Group

# In the order they run and appear.
GROUPS = (
    "throughput",
    "latency",
    "commits",
    "parked",
    "matching",
    "backtest",
    "pages",
    "save",
    "signin",
    "endtoend",
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="IncidentFlow's benchmark suite: measures the engine and the pages, "
        "writes docs/benchmarks.json and regenerates docs/benchmarks.md.",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~7 minutes)")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated groups to run ({', '.join(GROUPS)}); the others keep "
        "their previous results",
    )
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per figure")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the Markdown from the saved results without measuring",
    )
    return parser.parse_args(argv)


def paths(quick: bool) -> tuple[Path, Path]:
    """(results JSON, Markdown). A smoke run never overwrites the published table."""
    results = report.RESULTS_DIR
    if quick:
        return results / "latest-quick.json", results / "benchmarks-quick.md"
    return report.PUBLISHED_JSON, report.DOCS_PATH


def main(argv: list[str]) -> int:
    args = parse(argv)
    json_path, markdown_path = paths(args.quick)
    if args.report_only:
        data = json.loads(json_path.read_text())
        report.write(data, json_path=None, markdown_path=markdown_path)
        print(f"wrote {markdown_path}")
        return 0
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in GROUPS]
    if unknown:
        print(f"unknown group(s): {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
        return 2
    options = Options.make(args.quick, args.repeats)
    previous = _previous(json_path) if only else None
    if only and previous is None and markdown_path.exists():
        print(
            f"{json_path} is missing, so {markdown_path} could not keep the other groups' "
            "figures: run the whole suite once (or --quick, which writes elsewhere)"
        )
        return 2
    options.log("describing the machine")
    data: dict[str, Any] = {
        "machine": machine.describe(),
        "quick": options.quick,
        "repeats": options.repeats,
        "groups": [],
    }
    groups = {g["name"]: g for g in (previous or {}).get("groups", [])}
    failed = False
    for name in only or GROUPS:
        group = run_group(name, options)
        failed = failed or bool(group.error)
        entry = group.to_json()
        entry["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        entry["quick"] = options.quick
        groups[name] = entry
    data["groups"] = [groups[name] for name in GROUPS if name in groups]
    data["machine"]["load_average_at_end"] = machine.load_average()
    data["machine"]["fdatasync_ms_at_end"] = machine.fsync_latency_ms()
    data["seconds"] = round(time.monotonic() - options.started, 1)
    report.write(data, json_path=json_path, markdown_path=markdown_path)
    options.log(f"wrote {json_path} and {markdown_path}")
    return 1 if failed else 0


def run_group(name: str, options: Options) -> Group:
    module = importlib.import_module(f"bench.{name}")
    group = Group(name=name, title=module.TITLE, method=module.METHOD)
    options.log(f"== {name}: {module.TITLE}")
    load_before = machine.load_average()
    started = time.monotonic()
    try:
        group.figures = module.run(options)
    except Exception as error:
        group.error = f"{type(error).__name__}: {error}"
        options.log(f"{name} failed:\n{traceback.format_exc()}")
    group.seconds = time.monotonic() - started
    group.load_average = load_before
    options.log(f"== {name} done in {group.seconds:.0f}s")
    return group


def _previous(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data
