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
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.workflows.graph.reading import Graph, read_graph

__all__ = [
    "LAYER_GAP",
    "NODE_GAP",
    "NODE_HEIGHT",
    "NODE_WIDTH",
    "PORT_OFFSET",
    "Layout",
    "apply_layout",
    "compute_layout",
    "layout",
    "stored_layout_usable",
    "top_left",
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
PORT_OFFSET = {"true": -NODE_WIDTH / 4, "false": NODE_WIDTH / 4}
# The same, as a tie-breaker when ordering a layer (true branch left).
_PORT_RANK = {"true": -0.25, "false": 0.25}
_SWEEPS = 4
# Above this many dummy points, long edges are drawn straight instead.
_DUMMY_BUDGET_PER_NODE = 8

# --- Layout -----------------------------------------------------------------


@dataclass
class Layout:
    """Box centres by node, and for each edge the dummy points it passes (or None
    when it is drawn directly: cycles, edges upwards, or too many dummies)."""

    centers: list[tuple[float, float]]
    routes: list[list[tuple[float, float]] | None]


def _break_cycles(graph: Graph) -> set[int]:
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


@dataclass
class _Proper:
    """The layered graph made proper: its items are the nodes (first, by index), then
    one dummy point per layer that a long edge crosses, so that every segment joins
    two neighbouring layers."""

    item_layer: list[int]  # the layer of each item
    is_dummy: list[bool]
    # Per edge: its dummies in order ([] for an edge to the next layer), or None when
    # the edge is drawn directly (left out of layering, upwards, or over the budget).
    chains: list[list[int] | None]
    segments: list[tuple[int, int, str | None]]  # (upper item, lower item, branch handle)

    def widths(self) -> list[float]:
        return [_DUMMY_WIDTH if dummy else NODE_WIDTH for dummy in self.is_dummy]


@dataclass
class _Neighbours:
    """Each item's segment ends in the layer above and below (with the branch handle),
    and the segments grouped by the layer they leave (for counting crossings)."""

    upper: list[list[tuple[int, str | None]]]
    lower: list[list[tuple[int, str | None]]]
    by_layer: dict[int, list[tuple[int, int, str | None]]]


def compute_layout(graph: Graph) -> Layout:
    """Takes a read graph; gives every node's box centre and each edge's route
    (the phases described at the top of this module, one function each)."""
    count = len(graph.nodes)
    if count == 0:
        return Layout(centers=[], routes=[])
    left_out = _break_cycles(graph)
    forward = [
        (edge.source, edge.target)
        for position, edge in enumerate(graph.edges)
        if position not in left_out
    ]
    layer = _layers(count, forward, graph.trigger)
    proper = _add_dummies(graph, layer, left_out)
    neighbours = _neighbours(proper)
    first = _first_order(graph, left_out, proper)
    layers = _reduce_crossings(first, neighbours, items=len(proper.item_layer))
    placed = _x_positions(layers, neighbours, proper)
    return _coordinates(count, proper, placed)


def _add_dummies(graph: Graph, layer: list[int], left_out: set[int]) -> _Proper:
    """Takes the graph, each node's layer and the edges left out of layering; gives the
    proper layered graph. A long edge gets a dummy item in each layer it crosses, unless
    all long edges together would need more than ``_DUMMY_BUDGET_PER_NODE`` per node:
    then every long edge is drawn directly."""
    count = len(graph.nodes)
    item_layer = layer[:]
    is_dummy = [False] * count
    chains: list[list[int] | None] = []
    total_span = sum(
        layer[edge.target] - layer[edge.source] - 1
        for position, edge in enumerate(graph.edges)
        if position not in left_out and layer[edge.target] > layer[edge.source] + 1
    )
    use_dummies = total_span <= _DUMMY_BUDGET_PER_NODE * count
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
    return _Proper(item_layer=item_layer, is_dummy=is_dummy, chains=chains, segments=segments)


def _neighbours(proper: _Proper) -> _Neighbours:
    """Takes the proper graph; gives each item's neighbours above and below."""
    items = len(proper.item_layer)
    upper: list[list[tuple[int, str | None]]] = [[] for _ in range(items)]
    lower: list[list[tuple[int, str | None]]] = [[] for _ in range(items)]
    by_layer_segments: dict[int, list[tuple[int, int, str | None]]] = {}
    for segment in proper.segments:
        upper_item, lower_item, handle = segment
        upper[lower_item].append((upper_item, handle))
        lower[upper_item].append((lower_item, handle))
        by_layer_segments.setdefault(proper.item_layer[upper_item], []).append(segment)
    return _Neighbours(upper=upper, lower=lower, by_layer=by_layer_segments)


def _first_order(graph: Graph, left_out: set[int], proper: _Proper) -> list[list[int]]:
    """Takes the proper graph; gives its items layer by layer in a first order:
    depth-first discovery (true branches first), dummies after the node their edge leaves."""
    count = len(graph.nodes)
    items = len(proper.item_layer)
    discovery = _discovery_order(count, graph, left_out)
    rank = [0.0] * items
    for order, node in enumerate(discovery):
        rank[node] = float(order)
    for chain_index, dummies in enumerate(proper.chains):
        for dummy in dummies or []:
            rank[dummy] = rank[graph.edges[chain_index].source] + 0.5
    depth = max(proper.item_layer) + 1
    layers: list[list[int]] = [[] for _ in range(depth)]
    for item in sorted(range(items), key=lambda item: (rank[item], item)):
        layers[proper.item_layer[item]].append(item)
    return layers


def _renumber(slot: list[int], layer_items: list[int]) -> None:
    """Record each item's position within its layer."""
    for position, item in enumerate(layer_items):
        slot[item] = position


def _total_crossings(
    slot: Sequence[int], by_layer: Mapping[int, list[tuple[int, int, str | None]]]
) -> int:
    """Crossings over every pair of neighbouring layers, at the current positions."""
    return sum(
        _crossings([(slot[u] + _PORT_RANK.get(h or "", 0.0), slot[v]) for u, v, h in pairs])
        for pairs in by_layer.values()
    )


def _reduce_crossings(
    layers: list[list[int]], neighbours: _Neighbours, *, items: int
) -> list[list[int]]:
    """Takes a first order of each layer (reordered in place); gives the order with the
    fewest crossings seen over ``_SWEEPS`` barycenter sweeps, down then up."""
    depth = len(layers)
    slot = [0] * items
    for layer_items in layers:
        _renumber(slot, layer_items)
    best = _total_crossings(slot, neighbours.by_layer)
    best_layers = [layer_items[:] for layer_items in layers]
    for _sweep in range(_SWEEPS):
        if best == 0:
            break
        for index in range(1, depth):
            _reorder(layers[index], neighbours.upper, slot, sign=1)
            _renumber(slot, layers[index])
        for index in range(depth - 2, -1, -1):
            _reorder(layers[index], neighbours.lower, slot, sign=-1)
            _renumber(slot, layers[index])
        crossings = _total_crossings(slot, neighbours.by_layer)
        if crossings < best:
            best = crossings
            best_layers = [layer_items[:] for layer_items in layers]
    return best_layers


def _x_positions(layers: list[list[int]], neighbours: _Neighbours, proper: _Proper) -> list[float]:
    """Takes the ordered layers; gives each item's centre x: pulled towards its
    neighbours (down, up and down again), every layer keeping its minimum spacing."""
    x: list[float | None] = [None] * len(proper.item_layer)
    width = proper.widths()
    depth = len(layers)
    for indexes, around, sign in (
        (range(depth), neighbours.upper, 1),
        (range(depth - 2, -1, -1), neighbours.lower, -1),
        (range(1, depth), neighbours.upper, 1),
    ):
        for index in indexes:
            _pull_layer(x, layers[index], around, sign, width, proper.is_dummy)
    return [value or 0.0 for value in x]


def _pull_layer(
    x: list[float | None],
    layer_items: list[int],
    neighbours: list[list[tuple[int, str | None]]],
    sign: int,
    width: Sequence[float],
    is_dummy: Sequence[bool],
) -> None:
    """Place one layer's items (in ``x``) at the mean x of their placed neighbours,
    as close as the spacing allows (an item with none keeps its x, if it has one)."""
    desired: list[float | None] = []
    for item in layer_items:
        pulls = [
            x_other + sign * PORT_OFFSET.get(handle or "", 0.0)
            for other, handle in neighbours[item]
            if (x_other := x[other]) is not None
        ]
        desired.append(sum(pulls) / len(pulls) if pulls else x[item])
    for item, value in zip(layer_items, _place(layer_items, desired, width, is_dummy), strict=True):
        x[item] = value


def _coordinates(count: int, proper: _Proper, placed: list[float]) -> Layout:
    """Takes every item's centre x; gives the layout: centres shifted so the leftmost
    box starts at 0 (rounded to whole units), one row per layer, and the edge routes."""
    width = proper.widths()
    shift = min(placed[item] - width[item] / 2 for item in range(len(proper.item_layer)))
    centers = [
        (float(round(placed[node] - shift)), proper.item_layer[node] * _ROW + NODE_HEIGHT / 2)
        for node in range(count)
    ]
    routes: list[list[tuple[float, float]] | None] = []
    for dummies in proper.chains:
        if dummies is None:
            routes.append(None)
        else:
            routes.append(
                [
                    (
                        float(round(placed[dummy] - shift)),
                        proper.item_layer[dummy] * _ROW + NODE_HEIGHT / 2,
                    )
                    for dummy in dummies
                ]
            )
    return Layout(centers=centers, routes=routes)


def _discovery_order(count: int, graph: Graph, left_out: set[int]) -> list[int]:
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


def top_left(center: tuple[float, float]) -> tuple[float, float]:
    """A box's top-left corner (React Flow's ``position``) from its centre."""
    return (center[0] - NODE_WIDTH / 2, center[1] - NODE_HEIGHT / 2)


def layout(definition: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Node id -> (x, y): the top-left corner of its box, React Flow's ``position``.

    Stored positions are ignored. Nodes without a string id are laid out but not
    returned; for a duplicated id the first node wins.
    """
    graph = read_graph(definition)
    computed = compute_layout(graph)
    result: dict[str, tuple[float, float]] = {}
    for node, center in zip(graph.nodes, computed.centers, strict=True):
        if node.has_id:
            result.setdefault(node.id, top_left(center))
    return result


def apply_layout(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``definition`` with every node's ``position`` set by the
    automatic layout (each node, including ones with duplicated ids, gets its own)."""
    result: dict[str, Any] = copy.deepcopy(dict(definition))
    graph = read_graph(result)
    computed = compute_layout(graph)
    nodes = result.get("nodes")
    for node, center in zip(graph.nodes, computed.centers, strict=True):
        if isinstance(nodes, list):
            raw = nodes[node.index]
            if isinstance(raw, dict):
                x, y = top_left(center)
                raw["position"] = {"x": x, "y": y}
    return result


def stored_layout_usable(graph: Graph) -> bool:
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
    graph = read_graph(definition)
    return bool(graph.nodes) and stored_layout_usable(graph)
