"""Advancing a run, one node per step. The caller decides when to commit.

The runner does not know which worker drives it (embedded or Celery): it is
handed an execution it holds the lease of, does one step, and says what the
worker should do next. Every step's outcome is in the session when it returns.

Steps that touch nothing outside the database (the trigger, a condition, a
zero-minute delay, a skipped node, the end) may ride in one transaction with
the steps around them: repeating them after a crash is harmless. What must be
durable is what a request depends on, so the caller commits before every
action (``next_action`` says when one comes next) and when the run waits or
ends.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import sqlalchemy as sa

from app.definition import (
    ActionNode,
    ConditionNode,
    DelayNode,
    NodeResult,
    TriggerNode,
    WorkflowDefinition,
    reads_previous,
    templating,
    topological_order,
)
from app.definition.limits import RUN_TIMEOUTS_MS
from app.engine.clock import Clock
from app.engine.context import (
    IncidentView,
    field_value,
    previous_results,
    read_incident,
    template_context,
)
from app.engine.driver import DestinationSlots
from app.engine.failures import failure_context, record_failure
from app.engine.guards import run_marker
from app.engine.scrub import NOT_CREDENTIALS, Scrubber
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows.enums import ExecutionStatus, NodeStatus
from app.workflows.models import ExecutionAttempt, WorkflowExecution

log = logging.getLogger("incidentflow.engine.runner")

TERMINAL = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


class Next(Enum):
    """What the worker should do after a step."""

    CONTINUE = "continue"  # run the next step (now)
    WAIT = "wait"  # parked until ``due_at`` (a delay or a retry backoff)
    DONE = "done"  # the run has ended


@dataclass(frozen=True)
class Plan:
    """A run's definition, parsed once per (workflow, version) and shared."""

    definition: WorkflowDefinition
    order: list[str]
    nodes: dict[str, Any]
    incoming: dict[str, list[Any]]
    #: A template reads ``incident.previous``: actions read earlier runs' results.
    reads_previous: bool = False


_INSERT_ATTEMPT = ExecutionAttempt.__table__.insert()

_PLANS: OrderedDict[tuple[str, int], Plan] = OrderedDict()
_PLAN_CACHE_SIZE = 1024


def plan_for(execution: WorkflowExecution) -> Plan:
    """The parsed snapshot. A (workflow, version) snapshot never changes, so it is cached."""
    key = (execution.workflow_id, execution.workflow_version)
    plan = _PLANS.get(key)
    if plan is None:
        definition = WorkflowDefinition.model_validate(execution.definition_snapshot)
        incoming: dict[str, list[Any]] = {node.id: [] for node in definition.nodes}
        for edge in definition.edges:
            incoming[edge.target].append(edge)
        plan = Plan(
            definition=definition,
            order=topological_order(definition),
            nodes={node.id: node for node in definition.nodes},
            incoming=incoming,
            reads_previous=reads_previous(definition),
        )
        _PLANS[key] = plan
        if len(_PLANS) > _PLAN_CACHE_SIZE:
            _PLANS.popitem(last=False)
    return plan


@dataclass
class Engine:
    """What a step needs from outside: time, randomness, and how to act."""

    clock: Clock
    rng: random.Random = field(default_factory=random.Random)
    max_request_seconds: float = 30.0
    #: Caps requests in flight per destination (shared by a process's threads).
    slots: DestinationSlots | None = None
    #: How long a step waits when its destination has no free slot.
    defer_seconds: float = 0.2


@dataclass
class RunMemo:
    """What the steps of one drive of a run share: read once, not at every action.

    A drive lasts one worker slice (seconds), so a workflow renamed or a secret
    changed meanwhile is seen from the run's next drive.
    """

    workflow_name: str | None = None
    secrets: dict[str, str] | None = None
    #: The incident as a step read it; dropped after every request, which takes time.
    incident: IncidentView | None = None

    def current_incident(self, execution: WorkflowExecution) -> IncidentView:
        """The run's incident as it is now: read afresh unless nothing that takes time
        (a request) happened since the last read in this drive.

        No autoflush: the run's own changes go out once, at the caller's commit.
        """
        if self.incident is None:
            with db.session.no_autoflush:
                incident = read_incident(execution.incident_id)
            assert incident is not None  # executions restrict incident deletion
            self.incident = incident
        return self.incident

    def workflow_facts(self, execution: WorkflowExecution) -> tuple[str, dict[str, str]]:
        if self.workflow_name is None or self.secrets is None:
            self.workflow_name, self.secrets = secret_store.name_and_secrets(execution.workflow_id)
        return self.workflow_name, self.secrets


def results_of(execution: WorkflowExecution) -> dict[str, dict[str, Any]]:
    """The settled nodes of a run, by node id."""
    return {result["nodeId"]: result for result in execution.completed_nodes}


def _settle(
    execution: WorkflowExecution,
    node_id: str,
    status: NodeStatus,
    started: datetime,
    finished: datetime,
    *,
    result: Any = None,
    error: str | None = None,
) -> None:
    record = NodeResult(
        node_id=node_id,
        status=status,
        result=result,
        error=error,
        started_at=started,
        completed_at=finished,
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    # Assign a new list: JSON columns only notice assignment.
    execution.completed_nodes = [*execution.completed_nodes, record]


def _end(
    execution: WorkflowExecution, status: ExecutionStatus, now: datetime, error: str | None = None
) -> Next:
    last_node = execution.current_node_id
    execution.status = status
    execution.error = error
    execution.due_at = None
    execution.lease_owner = None
    execution.parked_until = None
    execution.current_node_id = None
    execution.attempt = 0
    if status == ExecutionStatus.FAILED:
        execution.failed_at = now
    else:
        execution.completed_at = now
    # node_id: where a failed or cancelled run stopped (the last node it worked on).
    details = {"execution_id": execution.id, "status": status.value, "node_id": last_node}
    log.info("run finished", extra=details)
    return Next.DONE


def fail(execution: WorkflowExecution, now: datetime, error: str) -> Next:
    """End the run FAILED; its incident's timeline gets a ``workflow_failed`` event
    (in the same transaction), which failure workflows trigger on."""
    record_failure(execution, execution.current_node_id, error, now)
    return _end(execution, ExecutionStatus.FAILED, now, error)


def cancel(execution: WorkflowExecution, now: datetime, by: str) -> None:
    """Cancel a pending, running or parked run. Ended runs stay as they are."""
    if execution.status in TERMINAL:
        return
    _end(execution, ExecutionStatus.CANCELLED, now, f"Cancelled by {by}.")


def _activated(plan: Plan, node_id: str, results: dict[str, dict[str, Any]]) -> bool:
    """A node runs if any incoming edge was taken; a condition takes the edge of its answer."""
    for edge in plan.incoming[node_id]:
        source = results.get(edge.source)
        if source is None or source["status"] != NodeStatus.COMPLETED:
            continue
        if edge.source_handle is None:
            return True
        matched = bool((source.get("result") or {}).get("matched"))
        if edge.source_handle == ("true" if matched else "false"):
            return True
    return False


def next_node(plan: Plan, results: dict[str, dict[str, Any]]) -> str | None:
    """The first unsettled node, in topological order, whose predecessors have all settled."""
    for node_id in plan.order:
        if node_id in results:
            continue
        if all(edge.source in results for edge in plan.incoming[node_id]):
            return node_id
    return None


def next_action(execution: WorkflowExecution) -> str | None:
    """The action node the run's next step will perform, if the next step is one.

    None when the next step touches nothing outside the database (or the run
    waits, or ends): the caller need not commit before it.
    """
    if execution.status in TERMINAL or execution.parked_until is not None:
        return None
    plan = plan_for(execution)
    results = results_of(execution)
    node_id = next_node(plan, results)
    if node_id is None or not isinstance(plan.nodes[node_id], ActionNode):
        return None
    if plan.incoming[node_id] and not _activated(plan, node_id, results):
        return None  # it will be skipped
    return node_id


def advance(execution: WorkflowExecution, engine: Engine, memo: RunMemo | None = None) -> Next:
    """Do one step of a run this worker holds. Commits nothing; the caller does.

    ``memo`` carries what the steps of one drive share (see RunMemo); without
    one, the step reads everything afresh.
    """
    memo = memo or RunMemo()
    now = engine.clock.now()
    if execution.status in TERMINAL:
        return Next.DONE
    plan = plan_for(execution)
    if execution.status == ExecutionStatus.PENDING:
        execution.status = ExecutionStatus.RUNNING
        execution.started_at = now
    timeout_ms = RUN_TIMEOUTS_MS[plan.definition.settings.timeout]
    if execution.working_ms >= timeout_ms:
        return fail(
            execution,
            now,
            f"The run timed out: it worked longer than its "
            f"{plan.definition.settings.timeout} timeout.",
        )

    if execution.parked_until is not None:
        # A delay ends: the node completes when the run wakes.
        if now < execution.parked_until:
            execution.due_at = execution.parked_until
            return Next.WAIT
        node = plan.nodes[execution.current_node_id or ""]
        assert isinstance(node, DelayNode)
        started = execution.parked_until - timedelta(minutes=node.data.duration_minutes)
        _settle(
            execution,
            node.id,
            NodeStatus.COMPLETED,
            started,
            now,
            result={"waitedUntil": execution.parked_until.isoformat()},
        )
        execution.parked_until = None
        return Next.CONTINUE

    results = results_of(execution)
    node_id = next_node(plan, results)
    if node_id is None:
        return _end(execution, ExecutionStatus.COMPLETED, now)
    if not _activated(plan, node_id, results) and plan.incoming[node_id]:
        _settle(execution, node_id, NodeStatus.SKIPPED, now, now)
        return Next.CONTINUE

    execution.current_node_id = node_id
    node = plan.nodes[node_id]
    started_mono = engine.clock.monotonic()
    try:
        if isinstance(node, TriggerNode):
            _settle(
                execution,
                node_id,
                NodeStatus.COMPLETED,
                now,
                now,
                result={
                    "triggeredBy": execution.triggered_by.value,
                    "event": execution.trigger_event.value if execution.trigger_event else None,
                },
            )
            return Next.CONTINUE
        if isinstance(node, ConditionNode):
            return _condition(execution, node, now, memo)
        if isinstance(node, DelayNode):
            return _delay(execution, node, now)
        assert isinstance(node, ActionNode)
        return _action(execution, plan, node, engine, now, timeout_ms, memo)
    finally:
        elapsed = engine.clock.monotonic() - started_mono
        execution.working_ms = execution.working_ms + int(elapsed * 1000)
        if execution.status == ExecutionStatus.FAILED:
            # A run cut off by its timeout worked its timeout, not the timeout plus the
            # milliseconds it took to notice.
            execution.working_ms = min(execution.working_ms, timeout_ms)


def _condition(
    execution: WorkflowExecution, node: ConditionNode, now: datetime, memo: RunMemo
) -> Next:
    incident = memo.current_incident(execution)
    actual = field_value(incident, node.data.field)
    matched = actual == node.data.value
    _settle(
        execution,
        node.id,
        NodeStatus.COMPLETED,
        now,
        now,
        result={
            "field": node.data.field,
            "expected": node.data.value,
            "actual": actual,
            "matched": matched,
        },
    )
    return Next.CONTINUE


def _delay(execution: WorkflowExecution, node: DelayNode, now: datetime) -> Next:
    minutes = node.data.duration_minutes
    if minutes == 0:
        _settle(
            execution,
            node.id,
            NodeStatus.COMPLETED,
            now,
            now,
            result={"waitedUntil": now.isoformat()},
        )
        return Next.CONTINUE
    execution.parked_until = now + timedelta(minutes=minutes)
    execution.due_at = execution.parked_until
    return Next.WAIT


def steps_for_templates(execution: WorkflowExecution) -> dict[str, Any]:
    return {
        r["nodeId"]: {"status": r["status"], "result": r.get("result")}
        for r in execution.completed_nodes
    }


def _action(
    execution: WorkflowExecution,
    plan: Plan,
    node: ActionNode,
    engine: Engine,
    now: datetime,
    timeout_ms: int,
    memo: RunMemo,
) -> Next:
    from app.engine import actions

    incident = memo.current_incident(execution)
    workflow_name, secrets = memo.workflow_facts(execution)
    scrub = Scrubber(value for name, value in secrets.items() if name not in NOT_CREDENTIALS)
    previous = None
    if plan.reads_previous:
        with db.session.no_autoflush:
            previous = previous_results(execution.incident_id, exclude_run=execution.id)
    context = template_context(
        execution,
        incident,
        workflow_name=workflow_name,
        steps=steps_for_templates(execution),
        secrets=secrets,
        previous=previous,
        failure=failure_context(execution),
    )
    number = execution.attempt + 1
    remaining = max((timeout_ms - execution.working_ms) / 1000, 0.001)
    timeout = min(remaining, engine.max_request_seconds)
    if sa.inspect(execution).detached:
        # A worker's run (written back by save_progress): since the commit before this
        # step only reads happened, so end them; a request must not hold a connection.
        db.session.rollback()
    outcome = actions.attempt(
        node.data,
        render=lambda source: templating.render(source, context, clock=engine.clock),
        secrets=secrets,
        idempotency_key=actions.idempotency_key(execution.id, node.id),
        run_marker=run_marker(execution.id),
        timeout=timeout,
        clock=engine.clock,
        slots=engine.slots,
    )
    if outcome.deferred:
        # Nothing was sent (the destination is full): not an attempt; again in a moment.
        execution.due_at = now + timedelta(seconds=engine.defer_seconds)
        return Next.WAIT
    memo.incident = None  # the request took time: the next step reads the incident again
    # The request was cut off by the run's own timeout: the run is out of time. Its
    # working time is what it spent, counted once when the step ends.
    run_timed_out = outcome.timed_out and timeout >= remaining
    retry = node.data.retry
    will_retry = (
        not outcome.ok and outcome.retryable and not run_timed_out and number < retry.attempts
    )
    retry_at = None
    if will_retry:
        from app.engine.retry import backoff_seconds

        delay = backoff_seconds(
            number,
            retry.initial_delay_ms,
            engine.rng,
            outcome.retry_after_seconds,
            cap_seconds=300.0,
        )
        retry_at = now + timedelta(seconds=delay)
    # A Core INSERT in the step's transaction: the ORM's unit of work costs twice as much.
    db.session.connection().execute(
        _INSERT_ATTEMPT,
        {
            "execution_id": execution.id,
            "node_id": node.id,
            "number": number,
            "ok": outcome.ok,
            "retry_at": retry_at,
            "status_code": outcome.status_code,
            "request": scrub(outcome.request),
            "response": scrub(outcome.response),
            "error": scrub(outcome.error) if outcome.error else None,
            "started_at": now,
            "duration_ms": outcome.duration_ms,
        },
    )
    finished = engine.clock.now()
    if outcome.ok:
        execution.attempt = 0
        _settle(
            execution, node.id, NodeStatus.COMPLETED, now, finished, result=scrub(outcome.result)
        )
        return Next.CONTINUE
    if retry_at is not None:
        execution.attempt = number
        execution.due_at = retry_at
        return Next.WAIT
    error = scrub(outcome.error or "The action failed.")
    if run_timed_out:
        error = (
            f"The run timed out: it worked longer than its "
            f"{plan.definition.settings.timeout} timeout, and this request was abandoned."
        )
    elif number > 1:
        error = f"{error} (after {number} attempts)"
    _settle(execution, node.id, NodeStatus.FAILED, now, finished, error=error)
    return fail(execution, finished, f"{node.data.name}: {error}")
