"""The workflow graph: automatic layered layout and the inline SVG picture."""

from __future__ import annotations

import copy
import itertools
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.definition.builders import (
    Json,
    chain,
    condition_node,
    definition,
    delay_node,
    edge,
    jira_node,
    linear_node,
    trigger_node,
    webhook_node,
)
from app.workflows.graph.layout import (
    LAYER_GAP,
    NODE_HEIGHT,
    NODE_WIDTH,
    apply_layout,
    layout,
    uses_stored_positions,
)
from app.workflows.graph.svg import render_svg
from tests.conftest import property_examples

SVG = "{http://www.w3.org/2000/svg}"
ROW = NODE_HEIGHT + LAYER_GAP
STEP_BUILDERS: list[Callable[[str], Json]] = [webhook_node, condition_node, delay_node]
PROPERTY_SETTINGS = settings(
    max_examples=property_examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def parse(markup: str) -> ET.Element:
    """The SVG as XML: fails on anything not escaped properly."""
    return ET.fromstring(str(markup))


def overlapping(positions: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    return [
        (a, b)
        for (a, (ax, ay)), (b, (bx, by)) in itertools.combinations(positions.items(), 2)
        if abs(ax - bx) < NODE_WIDTH and abs(ay - by) < NODE_HEIGHT
    ]


def crossings(defn: Json, positions: dict[str, tuple[float, float]]) -> int:
    """Crossings between edges that join neighbouring layers."""
    segments = [
        (positions[e["source"]], positions[e["target"]])
        for e in defn["edges"]
        if positions[e["target"]][1] - positions[e["source"]][1] == ROW
    ]
    total = 0
    for (a0, a1), (b0, b1) in itertools.combinations(segments, 2):
        if a0[1] == b0[1] and (a0[0] - b0[0]) * (a1[0] - b1[0]) < 0:
            total += 1
    return total


def branching() -> Json:
    """trigger -> is P1? -> (true) jira, (false) wait -> linear."""
    return definition(
        [
            trigger_node(),
            condition_node("check"),
            jira_node("ticket"),
            delay_node("wait"),
            linear_node("issue"),
        ],
        [
            edge("start", "check"),
            edge("check", "wait", "false"),
            edge("check", "ticket", "true"),
            edge("wait", "issue"),
        ],
    )


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 50) -> Json:
    """A random DAG rooted at the trigger: each node hangs off an earlier one,
    plus extra forward edges (some from conditions, with handles)."""
    count = draw(st.integers(1, max_nodes))
    kinds = draw(st.lists(st.sampled_from("wcd"), min_size=count - 1, max_size=count - 1))
    nodes: list[Json] = [trigger_node()]
    for i, kind in enumerate(kinds, start=1):
        node_id = f"n{i}"
        if kind == "c":
            nodes.append(condition_node(node_id))
        elif kind == "d":
            nodes.append(delay_node(node_id))
        else:
            nodes.append(webhook_node(node_id))
    pairs = [(draw(st.integers(0, target - 1)), target) for target in range(1, count)]
    if count > 1:
        extra = draw(
            st.lists(
                st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)), max_size=count
            )
        )
        pairs += [(a, b) for a, b in extra if a < b]
    edges = []
    for j, (a, b) in enumerate(pairs):
        handle = (
            draw(st.sampled_from(["true", "false"])) if nodes[a]["type"] == "condition" else None
        )
        edges.append(edge(nodes[a]["id"], nodes[b]["id"], handle, edge_id=f"e{j}"))
    if draw(st.booleans()):  # stored positions are irrelevant to the layout
        for node in nodes:
            node["position"] = {"x": 0, "y": 0}
    return definition(nodes, edges)


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
node_ids = st.sampled_from(["a", "b", "c", "d", "start", ""]) | junk


@st.composite
def drafts(draw: st.DrawFn) -> Json:
    """Definition-shaped dicts with every kind of problem a draft can have:
    cycles, self-loops, dangling edges, duplicate ids, wrong types, missing keys."""
    nodes: list[Any] = []
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 5))
        node_id = draw(node_ids)
        if choice == 0:
            nodes.append(draw(junk))
        elif choice == 1:
            nodes.append({"id": node_id})
        else:
            node = copy.deepcopy(
                [trigger_node(), condition_node("x"), delay_node("x"), webhook_node("x")][
                    choice - 2
                ]
            )
            node["id"] = node_id
            if draw(st.booleans()):
                node["position"] = draw(junk)
            if draw(st.booleans()):
                node["data"] = draw(junk)
            nodes.append(node)
    edges: list[Any] = [
        {
            "id": draw(junk),
            "source": draw(node_ids),
            "target": draw(node_ids),
            "sourceHandle": draw(st.sampled_from(["true", "false", None, 3])),
        }
        for _ in range(draw(st.integers(0, 10)))
    ]
    if draw(st.booleans()):
        edges.append(draw(junk))
    result: Json = {"nodes": nodes, "edges": edges}
    for key in ("name", "trigger"):
        if draw(st.booleans()):
            result[key] = draw(junk)
    return result


# --- Layout -------------------------------------------------------------------


def test_a_chain_is_drawn_straight_down_one_layer_per_step() -> None:
    positions = layout(chain(webhook_node("a"), delay_node("b"), jira_node("c")))

    assert [positions[n] for n in ("start", "a", "b", "c")] == [
        (0.0, 0.0),
        (0.0, ROW),
        (0.0, 2 * ROW),
        (0.0, 3 * ROW),
    ]


def test_layer_is_the_longest_path_from_the_trigger() -> None:
    defn = definition(
        [trigger_node(), webhook_node("a"), webhook_node("b"), webhook_node("c")],
        [edge("start", "a"), edge("a", "b"), edge("b", "c"), edge("start", "c")],
    )

    positions = layout(defn)

    assert [positions[n][1] / ROW for n in ("start", "a", "b", "c")] == [0, 1, 2, 3]


def test_true_branch_is_left_of_false_branch_whatever_the_edge_order() -> None:
    positions = layout(branching())

    assert positions["ticket"][0] < positions["wait"][0]
    assert positions["ticket"][1] == positions["wait"][1] == 2 * ROW
    # the branches sit evenly under the condition
    check_centre = positions["check"][0]
    assert positions["wait"][0] - check_centre == check_centre - positions["ticket"][0]


def test_barycenter_sweeps_remove_a_crossing_the_first_order_has() -> None:
    # Depth-first order puts e (reached from a only) after c, crossing b -> c.
    defn = definition(
        [trigger_node(), *(webhook_node(n) for n in "abcde")],
        [
            edge("start", "a"),
            edge("start", "b"),
            edge("a", "c"),
            edge("a", "e"),
            edge("b", "c"),
            edge("b", "d"),
        ],
    )

    positions = layout(defn)

    assert crossings(defn, positions) == 0
    assert positions["e"][0] < positions["c"][0] < positions["d"][0]


@PROPERTY_SETTINGS
@given(dags())
def test_random_dags_up_to_50_nodes_have_no_overlapping_boxes(defn: Json) -> None:
    positions = layout(defn)

    assert set(positions) == {node["id"] for node in defn["nodes"]}
    assert overlapping(positions) == []
    for e in defn["edges"]:  # top to bottom
        assert positions[e["target"]][1] > positions[e["source"]][1]
    assert positions["start"][1] == 0


@pytest.mark.parametrize("seed", range(20))
def test_fifty_node_dags_have_no_overlapping_boxes(seed: int) -> None:
    rnd = random.Random(seed)
    nodes = [trigger_node()] + [rnd.choice(STEP_BUILDERS)(f"n{i}") for i in range(1, 50)]
    edges = [
        edge(nodes[rnd.randrange(max(0, i - 3), i)]["id"], nodes[i]["id"]) for i in range(1, 50)
    ]
    edges += [
        edge(nodes[a]["id"], nodes[b]["id"], edge_id=f"x{j}")
        for j, (a, b) in enumerate(
            sorted(rnd.sample(range(50), 2)) for _ in range(rnd.randrange(60))
        )
    ]
    defn = definition(nodes, edges)

    positions = layout(defn)

    assert len(positions) == 50
    assert overlapping(positions) == []
    for e in defn["edges"]:
        assert positions[e["target"]][1] > positions[e["source"]][1]


@PROPERTY_SETTINGS
@given(drafts())
def test_broken_drafts_are_laid_out_and_drawn_without_raising(draft: Json) -> None:
    positions = layout(draft)
    markup = render_svg(draft, problems={"a": "broken <here>"}, node_href=lambda i: f"/n/{i}")
    compact = render_svg(draft, compact=True)

    assert overlapping(positions) == []
    assert set(positions) <= {
        node["id"]
        for node in draft["nodes"]
        if isinstance(node, dict) and isinstance(node.get("id"), str)
    }
    parse(markup)
    parse(compact)
    with_positions = apply_layout(draft)
    assert overlapping(layout(with_positions)) == []


def test_not_a_definition_at_all_gives_an_empty_layout_and_picture() -> None:
    assert layout({}) == {}
    assert layout({"nodes": "x", "edges": 5}) == {}
    svg = parse(render_svg({}))
    assert "No steps yet" in "".join(svg.itertext())


def test_cycles_dangling_edges_and_self_loops_are_laid_out() -> None:
    defn = definition(
        [trigger_node(), webhook_node("a"), webhook_node("b"), webhook_node("lonely")],
        [
            edge("start", "a"),
            edge("a", "b"),
            edge("b", "a", edge_id="back"),
            edge("b", "b", edge_id="self"),
            edge("b", "start", edge_id="to-trigger"),
            edge("a", "nowhere", edge_id="dangling"),
        ],
    )

    positions = layout(defn)

    assert positions["start"][1] == 0
    assert positions["a"][1] == ROW
    assert positions["b"][1] == 2 * ROW
    assert positions["lonely"][1] == 0
    assert overlapping(positions) == []
    svg = parse(render_svg(defn))
    drawn = {g.get("data-edge-id") for g in svg.iter(f"{SVG}g") if g.get("data-edge-id")}
    assert drawn == {"e-start-a", "e-a-b", "back", "self", "to-trigger"}


def test_a_node_nothing_reaches_sits_just_above_the_node_it_leads_to() -> None:
    defn = chain(webhook_node("a"), webhook_node("b"), webhook_node("c"))
    defn["nodes"].append(webhook_node("orphan"))
    defn["edges"].append(edge("orphan", "c"))

    positions = layout(defn)

    assert positions["orphan"][1] == positions["c"][1] - ROW


def test_apply_layout_returns_a_copy_with_every_position_set() -> None:
    original = branching()
    before = copy.deepcopy(original)

    laid_out = apply_layout(original)

    assert original == before
    positions = layout(original)
    for node in laid_out["nodes"]:
        assert node["position"] == {"x": positions[node["id"]][0], "y": positions[node["id"]][1]}
    assert laid_out["edges"] == original["edges"]
    assert uses_stored_positions(laid_out)


def test_apply_layout_separates_nodes_with_the_same_id() -> None:
    defn = chain(webhook_node("a"))
    defn["nodes"].append(webhook_node("a"))

    laid_out = apply_layout(defn)

    first, second = (node["position"] for node in laid_out["nodes"][1:])
    assert first != second


def test_two_hundred_nodes_are_laid_out_and_drawn() -> None:
    rnd = random.Random(200)
    nodes = [trigger_node()] + [rnd.choice(STEP_BUILDERS)(f"n{i}") for i in range(1, 200)]
    edges = [edge(nodes[rnd.randrange(i)]["id"], nodes[i]["id"]) for i in range(1, 200)]
    edges += [
        edge(nodes[a]["id"], nodes[b]["id"], edge_id=f"x{j}")
        for j, (a, b) in enumerate(sorted(rnd.sample(range(200), 2)) for _ in range(300))
    ]
    defn = definition(nodes, edges)

    positions = layout(defn)
    svg = parse(render_svg(defn, node_href=lambda i: f"/n/{i}"))

    assert len(positions) == 200
    assert overlapping(positions) == []
    assert len(svg.findall(f"{SVG}g[@class='wf-nodes']/{SVG}a")) == 200


# --- Picture ------------------------------------------------------------------


def nodes_by_id(svg: ET.Element) -> dict[str, ET.Element]:
    result = {}
    for element in svg.iter():
        node_id = element.get("data-node-id")
        if node_id is not None:
            result[node_id] = element
    return result


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_picture_is_an_image_named_by_its_title() -> None:
    svg = parse(render_svg(branching()))

    assert svg.get("role") == "img"
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == "Workflow graph: Open a ticket"
    assert svg.get("aria-labelledby") == title.get("id")
    assert svg.find(f"{SVG}desc") is not None
    assert svg.findall(f".//{SVG}a") == []


def test_nodes_are_labelled_with_name_and_a_subtitle_per_type() -> None:
    defn = definition(
        [
            trigger_node(),
            condition_node("check", "status", "TRIGGERED"),
            webhook_node("hook"),
            jira_node("ticket"),
            linear_node("issue"),
            delay_node("wait", 15),
        ],
        [
            edge("start", "check"),
            edge("check", "hook", "true"),
            edge("check", "wait", "false"),
            edge("hook", "ticket"),
            edge("wait", "issue"),
        ],
    )

    nodes = nodes_by_id(parse(render_svg(defn)))

    assert texts(nodes["start"]) == ["Incident created", "On incident created"]
    assert texts(nodes["check"]) == ["Is TRIGGERED?", "status = TRIGGERED"]
    assert texts(nodes["hook"]) == ["Action hook", "Webhook · POST"]
    assert texts(nodes["ticket"]) == ["Action ticket", "Jira issue · OPS"]
    assert texts(nodes["issue"]) == ["Action issue", "Linear issue"]
    assert texts(nodes["wait"]) == ["Wait 15 minutes", "wait 15 min"]
    kinds = {node_id: element.get("class") for node_id, element in nodes.items()}
    assert kinds == {
        "start": "wf-node wf-node--trigger",
        "check": "wf-node wf-node--condition",
        "hook": "wf-node wf-node--webhook",
        "ticket": "wf-node wf-node--jira",
        "issue": "wf-node wf-node--linear",
        "wait": "wf-node wf-node--delay",
    }
    fills = {
        element.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
        for element in nodes.values()
    }
    assert len(fills) == 6


def test_trigger_subtitle_names_the_state_or_age() -> None:
    state = chain(trigger={"type": "state_changed", "stateTransition": {"to": "RESOLVED"}})
    age = chain(trigger={"type": "age", "ageThresholdMinutes": 30})

    manual = chain(trigger={"type": "manual"})

    assert texts(nodes_by_id(parse(render_svg(state)))["start"])[1] == "On state → RESOLVED"
    assert texts(nodes_by_id(parse(render_svg(age)))["start"])[1] == "On age > 30 min"
    assert texts(nodes_by_id(parse(render_svg(manual)))["start"])[1] == "On manual run"


def test_branches_are_labelled_and_styled_apart_without_colour() -> None:
    svg = parse(render_svg(branching()))
    edges = {g.get("data-edge-id"): g for g in svg.iter(f"{SVG}g") if g.get("data-edge-id")}

    true_edge, false_edge = edges["e-check-ticket"], edges["e-check-wait"]
    plain = edges["e-start-check"]
    assert true_edge.get("class") == "wf-edge wf-edge--true"
    assert false_edge.get("class") == "wf-edge wf-edge--false"
    assert texts(true_edge) == ["true"]
    assert texts(false_edge) == ["false"]
    assert texts(plain) == []
    true_line, false_line, plain_line = (
        g.find(f"{SVG}path[@class='wf-edge-line']") for g in (true_edge, false_edge, plain)
    )
    assert true_line is not None and false_line is not None and plain_line is not None
    assert false_line.get("stroke-dasharray")
    assert true_line.get("stroke-dasharray") is None
    assert len({line.get("stroke") for line in (true_line, false_line, plain_line)}) == 3
    assert true_edge.find(f"{SVG}path[@class='wf-edge-arrow']") is not None
    assert true_edge.findtext(f"{SVG}title") == "Is P1? → Action ticket (true)"


def test_long_edges_are_routed_through_the_layers_they_cross() -> None:
    defn = chain(webhook_node("a"), webhook_node("b"), webhook_node("c"))
    defn["edges"].append(edge("start", "c", edge_id="long"))

    svg = parse(render_svg(defn))
    line = next(g for g in svg.iter(f"{SVG}g") if g.get("data-edge-id") == "long").find(
        f"{SVG}path"
    )

    # one curve per layer boundary plus a straight piece through each crossed layer
    assert line is not None
    assert line.get("d", "").count("C") == 3
    assert line.get("d", "").count("L") == 2


def test_links_open_each_node_form_in_reading_order() -> None:
    svg = parse(
        render_svg(
            branching(),
            node_href=lambda node_id: f"/workflows/1/nodes/{node_id}",
            node_attrs=lambda node_id: {"hx-get": f"/f/{node_id}", "hx-target": "#form"},
            selected="check",
        )
    )

    assert svg.get("role") == "group"
    links = svg.findall(f".//{SVG}a")
    assert [link.get("data-node-id") for link in links] == [
        "start",
        "check",
        "ticket",
        "wait",
        "issue",
    ]
    check = links[1]
    assert check.get("href") == "/workflows/1/nodes/check"
    assert check.get("hx-get") == "/f/check"
    assert check.get("hx-target") == "#form"
    # The name holds the drawn words in their order ("Is P1?", "priority = P1").
    assert check.get("aria-label") == "Is P1?: priority = P1 (Condition)"
    assert check.get("aria-current") == "true"
    assert [link.get("aria-current") for link in links].count("true") == 1
    selected = check.find(f"{SVG}g")
    assert selected is not None and "wf-node--selected" in (selected.get("class") or "")
    assert selected.find(f"{SVG}rect[@class='wf-node-halo']") is not None


def test_node_attrs_can_add_a_class_but_not_a_bad_attribute_name() -> None:
    svg = parse(
        render_svg(chain(), node_href=lambda i: f"/n/{i}", node_attrs=lambda i: {"class": "extra"})
    )
    assert svg.find(f".//{SVG}a").get("class") == "wf-node-link extra"  # type: ignore[union-attr]

    with pytest.raises(ValueError, match="attribute name"):
        render_svg(chain(), node_href=lambda i: "/", node_attrs=lambda i: {'x" onclick': "1"})


def test_problems_mark_the_node_and_put_the_message_in_its_title() -> None:
    svg = parse(render_svg(branching(), problems={"ticket": "Project key is missing."}))

    nodes = nodes_by_id(svg)
    ticket = nodes["ticket"]
    assert "wf-node--problem" in (ticket.get("class") or "")
    assert ticket.findtext(f"{SVG}title") == (
        "Action ticket (Jira issue): Jira issue · OPS. Problem: Project key is missing."
    )
    assert ticket.find(f"{SVG}circle[@class='wf-node-problem']") is not None
    assert "!" in texts(ticket)
    assert "wf-node--problem" not in (nodes["wait"].get("class") or "")
    assert "1 step with problems" in (svg.findtext(f"{SVG}desc") or "")


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "Tom & \"Jerry\" 'quoted'",
        "]]><x/>&amp;",
        "bad\x00control\x1bchars",
    ],
)
def test_everything_user_provided_is_escaped(hostile: str) -> None:
    defn = definition(
        [trigger_node(name=hostile[:20]), condition_node("c", value=hostile[:20])],
        [edge("start", "c")],
        name=hostile,
    )
    defn["nodes"][1]["id"] = 'c"><script>'
    defn["edges"][0]["target"] = 'c"><script>'
    defn["edges"][0]["id"] = "<e>&"

    markup = str(
        render_svg(
            defn,
            node_href=lambda node_id: f"/n?id={node_id}&x=1",
            node_attrs=lambda node_id: {"hx-vals": f'{{"id": "{node_id}"}}'},
            problems={'c"><script>': hostile},
            title=hostile,
        )
    )

    assert "<script>" not in markup
    svg = parse(markup)
    clean = hostile.replace("\x00", " ").replace("\x1b", " ")
    assert svg.findtext(f"{SVG}title") == clean
    assert clean[:20] in texts(nodes_by_id(svg)["start"])
    link = svg.findall(f".//{SVG}a")[1]
    assert link.get("data-node-id") == 'c"><script>'
    assert link.get("href") == '/n?id=c"><script>&x=1'
    assert link.get("hx-vals") == '{"id": "c"><script>"}'
    assert {g.get("data-edge-id") for g in svg.iter(f"{SVG}g")} >= {"<e>&"}


def test_long_names_are_shortened_and_kept_whole_in_the_title() -> None:
    name = "Page the whole database team and the incident commander right now"
    defn = chain(trigger=None)
    defn["nodes"][0]["data"]["name"] = name

    start = nodes_by_id(parse(render_svg(defn)))["start"]

    shown = texts(start)[0]
    assert shown.endswith("…") and len(shown) < len(name)
    assert (start.findtext(f"{SVG}title") or "").startswith(name)


def test_compact_thumbnail_has_names_only_and_is_small() -> None:
    svg = parse(render_svg(branching(), compact=True))

    assert "wf-graph--compact" in (svg.get("class") or "")
    assert float(svg.get("width", "0")) <= 240
    assert float(svg.get("height", "0")) <= 160
    assert svg.findall(f".//{SVG}text[@class='wf-node-subtitle']") == []
    assert texts(nodes_by_id(svg)["check"]) == ["Is P1?"]


def test_stored_positions_are_used_when_they_do_not_overlap() -> None:
    defn = branching()
    spots = {"start": (0, 0), "check": (0, 300), "ticket": (-300, 600), "wait": (300, 600)}
    spots["issue"] = (300, 900)
    for node in defn["nodes"]:
        node["position"] = {"x": spots[node["id"]][0], "y": spots[node["id"]][1]}

    svg = parse(render_svg(defn))

    assert uses_stored_positions(defn)
    assert svg.get("data-positions") == "stored"
    box = nodes_by_id(svg)["ticket"].find(f"{SVG}rect")
    assert box is not None and (box.get("x"), box.get("y")) == ("-300", "600")
    x, y, width, height = (float(v) for v in svg.get("viewBox", "").split())
    assert x <= -300 and y <= 0 and x + width >= 500 and y + height >= 900 + NODE_HEIGHT


@pytest.mark.parametrize(
    "positions",
    [
        [{"x": 0, "y": 0}, {"x": 10, "y": 20}],  # overlapping boxes
        [{"x": 0, "y": 0}, {"x": 0, "y": 0}],  # the same spot
        [{"x": 0, "y": 0}, None],  # one missing
        [{"x": 0, "y": 0}, {"x": "1", "y": 200}],  # not a number
        [{"x": 0, "y": 0}, {"x": float("nan"), "y": 200}],
    ],
)
def test_automatic_layout_when_stored_positions_do_not_fit(positions: list[Any]) -> None:
    defn = chain(webhook_node("a"))
    for node, position in zip(defn["nodes"], positions, strict=True):
        node["position"] = position

    svg = parse(render_svg(defn))

    assert not uses_stored_positions(defn)
    assert svg.get("data-positions") == "automatic"
    box = nodes_by_id(svg)["a"].find(f"{SVG}rect")
    assert box is not None and box.get("y") == str(int(ROW))


def test_viewbox_holds_every_node_box() -> None:
    defn = definition(
        [trigger_node(), *(webhook_node(f"n{i}") for i in range(6))],
        [edge("start", f"n{i}") for i in range(6)],
    )
    svg = parse(render_svg(defn))
    x, y, width, height = (float(v) for v in svg.get("viewBox", "").split())

    for box in svg.iter(f"{SVG}rect"):
        if box.get("class") == "wf-node-box":
            bx, by = float(box.get("x", "0")), float(box.get("y", "0"))
            assert x <= bx and bx + NODE_WIDTH <= x + width
            assert y <= by and by + NODE_HEIGHT <= y + height
    assert (svg.get("width"), svg.get("height")) == (f"{width:g}", f"{height:g}")


def test_same_input_gives_the_same_text_and_ids_differ_between_graphs() -> None:
    first = render_svg(branching(), selected="wait")
    again = render_svg(copy.deepcopy(branching()), selected="wait")
    other = render_svg(chain())

    assert first == again
    assert parse(first).get("aria-labelledby") != parse(other).get("aria-labelledby")
    assert parse(render_svg(chain(), dom_id="g1")).get("aria-labelledby") == "g1-title"


def test_a_clipped_node_link_is_named_by_its_drawn_text_then_its_full_description() -> None:
    long_name = "Tell the payments channel and the on-call manager about it"
    defn = chain(webhook_node("hook"))
    defn["nodes"][1]["data"]["name"] = long_name
    svg = parse(render_svg(defn, node_href=lambda node_id: f"/n/{node_id}"))
    link = next(a for a in svg.iter(f"{SVG}a") if a.get("data-node-id") == "hook")
    drawn = [t.text or "" for t in link.iter(f"{SVG}text") if t.get("class", "").startswith("wf-")]
    assert drawn[0].endswith("…") and drawn[0] != long_name
    label = link.get("aria-label", "")
    assert label.startswith(" ".join(drawn) + ". ")
    assert label.endswith(f"{long_name} (Webhook): {drawn[1]}")
