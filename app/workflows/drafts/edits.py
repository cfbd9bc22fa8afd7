"""Edits to a draft's definition: adding, changing and removing nodes and edges, the
trigger and the settings, and merging a stale form's edits into the draft
(``merge_edits``: field by field; a field both sides changed is an ``EditConflict``).

Each edit checks the draft as it is now, works on a copy of its definition and
stores the result (re-laid out when the graph changed); it flushes and never
commits. Finding and saving drafts is ``store.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidInput
from app.extensions import db
from app.workflows.drafts.parts import Json, Loc, draft_edges, draft_nodes, node_label
from app.workflows.enums import NodeType
from app.workflows.graph.layout import apply_layout
from app.workflows.models import WorkflowDraft

__all__ = [
    "EditConflict",
    "HANDLES",
    "MISSING",
    "NODE_KINDS",
    "RUN_LIMIT_KEYS",
    "add_edge",
    "add_node",
    "edge_targets",
    "merge_edits",
    "remove_edge",
    "remove_node",
    "update_node",
    "update_settings",
    "update_trigger",
]

_RETRY: Json = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000}

#: What "Add node" can add, with the data a new node starts with.
NODE_KINDS: dict[str, tuple[str, Json]] = {
    "webhook": (
        NodeType.ACTION.value,
        {
            "actionType": "webhook",
            "name": "Call a webhook",
            "config": {
                "url": "",
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": '{"title": {{ incident.title | tojson }}}',
                "auth": {"type": "none"},
            },
            "retry": _RETRY,
        },
    ),
    "jira": (
        NodeType.ACTION.value,
        {
            "actionType": "jira",
            "name": "Create a Jira issue",
            "config": {
                "projectKey": "",
                "issueType": "Task",
                "summary": "[{{ incident.priority }}] {{ incident.title }}",
                "description": "{{ incident.description }}",
            },
            "retry": _RETRY,
        },
    ),
    "linear": (
        NodeType.ACTION.value,
        {
            "actionType": "linear",
            "name": "Create a Linear issue",
            "config": {
                "teamId": "",
                "title": "{{ incident.title }}",
                "description": "{{ incident.description }}",
            },
            "retry": _RETRY,
        },
    ),
    "condition": (
        NodeType.CONDITION.value,
        {"field": "priority", "operator": "=", "value": "P1", "name": "Is it a P1?"},
    ),
    "delay": (NodeType.DELAY.value, {"durationMinutes": 10, "name": "Wait 10 minutes"}),
}
HANDLES = ("true", "false")


# --- merging a stale form ---------------------------------------------------------


#: A key one side of a merge does not have.
MISSING: Any = object()


@dataclass(frozen=True)
class EditConflict:
    """A field both this form and another change touched: the draft's value and the form's."""

    path: Loc
    theirs: Any
    yours: Any


def merge_edits(
    base: Any, yours: Any, theirs: Any, path: Loc = ()
) -> tuple[Any, list[EditConflict]]:
    """Three-way merge of a form's edits (``yours``, made on ``base``) into the draft's
    current value (``theirs``). Objects merge key by key; other values are leaves."""
    if yours in (theirs, base):
        return theirs, []
    if theirs == base:
        return yours, []
    if isinstance(base, Mapping) and isinstance(yours, Mapping) and isinstance(theirs, Mapping):
        merged: Json = {}
        conflicts: list[EditConflict] = []
        for key in [*theirs, *(k for k in yours if k not in theirs)]:
            value, found = merge_edits(
                base.get(key, MISSING),
                yours.get(key, MISSING),
                theirs.get(key, MISSING),
                (*path, key),
            )
            conflicts.extend(found)
            if value is not MISSING:
                merged[key] = value
        return merged, conflicts
    return theirs, [EditConflict(path, theirs, yours)]


# --- changes ---------------------------------------------------------------------


def _find_node(definition: Mapping[str, Any], node_id: str, loc: str = "node") -> Json:
    for node in draft_nodes(definition):
        if node.get("id") == node_id:
            return node
    raise InvalidInput.at(
        loc,
        f"There is no node '{node_id}' in your draft (was it removed in another tab?). "
        "Reload the page.",
    )


def _store(draft: WorkflowDraft, definition: Json, *, relayout: bool = False) -> None:
    draft.definition = apply_layout(definition) if relayout else definition
    db.session.flush()


def update_node(draft: WorkflowDraft, node_id: str, data: Json) -> None:
    definition = copy.deepcopy(draft.definition)
    _find_node(definition, node_id)["data"] = data
    _store(draft, definition)


def update_trigger(draft: WorkflowDraft, node_id: str, data: Json, trigger: Json) -> None:
    definition = copy.deepcopy(draft.definition)
    node = _find_node(definition, node_id)
    if node.get("type") != NodeType.TRIGGER.value:
        raise InvalidInput.at("node", f"'{node_id}' is not the trigger node.")
    node["data"] = data
    definition["trigger"] = trigger
    _store(draft, definition)


RUN_LIMIT_KEYS = ("oncePerIncident", "oncePerIncidentMinutes")


def update_settings(
    draft: WorkflowDraft,
    *,
    name: str,
    description: str,
    timeout: str,
    run_limit: Mapping[str, Any] | None = None,
) -> None:
    """Name, description, time limit and (when given) the run limit, replacing the old one."""
    definition = copy.deepcopy(draft.definition)
    definition["name"] = name
    definition["description"] = description
    settings = definition.get("settings")
    new_settings = {
        **(settings if isinstance(settings, dict) else {"enabled": False}),
        "timeout": timeout,
    }
    if run_limit is not None:
        for key in RUN_LIMIT_KEYS:
            new_settings.pop(key, None)
        new_settings.update(run_limit)
    definition["settings"] = new_settings
    _store(draft, definition)


def _unique_id(taken: set[str], base: str) -> str:
    number = 1
    while f"{base}{number}" in taken:
        number += 1
    return f"{base}{number}"


def add_node(
    draft: WorkflowDraft,
    kind: str,
    *,
    after: str,
    handle: str | None = None,
    insert: bool = False,
) -> str:
    """Add a node of ``kind`` with an edge from ``after`` (on a condition's branch).

    ``insert``: the new node goes between ``after`` and what follows it (on that
    branch, for a condition): those edges now leave the new node (from a new condition,
    on its true branch). Otherwise the new node starts a branch of its own.
    """
    if kind not in NODE_KINDS:
        raise InvalidInput.at("kind", "Choose what to add: " + ", ".join(NODE_KINDS) + ".")
    definition = copy.deepcopy(draft.definition)
    source = _find_node(definition, after, "after")
    edges = draft_edges(definition)
    node_type, data = NODE_KINDS[kind]
    is_condition = source.get("type") == NodeType.CONDITION.value
    following = [
        e
        for e in edges
        if e.get("source") == after and (not is_condition or e.get("sourceHandle") == handle)
    ]
    if insert and following:
        if is_condition and handle not in HANDLES:
            raise InvalidInput.at("handle", "Choose the branch: if true or if false.")
        branch = handle if is_condition else None
        edges = [e for e in edges if e not in following]
    else:
        branch = _branch(source, handle, edges, "handle")
    node_id = _unique_id({str(n.get("id")) for n in draft_nodes(definition)}, f"{kind}_")
    definition["nodes"] = [
        *draft_nodes(definition),
        {
            "id": node_id,
            "type": node_type,
            "position": {"x": 0, "y": 0},
            "data": copy.deepcopy(data),
        },
    ]
    edges = [*edges, _edge(edges, after, node_id, branch)]
    if insert:
        onward = "true" if node_type == NodeType.CONDITION.value else None
        for old in following:
            edges = [*edges, _edge(edges, node_id, str(old.get("target")), onward)]
    definition["edges"] = edges
    _store(draft, definition, relayout=True)
    return node_id


def _branch(
    source: Mapping[str, Any], handle: str | None, edges: list[Json], loc: str
) -> str | None:
    """The handle an edge from ``source`` takes: a free branch of a condition, else none."""
    if source.get("type") != NodeType.CONDITION.value:
        return None
    if handle not in HANDLES:
        raise InvalidInput.at(loc, "Choose the branch: if true or if false.")
    for edge in edges:
        if edge.get("source") == source.get("id") and edge.get("sourceHandle") == handle:
            raise InvalidInput.at(
                loc,
                f"The '{handle}' branch of '{node_label(source)}' is already connected; "
                "remove that edge first or choose the other branch.",
            )
    return handle


def _edge(edges: list[Json], source: str, target: str, handle: str | None) -> Json:
    edge: Json = {
        "id": _unique_id({str(e.get("id")) for e in edges}, "e"),
        "source": source,
        "target": target,
    }
    if handle is not None:
        edge["sourceHandle"] = handle
    return edge


def remove_node(draft: WorkflowDraft, node_id: str) -> None:
    """Remove a node and every edge that touches it."""
    definition = copy.deepcopy(draft.definition)
    node = _find_node(definition, node_id)
    if node.get("type") == NodeType.TRIGGER.value:
        raise InvalidInput.at(
            "node", "The trigger cannot be removed; every workflow starts with one."
        )
    definition["nodes"] = [n for n in draft_nodes(definition) if n.get("id") != node_id]
    definition["edges"] = [
        e for e in draft_edges(definition) if node_id not in (e.get("source"), e.get("target"))
    ]
    _store(draft, definition, relayout=True)


def add_edge(draft: WorkflowDraft, source_id: str, target_id: str, handle: str | None) -> str:
    """Connect two nodes; refuses edges the schema would reject."""
    if not target_id:
        raise InvalidInput.at("target", "Choose the node the edge leads to.")
    definition = copy.deepcopy(draft.definition)
    source = _find_node(definition, source_id, "source")
    target = _find_node(definition, target_id, "target")
    edges = draft_edges(definition)
    if source_id == target_id:
        raise InvalidInput.at("target", "An edge cannot connect a node to itself.")
    if target.get("type") == NodeType.TRIGGER.value:
        raise InvalidInput.at(
            "target", "The trigger starts the workflow; no edge may lead into it."
        )
    branch = _branch(source, handle, edges, "handle")
    for edge in edges:
        if (edge.get("source"), edge.get("target"), edge.get("sourceHandle")) == (
            source_id,
            target_id,
            branch,
        ):
            raise InvalidInput.at("target", "These two nodes are already connected.")
    if source_id in _reachable_from(target_id, edges):
        raise InvalidInput.at(
            "target",
            f"'{node_label(target)}' already leads to '{node_label(source)}'; "
            "this edge would make a loop.",
        )
    edge = _edge(edges, source_id, target_id, branch)
    definition["edges"] = [*edges, edge]
    _store(draft, definition, relayout=True)
    return str(edge["id"])


def edge_targets(definition: Mapping[str, Any], source_id: str) -> list[str]:
    """The nodes an edge from ``source_id`` may lead to: not itself, not the trigger, not
    one it already leads to, and none that leads back to it (a loop)."""
    edges = draft_edges(definition)
    taken = {e.get("target") for e in edges if e.get("source") == source_id}
    return [
        str(n.get("id"))
        for n in draft_nodes(definition)
        if n.get("id") != source_id
        and n.get("type") != NodeType.TRIGGER.value
        and n.get("id") not in taken
        and source_id not in _reachable_from(str(n.get("id")), edges)
    ]


def _reachable_from(start: str, edges: list[Json]) -> set[str]:
    successors: dict[Any, list[Any]] = {}
    for edge in edges:
        successors.setdefault(edge.get("source"), []).append(edge.get("target"))
    seen = {start}
    stack = [start]
    while stack:
        for target in successors.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def remove_edge(draft: WorkflowDraft, edge_id: str) -> None:
    definition = copy.deepcopy(draft.definition)
    edges = draft_edges(definition)
    kept = [e for e in edges if e.get("id") != edge_id]
    if len(kept) == len(edges):
        raise InvalidInput.at(
            "edge", "That edge is no longer in your draft (removed in another tab?)."
        )
    definition["edges"] = kept
    _store(draft, definition, relayout=True)
