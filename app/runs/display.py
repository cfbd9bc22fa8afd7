"""How runs read on pages: one duration, times to the second, pretty bodies, branches.

Pure functions over a run's stored data (no queries); the run pages, the runs list
and the incident timeline use the same ones, so they never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from app.definition import ConditionNode
from app.engine.runner import TERMINAL, Plan
from app.workflows.enums import ExecutionStatus, NodeStatus
from app.workflows.models import ExecutionAttempt, WorkflowExecution

#: The one definition of a run's duration, shown as a tooltip wherever it appears.
DURATION_MEANING = (
    "Duration: wall-clock time from the run's start to its end (or to now while it runs), "
    "delays and retry waits included."
)


def run_duration(run: WorkflowExecution, now: datetime) -> timedelta | None:
    """Start to end (or to ``now`` while active); None before it starts or without an end."""
    if run.started_at is None:
        return None
    end = run.completed_at or run.failed_at
    if end is None:
        if run.status in TERMINAL:
            return None
        end = now
    return max(end - run.started_at, timedelta(0))


def human_duration(value: timedelta | float | None) -> str:
    """850 ms, 12 s, 3 min 5 s, 2 h 4 min, 3 d 2 h: precise for short, short for long."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{int(seconds)} s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def relative(moment: datetime, now: datetime) -> str:
    """'42 s ago', 'in 5 s', '3 min ago', 'just now'."""
    delta = (now - moment).total_seconds()
    if abs(delta) < 1:
        return "just now"
    text = human_duration(abs(delta)).replace(".0 s", " s")
    if abs(delta) >= 60:
        text = text.split(" ")[0] + " " + text.split(" ")[1]  # the largest unit is enough
    return f"{text} ago" if delta > 0 else f"in {text}"


def step_duration(result: dict[str, Any] | None) -> timedelta | None:
    """How long a settled step took, from its stored start and end."""
    if not result or "startedAt" not in result or "completedAt" not in result:
        return None
    started = datetime.fromisoformat(result["startedAt"])
    completed = datetime.fromisoformat(result["completedAt"])
    return max(completed - started, timedelta(0))


def pretty_body(value: Any) -> str:
    """JSON (or a string holding JSON) indented; any other text as it is."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(parsed, indent=2, ensure_ascii=False)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def branch_notes(plan: Plan, results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """For each condition: which branch it took; for each skipped node: the branch it was on.

    A skipped node's branch is that of the condition edge leading to it, found by walking
    back through skipped predecessors.
    """
    notes: dict[str, str] = {}
    for node_id, result in results.items():
        if isinstance(plan.nodes.get(node_id), ConditionNode) and result.get("status") == (
            NodeStatus.COMPLETED
        ):
            matched = bool((result.get("result") or {}).get("matched"))
            notes[node_id] = f"took the {'true' if matched else 'false'} branch"
    for node_id in plan.order:
        settled = results.get(node_id)
        if settled is None or settled.get("status") != NodeStatus.SKIPPED:
            continue
        branch = _skipped_branch(plan, results, node_id, set())
        notes[node_id] = f"skipped ({branch} branch)" if branch else "skipped"
    return notes


def _skipped_branch(
    plan: Plan, results: dict[str, dict[str, Any]], node_id: str, seen: set[str]
) -> str | None:
    if node_id in seen:
        return None
    seen.add(node_id)
    for edge in plan.incoming.get(node_id, []):
        if edge.source_handle is not None:
            return str(edge.source_handle)
        source = results.get(edge.source)
        if source is not None and source.get("status") == NodeStatus.SKIPPED:
            found = _skipped_branch(plan, results, edge.source, seen)
            if found:
                return found
    return None


def host_of(url: Any) -> str:
    """Only the host of a URL: paths and queries may hold tokens."""
    try:
        return urlsplit(str(url)).hostname or "an unknown host"
    except ValueError:
        return "an unknown host"


ACTION_WORDS = {
    "webhook": "sent a webhook to",
    "jira": "created a Jira issue on",
    "linear": "created a Linear issue on",
}


def attempt_summary(action_type: str, attempt: ExecutionAttempt) -> str:
    """'sent a webhook to hooks.slack.com — 200' (host only, never the path or a secret)."""
    words = ACTION_WORDS.get(action_type, f"ran a {action_type} action on")
    host = host_of((attempt.request or {}).get("url", ""))
    if attempt.status_code is not None:
        outcome = str(attempt.status_code)
    else:
        outcome = "no response" if not attempt.ok else "ok"
    if not attempt.ok and attempt.retry_at is not None:
        outcome += ", will retry"
    return f"{words} {host} — {outcome}"


@dataclass(frozen=True)
class Activity:
    """One line of workflow activity on an incident's timeline."""

    at: datetime
    text: str
    run_id: str
    ok: bool


_ENDINGS = {
    ExecutionStatus.COMPLETED: "completed",
    ExecutionStatus.FAILED: "failed",
    ExecutionStatus.CANCELLED: "was cancelled",
}


def run_activity(
    runs: Iterable[WorkflowExecution], attempts: Iterable[ExecutionAttempt]
) -> list[Activity]:
    """Start, each request sent (host and status only) and end of each run."""
    by_run: dict[str, list[ExecutionAttempt]] = {}
    for attempt in attempts:
        by_run.setdefault(attempt.execution_id, []).append(attempt)
    out: list[Activity] = []
    for run in runs:
        name = f"Workflow {run.workflow.name}"
        started = run.started_at or run.created_at
        how = run.trigger_event.value.replace("_", " ") if run.trigger_event else "by hand"
        out.append(Activity(started, f"{name} started ({how})", run.id, True))
        action_types = {
            node["id"]: (node.get("data") or {}).get("actionType", "action")
            for node in (run.definition_snapshot or {}).get("nodes", [])
        }
        for attempt in by_run.get(run.id, []):
            summary = attempt_summary(action_types.get(attempt.node_id, "action"), attempt)
            out.append(Activity(attempt.started_at, f"{name} {summary}", run.id, attempt.ok))
        end = run.completed_at or run.failed_at
        if run.status in _ENDINGS and end is not None:
            ok = run.status == ExecutionStatus.COMPLETED
            text = f"{name} {_ENDINGS[run.status]}"
            if run.status == ExecutionStatus.FAILED and run.error:
                text += f": {run.error}"
            out.append(Activity(end, text, run.id, ok))
    return out
