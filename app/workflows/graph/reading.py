"""Reading a workflow definition for the picture: a plain dict that may be invalid.

Missing keys, wrong types, dangling edges and duplicate ids are read as well as
they can be, never raised: ``read_graph`` keeps what can be drawn (nodes with a
kind, a name and a subtitle; edges between nodes that exist) for the layout
(``layout.py``) and the drawing (``svg.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Stored coordinates beyond this are ignored (the automatic layout is used instead).
_MAX_COORDINATE = 1_000_000.0


@dataclass
class GraphNode:
    """A node as it can be drawn, whatever the definition held."""

    index: int  # position in definition["nodes"]
    id: str
    has_id: bool  # the id is a real string id (it can be linked and looked up)
    kind: str  # trigger / webhook / jira / linear / action / condition / delay / unknown
    name: str
    subtitle: str
    position: tuple[float, float] | None  # stored position, when usable


@dataclass
class GraphEdge:
    """An edge between two nodes that exist (dangling edges are not read)."""

    id: str
    source: int  # index into the Graph's nodes
    target: int
    handle: str | None  # "true" / "false" / None


@dataclass
class Graph:
    """The drawable part of a definition; ``trigger`` is the first trigger node's index."""

    name: str
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    trigger: int | None = None


_TRIGGER_LABELS = {
    "incident_created": "incident created",
    "state_changed": "state changed",
    "escalation": "escalation",
    "age": "incident age",
    "manual": "manual run",
}
KIND_LABELS = {
    "trigger": "Trigger",
    "webhook": "Webhook",
    "jira": "Jira issue",
    "linear": "Linear issue",
    "action": "Action",
    "condition": "Condition",
    "delay": "Delay",
    "unknown": "Step",
}
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def one_line(value: object) -> str:
    """A printable one-line string for a value of any type ('' for containers)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = "" if value is None else str(value).lower()
    elif isinstance(value, int | float):
        text = str(value)
    else:
        return ""
    return CONTROL_RE.sub(" ", text).replace("\n", " ").replace("\r", " ").replace("\t", " ")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) > _MAX_COORDINATE:
        return None
    return number


def _kind(node: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    node_type = node.get("type")
    if node_type == "action":
        action_type = data.get("actionType")
        return action_type if action_type in ("webhook", "jira", "linear") else "action"
    if node_type in ("trigger", "condition", "delay"):
        return str(node_type)
    return "unknown"


def _subtitle(
    kind: str, node: Mapping[str, Any], data: Mapping[str, Any], definition: Mapping[str, Any]
) -> str:
    config = _mapping(data.get("config"))
    if kind == "trigger":
        trigger = _mapping(definition.get("trigger"))
        trigger_type = trigger.get("type")
        label = _TRIGGER_LABELS.get(trigger_type, one_line(trigger_type)) if trigger_type else ""
        if trigger_type == "state_changed":
            to = one_line(_mapping(trigger.get("stateTransition")).get("to"))
            label = f"state → {to}" if to else label
        elif trigger_type == "age":
            minutes = one_line(trigger.get("ageThresholdMinutes"))
            label = f"age > {minutes} min" if minutes else label
        return f"On {label}" if label else "Trigger"
    if kind == "webhook":
        method = one_line(config.get("method"))
        return f"Webhook · {method}" if method else "Webhook"
    if kind == "jira":
        project = one_line(config.get("projectKey"))
        return f"Jira issue · {project}" if project else "Jira issue"
    if kind == "linear":
        return "Linear issue"
    if kind == "condition":
        return f"{one_line(data.get('field')) or '?'} = {one_line(data.get('value'))}"
    if kind == "delay":
        minutes = one_line(data.get("durationMinutes"))
        return f"wait {minutes or '?'} min"
    if kind == "action":
        action_type = one_line(data.get("actionType"))
        return f"Action · {action_type}" if action_type else "Action"
    return one_line(node.get("type")) or "Unknown step"


def read_graph(definition: Mapping[str, Any]) -> Graph:
    """Takes a definition as a plain dict (possibly invalid); gives its drawable graph."""
    graph = Graph(name=one_line(definition.get("name")))
    raw_nodes = definition.get("nodes")
    if not isinstance(raw_nodes, list):
        raw_nodes = []
    index_of: dict[str, int] = {}
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping):
            continue
        raw_id = raw.get("id")
        has_id = isinstance(raw_id, str) and raw_id != ""
        node_id = raw_id if isinstance(raw_id, str) else one_line(raw_id)
        data = _mapping(raw.get("data"))
        kind = _kind(raw, data)
        subtitle = _subtitle(kind, raw, data, definition)
        position = _mapping(raw.get("position"))
        x, y = _number(position.get("x")), _number(position.get("y"))
        name = one_line(data.get("name")).strip() or node_id or "(unnamed)"
        internal = len(graph.nodes)
        graph.nodes.append(
            GraphNode(
                index=index,
                id=node_id,
                has_id=has_id,
                kind=kind,
                name=name,
                subtitle=subtitle,
                position=(x, y) if x is not None and y is not None else None,
            )
        )
        if has_id:
            index_of.setdefault(node_id, internal)
        if kind == "trigger" and graph.trigger is None:
            graph.trigger = internal
    raw_edges = definition.get("edges")
    for raw in raw_edges if isinstance(raw_edges, list) else []:
        if not isinstance(raw, Mapping):
            continue
        source, target = raw.get("source"), raw.get("target")
        if not isinstance(source, str) or not isinstance(target, str):
            continue
        if source not in index_of or target not in index_of:
            continue  # dangling: nothing to draw it between
        handle = raw.get("sourceHandle")
        graph.edges.append(
            GraphEdge(
                id=one_line(raw.get("id")),
                source=index_of[source],
                target=index_of[target],
                handle=handle if handle in ("true", "false") else None,
            )
        )
    return graph
