"""Order and reachability in a definition's graph."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from app.definition.models import TriggerNode, WorkflowDefinition


def reachable_from(start: str, edges: list[tuple[int, str, str]]) -> set[str]:
    successors: dict[str, list[str]] = {}
    for _j, source, target in edges:
        successors.setdefault(source, []).append(target)
    seen = {start}
    queue = deque([start])
    while queue:
        for target in successors.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def edge_pairs(defn: WorkflowDefinition) -> list[tuple[int, str, str]]:
    return [(j, edge.source, edge.target) for j, edge in enumerate(defn.edges)]


def topological_or_none(
    node_ids: list[str], edges: Sequence[tuple[int, str, str]]
) -> list[str] | None:
    """Kahn's algorithm; None when there is a cycle."""
    successors: dict[str, list[str]] = {node_id: [] for node_id in node_ids}
    indegree = dict.fromkeys(node_ids, 0)
    for _j, source, target in edges:
        successors[source].append(target)
        indegree[target] += 1
    ready = deque(node_id for node_id in node_ids if indegree[node_id] == 0)
    order: list[str] = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for target in successors[node_id]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return order if len(order) == len(node_ids) else None


def find_dominators(
    trigger_id: str, node_ids: list[str], edges: Sequence[tuple[int, str, str]]
) -> dict[str, frozenset[str]] | None:
    """Node -> nodes on every path from the trigger to it (itself included),
    for the nodes the trigger reaches. None when there is a cycle."""
    reached = reachable_from(trigger_id, list(edges))
    live = [(j, s, t) for j, s, t in edges if s in reached and t in reached]
    order = topological_or_none([node_id for node_id in node_ids if node_id in reached], live)
    if order is None:
        return None
    predecessors: dict[str, list[str]] = {}
    for _j, source, target in live:
        predecessors.setdefault(target, []).append(source)
    result: dict[str, frozenset[str]] = {}
    for node_id in order:
        preds = predecessors.get(node_id, [])
        if node_id == trigger_id or not preds:
            result[node_id] = frozenset({node_id})
            continue
        common = result[preds[0]]
        for pred in preds[1:]:
            common &= result[pred]
        result[node_id] = common | {node_id}
    return result


def topological_order(defn: WorkflowDefinition) -> list[str]:
    """Node ids so that every edge points forward; ties keep node order."""
    order = topological_or_none([node.id for node in defn.nodes], edge_pairs(defn))
    if order is None:
        raise ValueError("the definition has a cycle")
    return order


def ancestors(defn: WorkflowDefinition) -> dict[str, frozenset[str]]:
    """Node id -> ids of every node with a path to it."""
    preds: dict[str, list[str]] = {node.id: [] for node in defn.nodes}
    for _j, source, target in edge_pairs(defn):
        preds[target].append(source)
    result: dict[str, frozenset[str]] = {}
    for node_id in topological_order(defn):
        found: set[str] = set()
        for pred in preds[node_id]:
            found.add(pred)
            found |= result[pred]
        result[node_id] = frozenset(found)
    return result


def always_runs_before(defn: WorkflowDefinition) -> dict[str, frozenset[str]]:
    """Node id -> ids of the nodes on every path from the trigger to it.

    These (the node's dominators) are the only steps whose results a
    template can rely on: a node reached by two branches may run after
    either, so neither branch's steps are guaranteed.
    """
    trigger = next((node.id for node in defn.nodes if isinstance(node, TriggerNode)), None)
    if trigger is None:
        raise ValueError("the definition has no trigger node")
    dominators = find_dominators(trigger, [node.id for node in defn.nodes], edge_pairs(defn))
    if dominators is None:
        raise ValueError("the definition has a cycle")
    return {node_id: found - {node_id} for node_id, found in dominators.items()}
