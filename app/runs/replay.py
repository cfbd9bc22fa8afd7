"""Replaying failed, timed-out and cancelled runs, one at a time or in bulk.

A replay is a new run of the same workflow on the same incident, started by the
real engine like any other (a PENDING row with a ``due_at``; a worker claims it).
It is linked to the run it replays (``replay_of_id``) and says how it was made
(``replay_mode``):

- ``node``: from the failed node. The steps the original run completed (or
  skipped) are carried over into the new run's ``completed_nodes``, so the
  runner continues at the first step that did not complete, and templates that
  read ``steps.<id>.result`` see the original results.
- ``start``: from the start; nothing is carried over.

Either on the run's own version (its frozen ``definition_snapshot``) or on the
workflow's current version. On the current version, a replay from a node that
no longer exists is refused; carried-over results are only those of steps that
still exist.

Bulk replays take the FAILED runs (timed-out ones included) of a workflow, or of
every workflow of a team, in a window of ``failed_at``. A run that has been
replayed already (by hand or in bulk) is left out, and each bulk replay carries
the unique ``trigger_key`` ``replay:<run id>``, so two bulk actions over the same
window never replay a run twice. Their ``due_at`` are staggered at
``REPLAY_RUNS_PER_SECOND`` (after any bulk replay still waiting), so re-sending
a few hundred runs after an outage reaches their destinations as a trickle.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.auth.models import User
from app.auth.permissions import can_access_team
from app.engine import triggers, wake
from app.engine.clock import Clock
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.ops import audit
from app.ops.models import AuditAction
from app.runs.service import get_run, visible_runs
from app.workflows import service as workflows
from app.workflows.diff import DefinitionDiff, diff_definitions
from app.workflows.enums import ExecutionStatus, NodeStatus
from app.workflows.models import Workflow, WorkflowExecution
from app.workflows.schema import WorkflowDefinition, topological_order

REPLAYABLE = (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
#: Settled steps that a replay from the failed node keeps.
_CARRIED = (NodeStatus.COMPLETED.value, NodeStatus.SKIPPED.value)
BULK_LIMIT = 500
BULK_KEY_PREFIX = "replay:"


class ReplayMode(StrEnum):
    NODE = "node"
    START = "start"


class ReplayVersion(StrEnum):
    OWN = "own"
    CURRENT = "current"


@dataclass(frozen=True)
class NodeStep:
    id: str
    name: str


@dataclass
class ReplayPlan:
    """What a replay would do: which steps are carried over, which will run, what differs."""

    origin: WorkflowExecution
    workflow: Workflow
    mode: ReplayMode
    on: ReplayVersion
    version: int
    definition: dict[str, Any]
    #: Where a replay from the failed node starts (None: from the start).
    from_node: NodeStep | None = None
    carried: list[dict[str, Any]] = field(default_factory=list)
    carried_steps: list[NodeStep] = field(default_factory=list)
    will_run: list[NodeStep] = field(default_factory=list)
    #: The run's own version against the current one (None when they are the same).
    diff: DefinitionDiff | None = None
    #: Why this replay cannot be made (None: it can).
    problem: str | None = None


def parse_mode(value: str | None) -> ReplayMode:
    try:
        return ReplayMode(value or ReplayMode.NODE)
    except ValueError as error:
        raise InvalidInput.at(
            "mode", "Choose 'node' (from the failed node) or 'start' (from the start)."
        ) from error


def parse_version(value: str | None) -> ReplayVersion:
    try:
        return ReplayVersion(value or ReplayVersion.OWN)
    except ValueError as error:
        raise InvalidInput.at(
            "version", "Choose 'own' (the run's own version) or 'current' (the workflow's)."
        ) from error


def _names(definition: dict[str, Any]) -> dict[str, str]:
    return {
        node["id"]: (node.get("data") or {}).get("name") or node["id"]
        for node in definition.get("nodes", [])
    }


def _failed_node(origin: WorkflowExecution, carried: list[dict[str, Any]]) -> str | None:
    """The step the run failed at: its failed step, or else (cancelled, timed out between
    steps) the first step it had not settled."""
    for record in origin.completed_nodes:
        if record["status"] == NodeStatus.FAILED.value:
            return str(record["nodeId"])
    parsed = WorkflowDefinition.model_validate(origin.definition_snapshot)
    settled = {record["nodeId"] for record in carried}
    incoming: dict[str, list[str]] = {node.id: [] for node in parsed.nodes}
    for edge in parsed.edges:
        incoming[edge.target].append(edge.source)
    for node_id in topological_order(parsed):
        if node_id not in settled and all(s in settled for s in incoming[node_id]):
            return node_id
    return None


def plan_replay(
    user: User, origin: WorkflowExecution, mode: ReplayMode, on: ReplayVersion
) -> ReplayPlan:
    """The replay's preview. Raises NotFound / Forbidden; a replay that cannot be made
    has its reason in ``problem``."""
    workflow = workflows.get_workflow(user, origin.workflow_id)
    workflows.require_edit(user, workflow)
    if on == ReplayVersion.CURRENT:
        version, definition = workflow.version, workflow.definition
    else:
        version, definition = origin.workflow_version, origin.definition_snapshot
    plan = ReplayPlan(origin, workflow, mode, on, version, copy.deepcopy(definition))
    if origin.workflow_version != workflow.version:
        plan.diff = diff_definitions(origin.definition_snapshot, workflow.definition)
    target_names = _names(definition)
    if origin.status not in REPLAYABLE:
        plan.problem = (
            "Only failed, timed-out or cancelled runs can be replayed; "
            f"this one is {origin.status.value.lower()}."
        )
    elif not workflow.is_enabled:
        plan.problem = "This workflow is disabled; enable it before replaying its runs."
    if mode == ReplayMode.NODE:
        kept = [r for r in origin.completed_nodes if r["status"] in _CARRIED]
        failed = _failed_node(origin, kept)
        origin_names = _names(origin.definition_snapshot)
        if failed is not None:
            plan.from_node = NodeStep(failed, origin_names.get(failed, failed))
        if failed is not None and failed not in target_names and plan.problem is None:
            plan.problem = (
                f"The step the run failed at, {origin_names.get(failed, failed)} ({failed}), "
                f"no longer exists in version {version} of the workflow. Replay from the "
                "start, or on the run's own version."
            )
        # The records as they were (the seed's NodeResult shape, nothing added).
        plan.carried = [copy.deepcopy(r) for r in kept if r["nodeId"] in target_names]
    carried_ids = {record["nodeId"] for record in plan.carried}
    order = topological_order(WorkflowDefinition.model_validate(definition))
    plan.carried_steps = [NodeStep(n, target_names[n]) for n in order if n in carried_ids]
    plan.will_run = [NodeStep(n, target_names[n]) for n in order if n not in carried_ids]
    return plan


def _start(
    user: User,
    plan: ReplayPlan,
    now: datetime,
    *,
    due_at: datetime | None = None,
    trigger_key: str | None = None,
) -> WorkflowExecution:
    origin = plan.origin
    candidate = triggers.Candidate(
        plan.workflow.id,
        plan.version,
        plan.workflow.scope_type,
        plan.workflow.team_id,
        plan.definition,
    )
    execution = triggers.new_run(
        candidate,
        origin.incident,
        now,
        triggered_by=origin.triggered_by,
        trigger_event=origin.trigger_event,
        trigger_key=trigger_key,
        user=user,
    )
    execution.replay_of_id = origin.id
    execution.replay_mode = plan.mode.value
    execution.completed_nodes = list(plan.carried)
    execution.due_at = due_at or now
    audit.record(
        user,
        AuditAction.RUN_REPLAYED,
        plan.workflow,
        run_id=execution.id,
        replay_of=origin.id,
        mode=plan.mode.value,
        version=plan.version,
        bulk=trigger_key is not None,
    )
    return execution


def replay(
    user: User,
    origin: WorkflowExecution,
    mode: ReplayMode,
    on: ReplayVersion,
    clock: Clock,
) -> WorkflowExecution:
    """Replay one run now. Flushes; the caller commits."""
    plan = plan_replay(user, origin, mode, on)
    if plan.problem is not None:
        raise Conflict(plan.problem)
    execution = _start(user, plan, clock.now())
    db.session.flush()
    wake.signal_work(db.session)
    return execution


def replays_of(user: User, execution: WorkflowExecution) -> list[WorkflowExecution]:
    """The runs that replay this one (that the user may see), oldest first."""
    return list(
        db.session.scalars(
            visible_runs(user)
            .where(WorkflowExecution.replay_of_id == execution.id)
            .order_by(None)
            .order_by(WorkflowExecution.created_at, WorkflowExecution.id)
        )
    )


def replay_origin(user: User, execution: WorkflowExecution) -> WorkflowExecution | None:
    if execution.replay_of_id is None:
        return None
    try:
        return get_run(user, execution.replay_of_id)
    except NotFound:  # an origin the user may not see is not shown
        return None


# --- bulk -------------------------------------------------------------------------


@dataclass
class BulkPlan:
    """A bulk replay's confirmation: what it would replay and what it leaves out."""

    since: datetime
    until: datetime
    mode: ReplayMode
    on: ReplayVersion
    plans: list[ReplayPlan] = field(default_factory=list)
    #: Failed runs in the window already replayed (left out).
    already_replayed: int = 0
    #: Failed runs that cannot be replayed this way, with the reason.
    refused: list[ReplayPlan] = field(default_factory=list)
    #: More failed runs than one bulk action takes: run it again for the rest.
    more: bool = False

    @property
    def count(self) -> int:
        return len(self.plans)


def bulk_workflows(
    user: User, *, workflow_id: str | None = None, team_id: str | None = None
) -> list[Workflow]:
    """The workflows a bulk replay covers: one (that the user may edit) or a team's."""
    if workflow_id:
        workflow = workflows.get_workflow(user, workflow_id)
        workflows.require_edit(user, workflow)
        return [workflow]
    if not team_id or not can_access_team(user, team_id):
        raise InvalidInput.at("teamId", "Choose a workflow, or one of your teams.")
    return list(
        db.session.scalars(
            sa.select(Workflow).where(Workflow.team_id == team_id, Workflow.is_template.is_(False))
        )
    )


def _window(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput.at("since", "Give times with a time zone (UTC).")
    if since >= until:
        raise InvalidInput.at("until", "The window's end must come after its start.")


def plan_bulk(
    user: User,
    targets: list[Workflow],
    since: datetime,
    until: datetime,
    mode: ReplayMode,
    on: ReplayVersion,
) -> BulkPlan:
    _window(since, until)
    bulk = BulkPlan(since, until, mode, on)
    if not targets:
        return bulk
    replayed = sa.select(WorkflowExecution.replay_of_id).where(
        WorkflowExecution.replay_of_id.is_not(None)
    )
    base = visible_runs(user).where(
        WorkflowExecution.workflow_id.in_([w.id for w in targets]),
        WorkflowExecution.status == ExecutionStatus.FAILED,
        WorkflowExecution.failed_at >= since,
        WorkflowExecution.failed_at < until,
    )
    bulk.already_replayed = (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(
                base.where(WorkflowExecution.id.in_(replayed)).order_by(None).subquery()
            )
        )
        or 0
    )
    runs = db.session.scalars(
        base.where(WorkflowExecution.id.not_in(replayed))
        .order_by(None)
        .order_by(WorkflowExecution.failed_at, WorkflowExecution.id)
        .limit(BULK_LIMIT + 1)
    ).all()
    bulk.more = len(runs) > BULK_LIMIT
    for run in runs[:BULK_LIMIT]:
        plan = plan_replay(user, run, mode, on)
        (bulk.refused if plan.problem else bulk.plans).append(plan)
    return bulk


def _stagger_start(now: datetime) -> datetime:
    """After the last bulk replay still waiting to start: bulk actions queue behind each
    other rather than adding up."""
    waiting = db.session.scalar(
        sa.select(sa.func.max(WorkflowExecution.due_at)).where(
            WorkflowExecution.status == ExecutionStatus.PENDING,
            WorkflowExecution.trigger_key.like(BULK_KEY_PREFIX + "%"),
        )
    )
    return max(now, waiting) if waiting is not None else now


def bulk_replay(user: User, bulk: BulkPlan, clock: Clock) -> list[WorkflowExecution]:
    """Start the planned replays, staggered. Flushes; the caller commits (a second bulk
    action racing this one fails on the unique ``trigger_key`` and replays nothing)."""
    now = clock.now()
    rate = float(current_app.config.get("REPLAY_RUNS_PER_SECOND") or 2.0)
    start = _stagger_start(now)
    first_gap = 0 if start == now else 1
    started = []
    for index, plan in enumerate(bulk.plans):
        due = start + timedelta(seconds=(index + first_gap) / rate)
        started.append(
            _start(user, plan, now, due_at=due, trigger_key=BULK_KEY_PREFIX + plan.origin.id)
        )
    db.session.flush()
    if started:
        wake.signal_work(db.session)
    return started
