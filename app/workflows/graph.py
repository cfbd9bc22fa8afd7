"""The workflow graph as a picture: an automatic layered layout and inline SVG.

Everything here takes the definition as a plain dict, because drafts may be
invalid: missing keys, dangling edges, duplicate ids and cycles are drawn as
well as they can be, never raised.

The layout is Sugiyama-style, top to bottom:

1. cycles are broken by a depth-first search from the trigger (edges that
   close a cycle, and edges into the trigger, do not take part in layering);
2. each node's layer is its longest path from the trigger (nodes nothing
   reaches start at the top, or just above the node they lead to);
3. edges that span several layers get invisible "dummy" points, one per
   layer, so that they can be routed around the boxes between;
4. a few barycenter sweeps order each layer to reduce crossings (the best
   order seen is kept; a condition's "true" branch leans left, "false" right);
5. x coordinates: each node is pulled towards its neighbours (down, up and
   down again), and every layer keeps a minimum distance between
   neighbouring boxes, so two node boxes never overlap.

Positions are React Flow's: the top-left corner of a ``NODE_WIDTH`` x
``NODE_HEIGHT`` box.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

__all__ = [
    "LAYER_GAP",
    "NODE_GAP",
    "NODE_HEIGHT",
    "NODE_WIDTH",
    "apply_layout",
    "layout",
    "render_svg",
    "uses_stored_positions",
]

#: Size of every node box, in the definition's coordinate space.
NODE_WIDTH = 200.0
NODE_HEIGHT = 56.0
#: Smallest horizontal gap between two boxes in a layer.
NODE_GAP = 40.0
#: Vertical gap between layers (room for the "true"/"false" labels).
LAYER_GAP = 64.0

_ROW = NODE_HEIGHT + LAYER_GAP
_DUMMY_WIDTH = 16.0
_DUMMY_GAP = 20.0
# Where a condition's branches leave its box, relative to its centre.
_PORT_OFFSET = {"true": -NODE_WIDTH / 4, "false": NODE_WIDTH / 4}
# The same, as a tie-breaker when ordering a layer (true branch left).
_PORT_RANK = {"true": -0.25, "false": 0.25}
_SWEEPS = 4
# Above this many dummy points, long edges are drawn straight instead.
_DUMMY_BUDGET_PER_NODE = 8

_MARGIN = 16.0
_COMPACT_BOX_HEIGHT = 40.0
_COMPACT_MAX_WIDTH = 240.0
_COMPACT_MAX_HEIGHT = 160.0
_ARROW = 7.0
_MAX_COORDINATE = 1_000_000.0

# --- Reading a (possibly invalid) definition ------------------------------


@dataclass
class _Node:
    index: int  # position in definition["nodes"]
    id: str
    has_id: bool  # the id is a real string id (it can be linked and looked up)
    kind: str  # trigger / webhook / jira / linear / action / condition / delay / unknown
    name: str
    subtitle: str
    position: tuple[float, float] | None  # stored position, when usable


@dataclass
class _Edge:
    id: str
    source: int  # index into the _Graph's nodes
    target: int
    handle: str | None  # "true" / "false" / None


@dataclass
class _Graph:
    name: str
    nodes: list[_Node] = field(default_factory=list)
    edges: list[_Edge] = field(default_factory=list)
    trigger: int | None = None


_TRIGGER_LABELS = {
    "incident_created": "incident created",
    "state_changed": "state changed",
    "escalation": "escalation",
    "age": "incident age",
    "manual": "manual run",
}
_KIND_LABELS = {
    "trigger": "Trigger",
    "webhook": "Webhook",
    "jira": "Jira issue",
    "linear": "Linear issue",
    "action": "Action",
    "condition": "Condition",
    "delay": "Delay",
    "unknown": "Step",
}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value: object) -> str:
    """A printable one-line string for a value of any type ('' for containers)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = "" if value is None else str(value).lower()
    elif isinstance(value, int | float):
        text = str(value)
    else:
        return ""
    return _CONTROL_RE.sub(" ", text).replace("\n", " ").replace("\r", " ").replace("\t", " ")


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
        label = _TRIGGER_LABELS.get(trigger_type, _text(trigger_type)) if trigger_type else ""
        if trigger_type == "state_changed":
            to = _text(_mapping(trigger.get("stateTransition")).get("to"))
            label = f"state → {to}" if to else label
        elif trigger_type == "age":
            minutes = _text(trigger.get("ageThresholdMinutes"))
            label = f"age > {minutes} min" if minutes else label
        return f"On {label}" if label else "Trigger"
    if kind == "webhook":
        method = _text(config.get("method"))
        return f"Webhook · {method}" if method else "Webhook"
    if kind == "jira":
        project = _text(config.get("projectKey"))
        return f"Jira issue · {project}" if project else "Jira issue"
    if kind == "linear":
        return "Linear issue"
    if kind == "condition":
        return f"{_text(data.get('field')) or '?'} = {_text(data.get('value'))}"
    if kind == "delay":
        minutes = _text(data.get("durationMinutes"))
        return f"wait {minutes or '?'} min"
    if kind == "action":
        action_type = _text(data.get("actionType"))
        return f"Action · {action_type}" if action_type else "Action"
    return _text(node.get("type")) or "Unknown step"


def _read(definition: Mapping[str, Any]) -> _Graph:
    graph = _Graph(name=_text(definition.get("name")))
    raw_nodes = definition.get("nodes")
    if not isinstance(raw_nodes, list):
        raw_nodes = []
    index_of: dict[str, int] = {}
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping):
            continue
        raw_id = raw.get("id")
        has_id = isinstance(raw_id, str) and raw_id != ""
        node_id = raw_id if isinstance(raw_id, str) else _text(raw_id)
        data = _mapping(raw.get("data"))
        kind = _kind(raw, data)
        subtitle = _subtitle(kind, raw, data, definition)
        position = _mapping(raw.get("position"))
        x, y = _number(position.get("x")), _number(position.get("y"))
        name = _text(data.get("name")).strip() or node_id or "(unnamed)"
        internal = len(graph.nodes)
        graph.nodes.append(
            _Node(
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
            _Edge(
                id=_text(raw.get("id")),
                source=index_of[source],
                target=index_of[target],
                handle=handle if handle in ("true", "false") else None,
            )
        )
    return graph


# --- Layout -----------------------------------------------------------------


@dataclass
class _Layout:
    """Box centres by node, and for each edge the dummy points it passes (or None
    when it is drawn directly: cycles, edges upwards, or too many dummies)."""

    centers: list[tuple[float, float]]
    routes: list[list[tuple[float, float]] | None]


def _break_cycles(graph: _Graph) -> set[int]:
    """Edges (by position) left out of layering: those closing a cycle in a
    depth-first search from the trigger, self-loops and edges into the trigger."""
    count = len(graph.nodes)
    successors: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    left_out: set[int] = set()
    # True branches first, so that the search (and the first order) goes left to right.
    branch_rank = {"true": 0, None: 1, "false": 2}
    for position, edge in sorted(
        enumerate(graph.edges), key=lambda item: branch_rank[item[1].handle]
    ):
        if edge.source == edge.target or edge.target == graph.trigger:
            left_out.add(position)
        else:
            successors[edge.source].append((position, edge.target))
    state = [0] * count  # 0 unvisited, 1 on the stack, 2 done
    roots = ([graph.trigger] if graph.trigger is not None else []) + list(range(count))
    for root in roots:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(successors[root]))]
        while stack:
            node, pending = stack[-1]
            for position, target in pending:
                if state[target] == 0:
                    state[target] = 1
                    stack.append((target, iter(successors[target])))
                    break
                if state[target] == 1:
                    left_out.add(position)
            else:
                state[node] = 2
                stack.pop()
    return left_out


def _layers(count: int, forward: Sequence[tuple[int, int]], trigger: int | None) -> list[int]:
    """Longest path from the top (Kahn's order); sources other than the trigger
    sit just above the first node they lead to."""
    successors: list[list[int]] = [[] for _ in range(count)]
    indegree = [0] * count
    for source, target in forward:
        successors[source].append(target)
        indegree[target] += 1
    layer = [0] * count
    ready = deque(node for node in range(count) if indegree[node] == 0)
    order: list[int] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for target in successors[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    has_predecessor = [False] * count
    for _source, target in forward:
        has_predecessor[target] = True
    for node in reversed(order):
        if not has_predecessor[node] and node != trigger and successors[node]:
            layer[node] = max(0, min(layer[target] for target in successors[node]) - 1)
    return layer


def _crossings(segments: Sequence[tuple[float, int]]) -> int:
    """Crossings between one pair of layers: segments are (upper key, lower position)."""
    seen: list[int] = []
    total = 0
    for _upper, lower in sorted(segments):
        total += len(seen) - bisect_right(seen, lower)
        insort(seen, lower)
    return total


def _place(
    items: Sequence[int],
    desired: list[float | None],
    width: Sequence[float],
    is_dummy: Sequence[bool],
) -> list[float]:
    """Centres as close to ``desired`` as the minimum spacing allows.

    Packs once from the left and once from the right; both keep every pair of
    neighbours at least their separation apart, and so does their average.
    """
    count = len(items)
    separation = []
    for left, right in zip(items, items[1:], strict=False):
        gap = _DUMMY_GAP if is_dummy[left] or is_dummy[right] else NODE_GAP
        separation.append((width[left] + width[right]) / 2 + gap)
    known = [i for i, value in enumerate(desired) if value is not None]
    wanted: list[float] = [0.0] * count
    if not known:
        for i in range(1, count):
            wanted[i] = wanted[i - 1] + separation[i - 1]
    else:
        for i in range(count):
            value = desired[i]
            if value is not None:
                wanted[i] = value
            elif i > 0 and i > known[0]:
                wanted[i] = wanted[i - 1] + separation[i - 1]
        for i in range(known[0] - 1, -1, -1):
            wanted[i] = wanted[i + 1] - separation[i]
    from_left = wanted[:]
    for i in range(1, count):
        from_left[i] = max(wanted[i], from_left[i - 1] + separation[i - 1])
    from_right = wanted[:]
    for i in range(count - 2, -1, -1):
        from_right[i] = min(wanted[i], from_right[i + 1] - separation[i])
    return [(a + b) / 2 for a, b in zip(from_left, from_right, strict=True)]


def _compute_layout(graph: _Graph) -> _Layout:
    count = len(graph.nodes)
    if count == 0:
        return _Layout(centers=[], routes=[])
    left_out = _break_cycles(graph)
    forward = [
        (edge.source, edge.target)
        for position, edge in enumerate(graph.edges)
        if position not in left_out
    ]
    layer = _layers(count, forward, graph.trigger)

    # Items: the nodes, then one dummy per layer crossed by a long edge.
    item_layer = layer[:]
    is_dummy = [False] * count
    chains: list[list[int] | None] = []
    total_span = sum(
        layer[edge.target] - layer[edge.source] - 1
        for position, edge in enumerate(graph.edges)
        if position not in left_out and layer[edge.target] > layer[edge.source] + 1
    )
    use_dummies = total_span <= _DUMMY_BUDGET_PER_NODE * count
    # Segments between neighbouring layers: (upper item, lower item, branch handle).
    segments: list[tuple[int, int, str | None]] = []
    for position, edge in enumerate(graph.edges):
        source, target = edge.source, edge.target
        if position in left_out or layer[target] <= layer[source]:
            chains.append(None)
            continue
        if layer[target] == layer[source] + 1:
            segments.append((source, target, edge.handle))
            chains.append([])
            continue
        if not use_dummies:
            chains.append(None)
            continue
        chain = []
        previous, handle = source, edge.handle
        for dummy_layer in range(layer[source] + 1, layer[target]):
            dummy = len(item_layer)
            item_layer.append(dummy_layer)
            is_dummy.append(True)
            chain.append(dummy)
            segments.append((previous, dummy, handle))
            previous, handle = dummy, None
        segments.append((previous, target, handle))
        chains.append(chain)
    items = len(item_layer)
    width = [_DUMMY_WIDTH if dummy else NODE_WIDTH for dummy in is_dummy]
    upper: list[list[tuple[int, str | None]]] = [[] for _ in range(items)]
    lower: list[list[tuple[int, str | None]]] = [[] for _ in range(items)]
    by_layer_segments: dict[int, list[tuple[int, int, str | None]]] = {}
    for segment in segments:
        upper_item, lower_item, handle = segment
        upper[lower_item].append((upper_item, handle))
        lower[upper_item].append((lower_item, handle))
        by_layer_segments.setdefault(item_layer[upper_item], []).append(segment)

    # First order: depth-first discovery (true branches first), dummies after
    # the node their edge leaves.
    discovery = _discovery_order(count, graph, left_out)
    rank = [0.0] * items
    for order, node in enumerate(discovery):
        rank[node] = float(order)
    for chain_index, dummies in enumerate(chains):
        for dummy in dummies or []:
            rank[dummy] = rank[graph.edges[chain_index].source] + 0.5
    depth = max(item_layer) + 1
    layers: list[list[int]] = [[] for _ in range(depth)]
    for item in sorted(range(items), key=lambda item: (rank[item], item)):
        layers[item_layer[item]].append(item)

    slot = [0] * items

    def renumber(layer_items: list[int]) -> None:
        for position, item in enumerate(layer_items):
            slot[item] = position

    for layer_items in layers:
        renumber(layer_items)

    def total_crossings() -> int:
        return sum(
            _crossings([(slot[u] + _PORT_RANK.get(h or "", 0.0), slot[v]) for u, v, h in pairs])
            for pairs in by_layer_segments.values()
        )

    best = total_crossings()
    best_layers = [layer_items[:] for layer_items in layers]
    for _sweep in range(_SWEEPS):
        if best == 0:
            break
        for index in range(1, depth):
            _reorder(layers[index], upper, slot, sign=1)
            renumber(layers[index])
        for index in range(depth - 2, -1, -1):
            _reorder(layers[index], lower, slot, sign=-1)
            renumber(layers[index])
        crossings = total_crossings()
        if crossings < best:
            best = crossings
            best_layers = [layer_items[:] for layer_items in layers]
    layers = best_layers

    # Horizontal placement: pulled towards neighbours, down, up and down again.
    x: list[float | None] = [None] * items

    def sweep(indexes: range, neighbours: list[list[tuple[int, str | None]]], sign: int) -> None:
        for index in indexes:
            layer_items = layers[index]
            desired: list[float | None] = []
            for item in layer_items:
                pulls = [
                    x_other + sign * _PORT_OFFSET.get(handle or "", 0.0)
                    for other, handle in neighbours[item]
                    if (x_other := x[other]) is not None
                ]
                desired.append(sum(pulls) / len(pulls) if pulls else x[item])
            for item, value in zip(
                layer_items, _place(layer_items, desired, width, is_dummy), strict=True
            ):
                x[item] = value

    sweep(range(depth), upper, sign=1)
    sweep(range(depth - 2, -1, -1), lower, sign=-1)
    sweep(range(1, depth), upper, sign=1)

    placed = [value or 0.0 for value in x]
    shift = min(placed[item] - width[item] / 2 for item in range(items))
    centers = [
        (float(round(placed[node] - shift)), layer[node] * _ROW + NODE_HEIGHT / 2)
        for node in range(count)
    ]
    routes: list[list[tuple[float, float]] | None] = []
    for dummies in chains:
        if dummies is None:
            routes.append(None)
        else:
            routes.append(
                [
                    (
                        float(round(placed[dummy] - shift)),
                        item_layer[dummy] * _ROW + NODE_HEIGHT / 2,
                    )
                    for dummy in dummies
                ]
            )
    return _Layout(centers=centers, routes=routes)


def _discovery_order(count: int, graph: _Graph, left_out: set[int]) -> list[int]:
    """Nodes in depth-first preorder from the trigger, true branches first."""
    successors: list[list[int]] = [[] for _ in range(count)]
    branch_rank = {"true": 0, None: 1, "false": 2}
    for position, edge in sorted(
        enumerate(graph.edges), key=lambda item: branch_rank[item[1].handle]
    ):
        if position not in left_out:
            successors[edge.source].append(edge.target)
    seen = [False] * count
    order: list[int] = []
    roots = ([graph.trigger] if graph.trigger is not None else []) + list(range(count))
    for root in roots:
        if seen[root]:
            continue
        stack = [root]
        while stack:
            node = stack.pop()
            if seen[node]:
                continue
            seen[node] = True
            order.append(node)
            stack.extend(reversed([target for target in successors[node] if not seen[target]]))
    return order


def _reorder(
    layer_items: list[int],
    neighbours: list[list[tuple[int, str | None]]],
    slot: list[int],
    sign: int,
) -> None:
    """Sort a layer by the mean position of its neighbours in the layer just done."""
    keys: dict[int, float] = {}
    for item in layer_items:
        around = neighbours[item]
        if around:
            keys[item] = sum(
                slot[other] + sign * _PORT_RANK.get(handle or "", 0.0) for other, handle in around
            ) / len(around)
        else:
            keys[item] = float(slot[item])
    layer_items.sort(key=lambda item: (keys[item], slot[item]))


def _top_left(center: tuple[float, float]) -> tuple[float, float]:
    return (center[0] - NODE_WIDTH / 2, center[1] - NODE_HEIGHT / 2)


def layout(definition: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Node id -> (x, y): the top-left corner of its box, React Flow's ``position``.

    Stored positions are ignored. Nodes without a string id are laid out but not
    returned; for a duplicated id the first node wins.
    """
    graph = _read(definition)
    computed = _compute_layout(graph)
    result: dict[str, tuple[float, float]] = {}
    for node, center in zip(graph.nodes, computed.centers, strict=True):
        if node.has_id:
            result.setdefault(node.id, _top_left(center))
    return result


def apply_layout(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``definition`` with every node's ``position`` set by the
    automatic layout (each node, including ones with duplicated ids, gets its own)."""
    result: dict[str, Any] = copy.deepcopy(dict(definition))
    graph = _read(result)
    computed = _compute_layout(graph)
    nodes = result.get("nodes")
    for node, center in zip(graph.nodes, computed.centers, strict=True):
        if isinstance(nodes, list):
            raw = nodes[node.index]
            if isinstance(raw, dict):
                x, y = _top_left(center)
                raw["position"] = {"x": x, "y": y}
    return result


def _stored_layout_usable(graph: _Graph) -> bool:
    """Every node has a stored position and no two boxes overlap."""
    corners: list[tuple[float, float]] = []
    for node in graph.nodes:
        if node.position is None:
            return False
        corners.append(node.position)
    corners.sort()
    for i, (x, y) in enumerate(corners):
        for other_x, other_y in corners[i + 1 :]:
            if other_x - x >= NODE_WIDTH:
                break
            if abs(other_y - y) < NODE_HEIGHT:
                return False
    return True


def uses_stored_positions(definition: Mapping[str, Any]) -> bool:
    """Whether ``render_svg`` draws this definition at its stored positions
    (every node has one and no two boxes overlap) rather than the automatic layout."""
    graph = _read(definition)
    return bool(graph.nodes) and _stored_layout_usable(graph)


# --- SVG --------------------------------------------------------------------

# (fill, stroke) per node kind; the kind is also spelled out in the subtitle.
_NODE_COLOURS = {
    "trigger": ("#eef3ff", "#2b59c3"),
    "webhook": ("#fff4e6", "#b35c00"),
    "jira": ("#e6f4f1", "#0f766e"),
    "linear": ("#f0f0fb", "#5e6ad2"),
    "action": ("#f6f7f9", "#5b6475"),
    "condition": ("#fffbe6", "#8a6d00"),
    "delay": ("#f1f3f5", "#5b6475"),
    "unknown": ("#ffffff", "#5b6475"),
}
_EDGE_STYLES = {
    None: ("#5b6475", None),
    "true": ("#1e7a3c", None),
    "false": ("#b3261e", "6 4"),
}
_PROBLEM_COLOUR = "#b3261e"
_SELECTED_COLOUR = "#1d2330"
_TEXT_COLOUR = "#1d2330"
_MUTED_COLOUR = "#5b6475"
_ATTRIBUTE_NAME_RE = re.compile(r"^[A-Za-z_:][-A-Za-z0-9_:.]*$")


def _num(value: float) -> str:
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


def _attr(value: str) -> str:
    return str(escape(_CONTROL_RE.sub(" ", value)))


class _Bounds:
    def __init__(self) -> None:
        self.min_x = self.min_y = math.inf
        self.max_x = self.max_y = -math.inf

    def add(self, x: float, y: float) -> None:
        self.min_x, self.max_x = min(self.min_x, x), max(self.max_x, x)
        self.min_y, self.max_y = min(self.min_y, y), max(self.max_y, y)


def _curve(start: tuple[float, float], end: tuple[float, float], bounds: _Bounds) -> str:
    """A path segment from ``start`` (leaving downwards) to ``end`` (entering
    downwards); loops round to the right when ``end`` is not below ``start``."""
    (x0, y0), (x1, y1) = start, end
    if y1 - y0 >= 24:
        middle = (y0 + y1) / 2
        c0, c1 = (x0, middle), (x1, middle)
    else:
        bulge = max(x0, x1) + max(abs(x1 - x0) / 2, NODE_WIDTH * 0.75)
        c0, c1 = (bulge, y0 + 80), (bulge, y1 - 80)
    for point in (c0, c1, end):
        bounds.add(*point)
    return f"C{_num(c0[0])},{_num(c0[1])} {_num(c1[0])},{_num(c1[1])} {_num(x1)},{_num(y1)}"


def _edge_svg(
    edge: _Edge,
    graph: _Graph,
    boxes: Sequence[tuple[float, float, float, float]],
    route: list[tuple[float, float]] | None,
    bounds: _Bounds,
) -> str:
    sx, sy, sw, sh = boxes[edge.source]
    tx, ty, tw, _th = boxes[edge.target]
    colour, dash = _EDGE_STYLES[edge.handle]
    port_x = sx + sw / 2 + (_PORT_OFFSET.get(edge.handle or "", 0.0) * sw / NODE_WIDTH)
    start = (port_x, sy + sh)
    end = (tx + tw / 2, ty - _ARROW)
    bounds.add(*start)
    parts = [f"M{_num(start[0])},{_num(start[1])}"]
    if edge.source == edge.target:
        loop_x = sx + sw + 40
        parts.append(
            f"C{_num(loop_x)},{_num(sy + sh + 40)} {_num(loop_x)},{_num(ty - 60)} "
            f"{_num(end[0])},{_num(end[1])}"
        )
        bounds.add(loop_x, sy + sh + 40)
        bounds.add(loop_x, ty - 60)
    else:
        current = start
        for dummy_x, dummy_y in route or []:
            top, bottom = (dummy_x, dummy_y - NODE_HEIGHT / 2), (dummy_x, dummy_y + NODE_HEIGHT / 2)
            segment = _curve(current, top, bounds)
            parts.append(f"{segment} L{_num(bottom[0])},{_num(bottom[1])}")
            current = bottom
        segment = _curve(current, end, bounds)
        parts.append(segment)
    source_name = graph.nodes[edge.source].name
    target_name = graph.nodes[edge.target].name
    description = f"{source_name} → {target_name}" + (f" ({edge.handle})" if edge.handle else "")
    classes = "wf-edge" + (f" wf-edge--{edge.handle}" if edge.handle else "")
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    ax, ay = end[0], end[1] + _ARROW
    out = [
        f'<g class="{classes}" data-edge-id="{_attr(edge.id)}">',
        f"<title>{_attr(description)}</title>",
        f'<path class="wf-edge-line" d="{" ".join(parts)}" fill="none" stroke="{colour}"'
        f' stroke-width="2"{dash_attr}/>',
        f'<path class="wf-edge-arrow" d="M{_num(ax - 5)},{_num(ay - _ARROW)} '
        f'L{_num(ax + 5)},{_num(ay - _ARROW)} L{_num(ax)},{_num(ay)} Z" fill="{colour}"/>',
    ]
    if edge.handle:
        label_y = start[1] + 15
        label_width = 34 if edge.handle == "false" else 30
        out.append(
            f'<rect class="wf-edge-label-bg" x="{_num(start[0] - label_width / 2)}"'
            f' y="{_num(label_y - 11)}" width="{label_width}" height="15" rx="3"'
            f' fill="#ffffff" stroke="{colour}"/>'
            f'<text class="wf-edge-label" x="{_num(start[0])}" y="{_num(label_y)}"'
            f' text-anchor="middle" font-size="11" font-weight="600" fill="{colour}">'
            f"{edge.handle}</text>"
        )
        bounds.add(start[0] - label_width / 2, label_y + 4)
        bounds.add(start[0] + label_width / 2, label_y + 4)
    out.append("</g>")
    return "".join(out)


def _node_svg(
    node: _Node,
    box: tuple[float, float, float, float],
    *,
    compact: bool,
    is_selected: bool,
    problem: str | None,
    href: str | None,
    extra: Mapping[str, str],
) -> str:
    x, y, w, h = box
    fill, stroke = _NODE_COLOURS[node.kind]
    kind_label = _KIND_LABELS[node.kind]
    description = f"{node.name} ({kind_label}): {node.subtitle}"
    if problem is not None:
        description += f". Problem: {_text(problem)}"
        stroke = _PROBLEM_COLOUR
    classes = f"wf-node wf-node--{node.kind}"
    if is_selected:
        classes += " wf-node--selected"
    if problem is not None:
        classes += " wf-node--problem"
    radius = h / 2 if node.kind == "trigger" else 8
    stroke_width = 2.5 if problem is not None else 1.5
    text_x = x + (18 if node.kind == "trigger" else 12)
    room = w - (text_x - x) - (28 if problem is not None else 10)
    shown_name = _clip(node.name, int(room / (9.5 if compact else 7.6)))
    shown_subtitle = "" if compact else _clip(node.subtitle, int(room / 6.6))
    out: list[str] = []
    if href is not None:
        # The link's name holds the words drawn on the box in their order (voice control
        # users say what they see); a clipped text is followed by the full description.
        clipped = shown_name != node.name or shown_subtitle not in ("", node.subtitle)
        if clipped:
            label = f"{shown_name} {shown_subtitle}".strip() + f". {description}"
        elif compact:
            label = description
        else:
            label = (
                f"{node.name}: {node.subtitle} ({kind_label})"
                + description[len(f"{node.name} ({kind_label}): {node.subtitle}") :]
            )
        attributes = {
            "class": "wf-node-link",
            "href": href,
            "aria-label": label,
            "data-node-id": node.id,
        }
        if is_selected:
            attributes["aria-current"] = "true"
        for name, value in extra.items():
            if not _ATTRIBUTE_NAME_RE.fullmatch(name):
                raise ValueError(f"not an attribute name: {name!r}")
            attributes[name] = f"{attributes['class']} {value}" if name == "class" else str(value)
        out.append(
            "<a " + " ".join(f'{name}="{_attr(value)}"' for name, value in attributes.items()) + ">"
        )
        out.append(f'<g class="{classes}">')
    else:
        out.append(f'<g class="{classes}" data-node-id="{_attr(node.id)}">')
    out.append(f"<title>{_attr(description)}</title>")
    if is_selected:
        out.append(
            f'<rect class="wf-node-halo" x="{_num(x - 5)}" y="{_num(y - 5)}"'
            f' width="{_num(w + 10)}" height="{_num(h + 10)}" rx="{_num(radius + 5)}"'
            f' fill="none" stroke="{_SELECTED_COLOUR}" stroke-width="3"/>'
        )
    out.append(
        f'<rect class="wf-node-box" x="{_num(x)}" y="{_num(y)}" width="{_num(w)}"'
        f' height="{_num(h)}" rx="{_num(radius)}" fill="{fill}" stroke="{stroke}"'
        f' stroke-width="{stroke_width}"/>'
    )
    if compact:
        out.append(
            f'<text class="wf-node-name" x="{_num(text_x)}" y="{_num(y + h / 2 + 6)}"'
            f' font-size="16" font-weight="600" fill="{_TEXT_COLOUR}">'
            f"{_attr(shown_name)}</text>"
        )
    else:
        out.append(
            f'<text class="wf-node-name" x="{_num(text_x)}" y="{_num(y + 23)}"'
            f' font-size="13" font-weight="600" fill="{_TEXT_COLOUR}">'
            # The space between the two texts keeps their words apart in the link's text.
            f"{_attr(shown_name)}</text> "
            f'<text class="wf-node-subtitle" x="{_num(text_x)}" y="{_num(y + 42)}"'
            f' font-size="12" fill="{_MUTED_COLOUR}">'
            f"{_attr(shown_subtitle)}</text>"
        )
    if problem is not None:
        cx, cy = x + w - 14, y + 14
        out.append(
            f'<circle class="wf-node-problem" cx="{_num(cx)}" cy="{_num(cy)}" r="9"'
            f' fill="{_PROBLEM_COLOUR}"/>'
            f'<text x="{_num(cx)}" y="{_num(cy + 4.5)}" text-anchor="middle" font-size="13"'
            f' font-weight="700" fill="#ffffff" aria-hidden="true">!</text>'
        )
    out.append("</g>")
    if href is not None:
        out.append("</a>")
    return "".join(out)


def render_svg(
    definition: Mapping[str, Any],
    *,
    selected: str | None = None,
    node_href: Callable[[str], str] | None = None,
    node_attrs: Callable[[str], Mapping[str, str]] | None = None,
    compact: bool = False,
    problems: Mapping[str, str] | None = None,
    title: str | None = None,
    dom_id: str | None = None,
    natural_size: bool = False,
) -> Markup:
    """The graph as an accessible inline ``<svg>``.

    Nodes are drawn at their stored positions when every node has one and no
    two boxes overlap (see ``uses_stored_positions``); otherwise at the
    automatic layout. Edges that span several layers of the automatic layout
    are routed between the boxes; at other stored positions (moved by hand)
    every edge is drawn directly from box to box.

    - ``node_href``: node id -> URL of its form; each node becomes a focusable
      ``<a>`` (the svg is then ``role="group"``, else ``role="img"``), with
      extra attributes from ``node_attrs`` (``hx-get``, ``hx-target``...).
    - ``selected``: id of the node to highlight (``aria-current="true"``).
    - ``problems``: node id -> message; the node is marked and the message is
      in its title.
    - ``compact``: a thumbnail (names only, at most 240 x 160 pixels, unless
      ``natural_size``: then one unit is one pixel, so names stay readable in a
      scrolling frame).
    - ``title``: the accessible name (default "Workflow graph: <name>").
    - ``dom_id``: prefix of the ids in the svg (default: derived from the
      output, so the same input always gives the same text).

    Every text from the definition is escaped.
    """
    graph = _read(definition)
    problems = problems or {}
    box_height = _COMPACT_BOX_HEIGHT if compact else NODE_HEIGHT
    routes: Sequence[list[tuple[float, float]] | None]
    computed = _compute_layout(graph)
    corners = [_top_left(center) for center in computed.centers]
    routes = computed.routes
    positioning = "automatic"
    if graph.nodes and _stored_layout_usable(graph):
        stored = [node.position or (0.0, 0.0) for node in graph.nodes]
        positioning = "stored"
        if stored != corners:
            # Edges are then drawn directly: routing around boxes needs the layers.
            corners, routes = stored, [None] * len(graph.edges)
    boxes = [(x, y, NODE_WIDTH, box_height) for x, y in corners]

    bounds = _Bounds()
    for x, y, w, h in boxes:
        bounds.add(x, y)
        bounds.add(x + w, y + h)
    edge_parts = [
        _edge_svg(edge, graph, boxes, route, bounds)
        for edge, route in zip(graph.edges, routes, strict=True)
    ]
    # Reading order (top to bottom, left to right) is also the keyboard order.
    order = sorted(range(len(graph.nodes)), key=lambda i: (boxes[i][1], boxes[i][0], i))
    node_parts = []
    for i in order:
        node = graph.nodes[i]
        linkable = node_href is not None and node.has_id
        node_parts.append(
            _node_svg(
                node,
                boxes[i],
                compact=compact,
                is_selected=selected is not None and node.has_id and node.id == selected,
                problem=problems.get(node.id) if node.has_id else None,
                href=node_href(node.id) if linkable and node_href is not None else None,
                extra=node_attrs(node.id) if linkable and node_attrs is not None else {},
            )
        )

    if graph.nodes:
        min_x, min_y = bounds.min_x - _MARGIN, bounds.min_y - _MARGIN
        view_w = bounds.max_x - bounds.min_x + 2 * _MARGIN
        view_h = bounds.max_y - bounds.min_y + 2 * _MARGIN
        empty = ""
    else:
        min_x, min_y, view_w, view_h = 0.0, 0.0, 240.0, 64.0
        empty = (
            f'<text class="wf-graph-empty" x="120" y="37" text-anchor="middle"'
            f' font-size="14" fill="{_MUTED_COLOUR}">No steps yet</text>'
        )
    if compact and not natural_size:
        scale = min(1.0, _COMPACT_MAX_WIDTH / view_w, _COMPACT_MAX_HEIGHT / view_h)
        width, height = view_w * scale, view_h * scale
    else:
        width, height = view_w, view_h

    accessible_name = _text(title) if title is not None else ""
    if not accessible_name:
        accessible_name = f"Workflow graph: {graph.name}" if graph.name else "Workflow graph"
    node_count, edge_count = len(graph.nodes), len(graph.edges)
    summary = (
        f"{node_count} step{'s' if node_count != 1 else ''} and "
        f"{edge_count} connection{'s' if edge_count != 1 else ''}."
    )
    marked = sum(1 for node in graph.nodes if node.has_id and node.id in problems)
    if marked:
        summary += f" {marked} step{'s' if marked != 1 else ''} with problems."
    body = (
        '<g class="wf-edges">'
        + "".join(edge_parts)
        + '</g><g class="wf-nodes">'
        + "".join(node_parts)
        + "</g>"
        + empty
    )
    prefix = (
        dom_id
        or "wfg-"
        + hashlib.blake2b((accessible_name + summary + body).encode(), digest_size=5).hexdigest()
    )
    prefix = _attr(prefix)
    role = "group" if node_href is not None else "img"
    classes = "wf-graph wf-graph--compact" if compact else "wf-graph"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{classes}" role="{role}"'
        f' aria-labelledby="{prefix}-title" aria-describedby="{prefix}-desc"'
        f' viewBox="{_num(min_x)} {_num(min_y)} {_num(view_w)} {_num(view_h)}"'
        f' width="{_num(width)}" height="{_num(height)}"'
        f' data-positions="{positioning}" font-family="system-ui, sans-serif">'
        f'<title id="{prefix}-title">{_attr(accessible_name)}</title>'
        f'<desc id="{prefix}-desc">{_attr(summary)}</desc>'
    )
    return Markup(head + body + "</svg>")
