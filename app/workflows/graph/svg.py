"""Drawing a workflow graph as an accessible inline SVG (``render_svg``).

Boxes go at the stored positions when every node has one and no two overlap,
else at the automatic layout (``layout.py``); edges that span several layers of
the automatic layout are routed through its dummy points. Every text from the
definition is escaped; the same input always gives the same text.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from app.workflows.graph.layout import (
    NODE_HEIGHT,
    NODE_WIDTH,
    PORT_OFFSET,
    compute_layout,
    stored_layout_usable,
    top_left,
)
from app.workflows.graph.reading import (
    CONTROL_RE,
    KIND_LABELS,
    Graph,
    GraphEdge,
    GraphNode,
    one_line,
    read_graph,
)

__all__ = ["render_svg"]

_MARGIN = 16.0
_COMPACT_BOX_HEIGHT = 40.0
_COMPACT_MAX_WIDTH = 240.0
_COMPACT_MAX_HEIGHT = 160.0
_ARROW = 7.0

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
    return str(escape(CONTROL_RE.sub(" ", value)))


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
    edge: GraphEdge,
    graph: Graph,
    boxes: Sequence[tuple[float, float, float, float]],
    route: list[tuple[float, float]] | None,
    bounds: _Bounds,
) -> str:
    sx, sy, sw, sh = boxes[edge.source]
    tx, ty, tw, _th = boxes[edge.target]
    colour, dash = _EDGE_STYLES[edge.handle]
    port_x = sx + sw / 2 + (PORT_OFFSET.get(edge.handle or "", 0.0) * sw / NODE_WIDTH)
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
    node: GraphNode,
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
    kind_label = KIND_LABELS[node.kind]
    description = f"{node.name} ({kind_label}): {node.subtitle}"
    if problem is not None:
        description += f". Problem: {one_line(problem)}"
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
        out.append(_link_start(node, href, label, is_selected=is_selected, extra=extra))
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


def _link_start(
    node: GraphNode, href: str, label: str, *, is_selected: bool, extra: Mapping[str, str]
) -> str:
    """The ``<a>`` start tag of a linked node: its URL, accessible name and the caller's
    extra attributes (a ``class`` is added to ours; a bad attribute name is refused)."""
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
    return "<a " + " ".join(f'{name}="{_attr(value)}"' for name, value in attributes.items()) + ">"


def _positions(
    graph: Graph,
) -> tuple[list[tuple[float, float]], Sequence[list[tuple[float, float]] | None], str]:
    """Takes the read graph; gives each box's top-left corner, each edge's route (dummy
    points, or None: drawn directly) and which positions are used ("automatic" or "stored")."""
    routes: Sequence[list[tuple[float, float]] | None]
    computed = compute_layout(graph)
    corners = [top_left(center) for center in computed.centers]
    routes = computed.routes
    positioning = "automatic"
    if graph.nodes and stored_layout_usable(graph):
        stored = [node.position or (0.0, 0.0) for node in graph.nodes]
        positioning = "stored"
        if stored != corners:
            # Edges are then drawn directly: routing around boxes needs the layers.
            corners, routes = stored, [None] * len(graph.edges)
    return corners, routes, positioning


def _view_box(bounds: _Bounds, *, has_nodes: bool) -> tuple[tuple[float, float, float, float], str]:
    """Takes the bounds of everything drawn; gives the viewBox (x, y, width, height) with
    a margin, and for an empty graph a fixed one with the "No steps yet" text."""
    if has_nodes:
        min_x, min_y = bounds.min_x - _MARGIN, bounds.min_y - _MARGIN
        view_w = bounds.max_x - bounds.min_x + 2 * _MARGIN
        view_h = bounds.max_y - bounds.min_y + 2 * _MARGIN
        return (min_x, min_y, view_w, view_h), ""
    empty = (
        f'<text class="wf-graph-empty" x="120" y="37" text-anchor="middle"'
        f' font-size="14" fill="{_MUTED_COLOUR}">No steps yet</text>'
    )
    return (0.0, 0.0, 240.0, 64.0), empty


def _summary(graph: Graph, problems: Mapping[str, str]) -> str:
    """The picture's description: how many steps and connections, and steps with problems."""
    node_count, edge_count = len(graph.nodes), len(graph.edges)
    summary = (
        f"{node_count} step{'s' if node_count != 1 else ''} and "
        f"{edge_count} connection{'s' if edge_count != 1 else ''}."
    )
    marked = sum(1 for node in graph.nodes if node.has_id and node.id in problems)
    if marked:
        summary += f" {marked} step{'s' if marked != 1 else ''} with problems."
    return summary


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
    graph = read_graph(definition)
    problems = problems or {}
    box_height = _COMPACT_BOX_HEIGHT if compact else NODE_HEIGHT
    corners, routes, positioning = _positions(graph)
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

    (min_x, min_y, view_w, view_h), empty = _view_box(bounds, has_nodes=bool(graph.nodes))
    if compact and not natural_size:
        scale = min(1.0, _COMPACT_MAX_WIDTH / view_w, _COMPACT_MAX_HEIGHT / view_h)
        width, height = view_w * scale, view_h * scale
    else:
        width, height = view_w, view_h

    accessible_name = one_line(title) if title is not None else ""
    if not accessible_name:
        accessible_name = f"Workflow graph: {graph.name}" if graph.name else "Workflow graph"
    summary = _summary(graph, problems)
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
