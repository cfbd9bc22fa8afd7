"""Reading a draft's definition, which may be invalid while it is being edited: its
nodes and edges (only the ones that are objects), a node's label, whether it is an
action, and the trigger node's id. Shared by the other draft modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.workflows.enums import NodeType

__all__ = [
    "Json",
    "Loc",
    "draft_edges",
    "draft_nodes",
    "is_action",
    "node_label",
    "trigger_node_id",
]

Json = dict[str, Any]
Loc = tuple[str | int, ...]


def draft_nodes(definition: Mapping[str, Any]) -> list[Json]:
    """The definition's nodes that are objects (none when ``nodes`` is not a list)."""
    nodes = definition.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def draft_edges(definition: Mapping[str, Any]) -> list[Json]:
    """The definition's edges that are objects (none when ``edges`` is not a list)."""
    edges = definition.get("edges")
    return [e for e in edges if isinstance(e, dict)] if isinstance(edges, list) else []


def node_label(node: Mapping[str, Any]) -> str:
    """The node's name as the user sees it, else its id."""
    data = node.get("data")
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) and name.strip() else str(node.get("id"))


def is_action(node: Mapping[str, Any]) -> bool:
    """Whether the node is an action step (webhook, Jira, Linear)."""
    return node.get("type") == NodeType.ACTION.value


def trigger_node_id(definition: Mapping[str, Any]) -> str | None:
    """The id of the first trigger node that has a string id."""
    for node in draft_nodes(definition):
        if node.get("type") == NodeType.TRIGGER.value and isinstance(node.get("id"), str):
            return str(node["id"])
    return None
