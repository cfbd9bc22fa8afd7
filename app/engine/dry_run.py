"""Dry runs: a workflow against a chosen incident, with no side effects.

Conditions are evaluated on the live incident, templates are rendered, and each
action's request is built exactly as it would be sent, with secrets masked. Delays
are reported, not waited for; results of earlier steps, which only a real run
produces, appear in templates as placeholders such as ``<steps.jira.result.key>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.engine import actions, templating
from app.engine.context import field_value, template_context
from app.engine.failures import SAMPLE_FAILURE
from app.incidents.models import Incident
from app.workflows import secrets as secret_store
from app.workflows.enums import NodeStatus, TriggerType
from app.workflows.models import Workflow, WorkflowExecution
from app.workflows.schema import (
    ActionNode,
    ConditionNode,
    DelayNode,
    WorkflowDefinition,
    topological_order,
)


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


def dry_run(workflow: Workflow, incident: Incident, *, clock: Any = time) -> list[DryStep]:
    """Walk the workflow's current definition against ``incident``; nothing is sent or stored."""
    definition = WorkflowDefinition.model_validate(workflow.definition)
    incoming: dict[str, list[Any]] = {node.id: [] for node in definition.nodes}
    for edge in definition.edges:
        incoming[edge.target].append(edge)
    nodes = {node.id: node for node in definition.nodes}
    secrets = secret_store.decrypt_for_request(workflow.id)
    steps = {
        node.id: {
            "status": NodeStatus.COMPLETED.value,
            "result": StepPlaceholder(f"<steps.{node.id}.result>"),
        }
        for node in definition.nodes
        if isinstance(node, ActionNode)
    }
    stand_in = WorkflowExecution(id="dry-run", workflow_id=workflow.id)
    context = template_context(
        stand_in,
        incident,
        workflow_name=workflow.name,
        steps=steps,
        secrets=secrets,
        # No failed run to show: a failure workflow's dry run uses a sample one.
        failure=SAMPLE_FAILURE if definition.trigger.type == TriggerType.WORKFLOW_FAILED else None,
    )
    deadline = clock.monotonic() + DRY_RUN_RENDER_SECONDS
    outcome: dict[str, tuple[str, bool | None]] = {}  # node -> (status, matched)
    report: list[DryStep] = []
    for node_id in topological_order(definition):
        node = nodes[node_id]
        reached = not incoming[node_id] or any(
            outcome.get(edge.source, ("skipped", None))[0] != "skipped"
            and (
                edge.source_handle is None
                or edge.source_handle == ("true" if outcome[edge.source][1] else "false")
            )
            for edge in incoming[node_id]
        )
        name = getattr(node.data, "name", node_id)
        if not reached:
            outcome[node_id] = ("skipped", None)
            report.append(DryStep(node_id, name, node.type, "skipped"))
            continue
        if isinstance(node, ConditionNode):
            actual = field_value(incident, node.data.field)
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
            report.append(
                DryStep(
                    node_id, name, node.type, "would wait", {"minutes": node.data.duration_minutes}
                )
            )
        elif isinstance(node, ActionNode):
            preview = actions.preview(
                node.data,
                render=lambda source: templating.render(
                    source, context, clock=clock, deadline=deadline
                ),
                secrets=secrets,
                idempotency_key=actions.idempotency_key("dry-run", node_id),
            )
            failed = "error" in preview
            outcome[node_id] = ("ran", None)
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
