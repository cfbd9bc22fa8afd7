"""What a node's templates can use: the incident, assignee, team and workflow fields
(and the failed run, for a ``workflow_failed`` trigger), the results of actions that
always run before it, earlier workflows' results (``incident.previous``) and the
workflow's secrets (``variables_for``, ``Variables``), and which references in a
template do not exist (``unknown_references``). The editor offers these as
completions; ``checks.py`` reports the unknown ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from app.definition import (
    MAX_BODY_LENGTH,
    PREVIOUS_FIELD,
    AssigneeContext,
    DelayNode,
    FailureContext,
    IncidentContext,
    TeamContext,
    TriggerNode,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowEdge,
    always_runs_before,
)
from app.definition.templating import TemplateSyntaxProblem, template_references
from app.extensions import db
from app.workflows.drafts.parts import draft_edges, draft_nodes, is_action, node_label
from app.workflows.enums import NodeType, TriggerType
from app.workflows.models import Workflow

__all__ = [
    "CONTEXT_FIELDS",
    "FAILURE_FIELDS",
    "MAX_PREVIOUS_SOURCES",
    "Variables",
    "graph_runs_before",
    "previous_sources",
    "unknown_references",
    "variables_for",
]

_CONTEXT_MODELS: dict[str, type[BaseModel]] = {
    "incident": IncidentContext,
    "assignee": AssigneeContext,
    "team": TeamContext,
    "workflow": WorkflowContext,
}
CONTEXT_FIELDS: dict[str, list[str]] = {
    root: [info.alias or name for name, info in model.model_fields.items()]
    for root, model in _CONTEXT_MODELS.items()
}
FAILURE_FIELDS = [info.alias or name for name, info in FailureContext.model_fields.items()]
CONTEXT_FIELDS["incident"].append(PREVIOUS_FIELD)

#: How many earlier workflows' steps the variable list offers under ``incident.previous``.
MAX_PREVIOUS_SOURCES = 40


def previous_sources(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(workflow name, node id, node name) of the action steps whose results a run of
    ``workflow`` can read as ``incident.previous[...]``: the workflows (not templates)
    that can run on the same incidents — this team's, and global ones — itself included."""
    scope = sa.or_(Workflow.team_id.is_(None), Workflow.team_id == workflow.team_id)
    rows = db.session.execute(
        sa.select(Workflow.name, Workflow.definition)
        .where(Workflow.is_template.is_(False), scope if workflow.team_id else sa.true())
        .order_by(Workflow.name)
        .limit(MAX_PREVIOUS_SOURCES)
    )
    found: list[tuple[str, str, str]] = []
    for name, definition in rows:
        for node in draft_nodes(definition if isinstance(definition, Mapping) else {}):
            if is_action(node) and isinstance(node.get("id"), str):
                found.append((name, node["id"], node_label(node)))
    return found


@dataclass(frozen=True)
class Variables:
    """What a node's templates can use."""

    context: dict[str, list[str]]
    steps: list[tuple[str, str]]  # (node id, name) of actions that always run before
    secrets: list[str]
    secrets_allowed: bool
    #: node id -> the fields of its result (the action type's RESULT_SHAPE)
    step_shapes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (workflow name, node id, node name) readable as incident.previous[...]
    previous: list[tuple[str, str, str]] = field(default_factory=list)

    @staticmethod
    def previous_expression(workflow_name: str, node_id: str) -> str:
        quoted = json.dumps(workflow_name, ensure_ascii=False)
        return "{{ incident.previous[" + quoted + "][" + json.dumps(node_id) + "].result }}"

    def step_expression(self, node_id: str, result_field: str | None = None) -> str:
        return "{{ " + self.step_path(node_id, result_field) + " }}"

    def step_path(self, node_id: str, result_field: str | None = None) -> str:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node_id):
            path = "steps." + node_id + ".result"
        else:
            path = 'steps["' + node_id + '"].result'
        return f"{path}.{result_field}" if result_field else path

    def paths(self) -> list[str]:
        """Every variable a template here can use, as typed between ``{{`` and ``}}``."""
        found = [f"{root}.{name}" for root, names in self.context.items() for name in names]
        for step_id, _name in self.steps:
            found.append(self.step_path(step_id))
            found += [self.step_path(step_id, key) for key in self.step_shapes.get(step_id, {})]
        for workflow_name, node_id, _name in self.previous:
            found.append(self.previous_expression(workflow_name, node_id)[3:-3])
        if self.secrets_allowed:
            found += [f"secrets.{name}" for name in self.secrets]
        return found


def graph_runs_before(definition: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """always_runs_before on the draft's graph alone, even while other fields are invalid."""
    nodes = [n for n in draft_nodes(definition) if isinstance(n.get("id"), str)]
    ids = {n["id"] for n in nodes}
    # Only ids, node kinds and edge ends matter here: build the models unvalidated.
    built: list[Any] = []
    for n in nodes:
        model = TriggerNode if n.get("type") == NodeType.TRIGGER.value else DelayNode
        built.append(model.model_construct(**{"id": n["id"]}))
    edges = [
        WorkflowEdge.model_construct(id=str(e.get("id")), source=e["source"], target=e["target"])
        for e in draft_edges(definition)
        if e.get("source") in ids and e.get("target") in ids
    ]
    graph_only: dict[str, Any] = {"nodes": built, "edges": edges}
    try:
        return always_runs_before(WorkflowDefinition.model_construct(**graph_only))
    except ValueError:  # no trigger, or a cycle: nothing is certain to run before
        return {}


def _issue_action(node: Mapping[str, Any]) -> bool:
    data = node.get("data")
    return isinstance(data, Mapping) and data.get("actionType") in ("jira", "linear")


def variables_for(
    definition: Mapping[str, Any],
    node_id: str,
    secret_names: Iterable[str],
    runs_before: Mapping[str, frozenset[str]] | None = None,
    previous: list[tuple[str, str, str]] | None = None,
) -> Variables:
    runs_before = graph_runs_before(definition) if runs_before is None else runs_before
    earlier = runs_before.get(node_id, frozenset())
    node = next((n for n in draft_nodes(definition) if n.get("id") == node_id), {})
    from app.engine.actions import RESULT_SHAPES

    trigger = definition.get("trigger")
    failed_trigger = (
        isinstance(trigger, Mapping) and trigger.get("type") == TriggerType.WORKFLOW_FAILED.value
    )
    steps = [n for n in draft_nodes(definition) if n.get("id") in earlier and is_action(n)]
    shapes = {}
    for step in steps:
        data = step.get("data")
        kind = data.get("actionType") if isinstance(data, Mapping) else None
        shapes[str(step["id"])] = RESULT_SHAPES.get(str(kind), {})
    return Variables(
        # A failure workflow also sees the failed run.
        context=CONTEXT_FIELDS | {"failure": FAILURE_FIELDS} if failed_trigger else CONTEXT_FIELDS,
        steps=[(str(n["id"]), node_label(n)) for n in steps],
        secrets=sorted(secret_names),
        secrets_allowed=not _issue_action(node),
        step_shapes=shapes,
        previous=previous or [],
    )


def unknown_references(source: str, variables: Variables) -> list[tuple[str, bool]]:
    """(message, only a warning) for each variable in ``source`` that does not exist."""
    if len(source) > MAX_BODY_LENGTH:
        # No field holds more; reading it would only keep the request busy.
        return [
            (
                f"This is longer than {MAX_BODY_LENGTH:,} characters, "
                "more than any field may hold.",
                False,
            )
        ]
    try:
        references = template_references(source)
    except TemplateSyntaxProblem as problem:
        return [(problem.message, False)]
    found: list[tuple[str, bool]] = []
    steps = {step_id for step_id, _name in variables.steps}
    for reference in references:
        root = reference[0]
        if root in variables.context:
            fields = variables.context[root]
            if len(reference) > 1 and reference[1] not in fields:
                found.append(
                    (
                        f"'{root}' has no field '{reference[1]}'; available: "
                        f"{', '.join(sorted(fields))}.",
                        False,
                    )
                )
        elif root == "steps" and len(reference) > 3 and reference[1] in steps:
            shape = variables.step_shapes.get(reference[1]) or {}
            if reference[2] == "result" and shape and reference[3] not in shape:
                found.append(
                    (
                        f"steps.{reference[1]}.result has no field '{reference[3]}'; "
                        f"available: {', '.join(shape)}.",
                        False,
                    )
                )
        elif root == "steps":
            if len(reference) == 1 or reference[1] not in steps:
                step = reference[1] if len(reference) > 1 else "<nodeId>"
                usable = ", ".join(sorted(steps)) or "none yet"
                found.append(
                    (
                        f"Unknown variable steps.{step}: only actions that always run before "
                        f"this node can be used (here: {usable}).",
                        False,
                    )
                )
        elif root == "secrets":
            if not variables.secrets_allowed:
                found.append(
                    (
                        "Secrets cannot be used here: the text is visible to everyone who can "
                        "read the issue.",
                        False,
                    )
                )
            elif len(reference) == 1:
                found.append(("Refer to a secret by name, as in {{ secrets.<name> }}.", False))
            elif reference[1] not in variables.secrets:
                found.append(
                    (
                        f"This workflow has no secret named '{reference[1]}' yet; add it "
                        "before enabling the workflow.",
                        True,
                    )
                )
        else:
            found.append(
                (
                    f"Unknown variable '{root}'; templates can use incident, assignee, team, "
                    "workflow, steps and secrets (and failure, with a 'workflow_failed' "
                    "trigger).",
                    False,
                )
            )
    return found
