"""Dry runs: a workflow against a chosen incident, with no side effects.

Conditions are evaluated on the live incident, templates are rendered, and each
action's request is built exactly as it would be sent, with secrets masked. Delays
are reported, not waited for; results of earlier steps, which only a real run
produces, appear in templates as placeholders such as ``<steps.jira.result.key>``.
``incident.previous`` holds the real results of the incident's earlier runs, as a
run started now would see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.definition import (
    ActionNode,
    ConditionNode,
    DelayNode,
    WorkflowDefinition,
    reads_previous,
    templating,
    topological_order,
)
from app.engine import actions
from app.engine.context import IncidentLike, field_value, previous_results, template_context
from app.engine.failures import SAMPLE_FAILURE
from app.incidents.models import Incident
from app.workflows import secrets as secret_store
from app.workflows.enums import NodeStatus, TriggerType
from app.workflows.models import Workflow, WorkflowExecution


class StepPlaceholder(str):
    """Stands for an earlier step's result in a dry run; any path below it is one too."""

    __slots__ = ()

    def _below(self, name: Any) -> StepPlaceholder:
        return StepPlaceholder(f"{str.__str__(self)[:-1]}.{name}>")

    def __getattr__(self, name: str) -> StepPlaceholder:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._below(name)

    def __getitem__(self, key: Any) -> StepPlaceholder:
        return self._below(key)


@dataclass
class DryStep:
    node_id: str
    name: str
    kind: str
    status: str  # "would run", "would wait", "skipped", "failed"
    detail: dict[str, Any] = field(default_factory=dict)


#: All templates of one dry run render within this time together: a dry run answers a
#: page request, so it must not hold a web worker for longer.
DRY_RUN_RENDER_SECONDS = 1.0


def dry_run(
    workflow: Workflow,
    incident: Incident,
    *,
    clock: Any = time,
    draft: Mapping[str, Any] | None = None,
    pending_secrets: Iterable[str] = (),
) -> list[DryStep]:
    """Walk the workflow's current definition (or an unsaved ``draft`` of it) against
    ``incident``; nothing is sent or stored. ``pending_secrets`` are secrets typed in the
    draft and not stored yet: their values stay encrypted, a stand-in is shown instead."""
    definition = WorkflowDefinition.model_validate(workflow.definition if draft is None else draft)
    secrets = {
        **secret_store.decrypt_for_request(workflow.id),
        **{name: f"<secret {name}, stored when the draft is saved>" for name in pending_secrets},
    }
    return walk(
        definition,
        incident,
        workflow_id=workflow.id,
        workflow_name=definition.name,
        secrets=secrets,
        # Earlier runs' results are read only when a template asks for them.
        previous=previous_results(incident.id) if reads_previous(definition) else {},
        clock=clock,
    )


def walk(
    definition: WorkflowDefinition,
    incident: IncidentLike,
    *,
    workflow_id: str,
    workflow_name: str,
    secrets: dict[str, str],
    previous: dict[str, Any],
    clock: Any = time,
    render_actions: bool = True,
    incident_at: Callable[[int], IncidentLike] | None = None,
) -> list[DryStep]:
    """The path ``definition`` takes for ``incident``, and (``render_actions``) each action's
    request as it would be sent, secrets masked. Nothing is sent or stored.

    Conditions read ``incident``, or with ``incident_at`` the incident as it was that
    many minutes (the delays before the condition) after the starting point: a backtest
    knows the incident's history, a dry run only its present.
    """
    incoming: dict[str, list[Any]] = {node.id: [] for node in definition.nodes}
    for edge in definition.edges:
        incoming[edge.target].append(edge)
    nodes = {node.id: node for node in definition.nodes}
    steps = {
        node.id: {
            "status": NodeStatus.COMPLETED.value,
            "result": StepPlaceholder(f"<steps.{node.id}.result>"),
        }
        for node in definition.nodes
        if isinstance(node, ActionNode)
    }
    context: dict[str, Any] = {}
    if render_actions:
        stand_in = WorkflowExecution(id="dry-run", workflow_id=workflow_id)
        context = template_context(
            stand_in,
            incident,
            workflow_name=workflow_name,
            steps=steps,
            secrets=secrets,
            previous=previous,
            # No failed run to show: a failure workflow's dry run uses a sample one.
            failure=(
                SAMPLE_FAILURE if definition.trigger.type == TriggerType.WORKFLOW_FAILED else None
            ),
        )
    deadline = clock.monotonic() + DRY_RUN_RENDER_SECONDS
    outcome: dict[str, tuple[str, bool | None]] = {}  # node -> (status, matched)
    waited: dict[str, int] = {}  # node -> minutes of delays before it (longest path)
    report: list[DryStep] = []
    for node_id in topological_order(definition):
        node = nodes[node_id]
        taken = [
            edge
            for edge in incoming[node_id]
            if outcome.get(edge.source, ("skipped", None))[0] != "skipped"
            and (
                edge.source_handle is None
                or edge.source_handle == ("true" if outcome[edge.source][1] else "false")
            )
        ]
        reached = not incoming[node_id] or bool(taken)
        name = getattr(node.data, "name", node_id)
        if not reached:
            outcome[node_id] = ("skipped", None)
            report.append(DryStep(node_id, name, node.type, "skipped"))
            continue
        waited[node_id] = max((waited.get(edge.source, 0) for edge in taken), default=0)
        if isinstance(node, ConditionNode):
            seen = incident if incident_at is None else incident_at(waited[node_id])
            actual = field_value(seen, node.data.field)
            matched = actual == node.data.value
            outcome[node_id] = ("ran", matched)
            report.append(
                DryStep(
                    node_id,
                    name,
                    node.type,
                    "would run",
                    {
                        "field": node.data.field,
                        "expected": node.data.value,
                        "actual": actual,
                        "matched": matched,
                    },
                )
            )
        elif isinstance(node, DelayNode):
            outcome[node_id] = ("ran", None)
            waited[node_id] += node.data.duration_minutes
            report.append(
                DryStep(
                    node_id, name, node.type, "would wait", {"minutes": node.data.duration_minutes}
                )
            )
        elif isinstance(node, ActionNode):
            outcome[node_id] = ("ran", None)
            if not render_actions:
                kind = f"{node.type} · {node.data.action_type}"
                report.append(DryStep(node_id, name, kind, "would run"))
                continue
            preview = actions.preview(
                node.data,
                render=lambda source: templating.render(
                    source, context, clock=clock, deadline=deadline
                ),
                secrets=secrets,
                idempotency_key=actions.idempotency_key("dry-run", node_id),
            )
            failed = "error" in preview
            report.append(
                DryStep(
                    node_id,
                    name,
                    f"{node.type} · {node.data.action_type}",
                    "failed" if failed else "would run",
                    preview,
                )
            )
        else:
            outcome[node_id] = ("ran", None)
            report.append(DryStep(node_id, name, node.type, "would run"))
    return report
