"""Diffs between workflow definitions, as the version history shows them."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.definition import format_loc
from app.definition.builders import (
    Json,
    chain,
    condition_node,
    delay_node,
    edge,
    jira_node,
    trigger_config,
    webhook_node,
)
from app.workflows.diff import (
    DefinitionDiff,
    EdgeChange,
    FieldChange,
    NodeChange,
    NodeMove,
    diff_definitions,
)
from tests.conftest import property_examples
from tests.strategies import definitions

PROPERTY_SETTINGS = settings(
    max_examples=property_examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def base() -> Json:
    """trigger -> check -> (true) hook, (false) wait."""
    defn = chain(condition_node("check"))
    defn["nodes"] += [webhook_node("hook"), delay_node("wait")]
    defn["edges"] += [edge("check", "hook", "true"), edge("check", "wait", "false")]
    return defn


def test_identical_definitions_have_an_empty_diff() -> None:
    result = diff_definitions(base(), base())

    assert result == DefinitionDiff()
    assert result.is_empty
    assert not result.has_content_changes
    assert result.summary == "No changes"


def test_a_new_version_number_alone_is_not_a_change() -> None:
    newer = base()
    newer["version"] = 7

    assert diff_definitions(base(), newer).is_empty


def test_added_and_removed_nodes_are_named_with_their_type() -> None:
    newer = base()
    newer["nodes"] = [node for node in newer["nodes"] if node["id"] != "wait"]
    newer["nodes"].append(jira_node("ticket"))

    result = diff_definitions(base(), newer)

    assert result.nodes_added == (
        NodeChange(id="ticket", name="Action ticket", type="action", action_type="jira"),
    )
    assert result.nodes_removed == (NodeChange(id="wait", name="Wait 10 minutes", type="delay"),)
    assert result.nodes_changed == ()


def test_changed_node_fields_are_dotted_paths_with_old_and_new_values() -> None:
    newer = base()
    hook = newer["nodes"][2]
    hook["data"]["config"]["url"] = "https://hooks.example.com/v2"
    hook["data"]["retry"]["attempts"] = 5
    hook["data"]["config"]["headers"]["X-Team"] = "payments"
    del hook["data"]["config"]["body"]
    hook["data"]["config"]["auth"] = {"type": "bearer", "token": "{{ secrets.hook_token }}"}

    result = diff_definitions(base(), newer)

    assert [change.id for change in result.nodes_changed] == ["hook"]
    change = result.nodes_changed[0]
    assert (change.name, change.type, change.action_type) == ("Action hook", "action", "webhook")
    assert change.fields == (
        FieldChange(
            "data.config.url",
            "changed",
            "https://hooks.example.com/incidents/{{ incident.id }}",
            "https://hooks.example.com/v2",
        ),
        FieldChange("data.config.headers.X-Team", "added", None, "payments"),
        FieldChange(
            "data.config.body", "removed", '{"title": {{ incident.title | tojson }}}', None
        ),
        FieldChange("data.config.auth.type", "changed", "none", "bearer"),
        # a secret reference is shown as the reference it is
        FieldChange("data.config.auth.token", "added", None, "{{ secrets.hook_token }}"),
        FieldChange("data.retry.attempts", "changed", 3, 5),
    )
    assert result.summary == "1 node changed"


def test_header_names_that_are_not_plain_words_are_quoted_in_the_path() -> None:
    newer = base()
    newer["nodes"][2]["data"]["config"]["headers"]["X.Trace id"] = "1"

    change = diff_definitions(base(), newer).nodes_changed[0]

    assert change.fields == (FieldChange('data.config.headers["X.Trace id"]', "added", None, "1"),)


def test_a_node_changing_type_lists_its_type_and_data() -> None:
    newer = base()
    newer["nodes"][3] = {**delay_node("wait", 10), "type": "condition"}
    newer["nodes"][3]["data"] = condition_node("wait")["data"]

    change = diff_definitions(base(), newer).nodes_changed[0]

    assert (change.id, change.type) == ("wait", "condition")
    paths = [field.path for field in change.fields]
    assert paths[0] == "type"
    assert {"data.durationMinutes", "data.field", "data.name"} <= set(paths)


def test_list_changes_are_reported_by_index() -> None:
    older = base()
    older["trigger"] = trigger_config(
        conditions=[{"field": "priority", "value": "P1"}, {"field": "service", "value": "api"}]
    )
    older["nodes"].append(jira_node("ticket", labels=["ops", "p1"]))
    newer = copy.deepcopy(older)
    newer["trigger"]["conditions"][0]["value"] = "P2"
    newer["trigger"]["conditions"].append({"field": "status", "value": "TRIGGERED"})
    newer["nodes"][-1]["data"]["config"]["labels"] = ["ops"]

    result = diff_definitions(older, newer)

    assert result.fields == (
        FieldChange("trigger.conditions[0].value", "changed", "P1", "P2"),
        FieldChange(
            "trigger.conditions[2]", "added", None, {"field": "status", "value": "TRIGGERED"}
        ),
    )
    assert result.nodes_changed[0].fields == (
        FieldChange("data.config.labels[1]", "removed", "p1", None),
    )
    assert result.changed_sections == ("trigger",)


def test_a_node_only_moved_is_not_a_content_change() -> None:
    newer = base()
    newer["nodes"][1]["position"] = {"x": 40, "y": 260.5}

    result = diff_definitions(base(), newer)

    assert result.nodes_changed == ()
    assert result.nodes_moved == (
        NodeMove(id="check", name="Is P1?", old=(0.0, 200.0), new=(40.0, 260.5)),
    )
    assert not result.is_empty
    assert not result.has_content_changes
    assert result.summary == "1 node moved"


def test_a_node_moved_and_changed_is_listed_as_both_without_position_fields() -> None:
    newer = base()
    newer["nodes"][1]["position"] = {"x": 40, "y": 200}
    newer["nodes"][1]["data"]["value"] = "P2"

    result = diff_definitions(base(), newer)

    assert result.nodes_changed[0].fields == (FieldChange("data.value", "changed", "P1", "P2"),)
    assert [move.id for move in result.nodes_moved] == ["check"]
    assert result.summary == "1 node changed, 1 moved"


def test_edges_added_removed_and_changed_name_source_target_and_handle() -> None:
    newer = base()
    newer["edges"] = [e for e in newer["edges"] if e["id"] != "e-check-wait"]
    newer["edges"].append(edge("hook", "wait"))
    rewired = next(e for e in newer["edges"] if e["id"] == "e-check-hook")
    rewired["sourceHandle"] = "false"

    result = diff_definitions(base(), newer)

    assert result.edges_added == (EdgeChange(id="e-hook-wait", source="hook", target="wait"),)
    assert result.edges_removed == (
        EdgeChange(id="e-check-wait", source="check", target="wait", source_handle="false"),
    )
    assert result.edges_changed == (
        EdgeChange(
            id="e-check-hook",
            source="check",
            target="hook",
            source_handle="false",
            fields=(FieldChange("sourceHandle", "changed", "true", "false"),),
        ),
    )
    assert result.edges_changed[0].label == "check → hook (false)"
    assert result.summary == "1 edge added, 1 removed, 1 changed"


def test_top_level_name_description_trigger_and_settings() -> None:
    newer = base()
    newer["name"] = "Page on P1"
    newer["description"] = ""
    newer["settings"]["enabled"] = False
    newer["trigger"] = {
        "type": "state_changed",
        "conditions": [],
        "stateTransition": {"to": "RESOLVED"},
    }

    result = diff_definitions(base(), newer)

    assert result.fields == (
        FieldChange("name", "changed", "Open a ticket", "Page on P1"),
        FieldChange("description", "changed", "Opens a ticket for every new incident.", ""),
        FieldChange("trigger.type", "changed", "incident_created", "state_changed"),
        FieldChange("trigger.stateTransition", "added", None, {"to": "RESOLVED"}),
        FieldChange("settings.enabled", "changed", True, False),
    )
    assert result.changed_sections == ("name", "description", "trigger", "settings")
    assert result.summary == "name, description, trigger and settings changed"


def test_a_change_of_json_type_is_a_change_but_1_and_1_0_are_equal() -> None:
    older, newer = base(), base()
    older["settings"]["enabled"] = 1
    older["nodes"][2]["data"]["retry"]["attempts"] = 3.0

    result = diff_definitions(older, newer)

    assert result.fields == (FieldChange("settings.enabled", "changed", 1, True),)
    assert result.nodes_changed == ()


def test_summary_counts_nodes_then_edges_then_sections() -> None:
    newer = base()
    newer["nodes"] += [jira_node("a"), jira_node("b")]
    newer["nodes"][2]["data"]["name"] = "Notify"
    newer["edges"] = newer["edges"][:-1]

    assert diff_definitions(base(), newer).summary == ("2 nodes added, 1 changed, 1 edge removed")


def test_invalid_drafts_are_compared_without_raising() -> None:
    draft: dict[str, Any] = {
        "nodes": [5, {"id": "a"}, {"id": "a", "data": []}, {"data": {"name": "no id"}}],
        "edges": "not a list",
        "trigger": None,
    }
    newer: dict[str, Any] = {
        "nodes": [{"id": "a", "position": {"x": True}}, {"id": "a", "data": {"name": "Second"}}],
        "edges": [{"id": 3, "source": None}],
        "trigger": {"type": "manual"},
    }

    result = diff_definitions(draft, newer)

    # duplicated ids pair up by occurrence; the node without an id is removed
    assert [(change.id, change.name) for change in result.nodes_changed] == [("a", "Second")]
    assert [move.id for move in result.nodes_moved] == ["a"]
    assert result.nodes_moved[0].new is None
    assert [change.name for change in result.nodes_removed] == ["no id"]
    assert result.edges_added == (EdgeChange(id="3", source="", target=""),)
    assert result.fields == (
        FieldChange("trigger", "changed", None, {"type": "manual"}),
        FieldChange("nodes[0]", "changed", 5, {"id": "a", "position": {"x": True}}),
        FieldChange("edges", "changed", "not a list", [{"id": 3, "source": None}]),
    )
    assert diff_definitions({}, {}).is_empty


# --- Properties -----------------------------------------------------------------


@PROPERTY_SETTINGS
@given(definitions())
def test_a_definition_does_not_differ_from_itself_or_its_copy(defn: Json) -> None:
    assert diff_definitions(defn, defn).is_empty
    assert diff_definitions(defn, copy.deepcopy(defn)).is_empty


Path = tuple[str | int, ...]


def leaves(value: Any, path: Path = ()) -> list[Path]:
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in leaves(item, (*path, key))]
    if isinstance(value, list) and value:
        return [leaf for index, item in enumerate(value) for leaf in leaves(item, (*path, index))]
    return [path]


def set_at(data: Any, path: Path, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


class Mutated:
    """A value no generated definition holds, of a kind no leaf has."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mutated)

    __hash__ = object.__hash__


@PROPERTY_SETTINGS
@given(definitions(), st.data())
def test_any_mutation_shows_up_in_the_diff_where_it_was_made(
    defn: Json, data: st.DataObject
) -> None:
    mutated = json.loads(json.dumps(defn))  # unshared: generated parts may be one object
    kind = data.draw(
        st.sampled_from(["leaf", "add node", "remove node", "add edge", "remove edge", "move"])
    )
    if kind == "leaf":
        path = data.draw(st.sampled_from([p for p in leaves(defn) if p and p[0] != "version"]))
        set_at(mutated, path, Mutated())
    elif kind == "add node":
        mutated["nodes"].append(delay_node("brand-new-node"))
    elif kind == "remove node":
        mutated["nodes"].pop(data.draw(st.integers(0, len(defn["nodes"]) - 1)))
    elif kind == "add edge":
        mutated["edges"].append(edge("x", "y", edge_id="brand-new-edge"))
    elif kind == "remove edge" and defn["edges"]:
        mutated["edges"].pop(data.draw(st.integers(0, len(defn["edges"]) - 1)))
    else:
        kind = "move"
        node = mutated["nodes"][data.draw(st.integers(0, len(defn["nodes"]) - 1))]
        node["position"] = {"x": node["position"]["x"] + 1, "y": node["position"]["y"]}

    result = diff_definitions(defn, mutated)

    assert not result.is_empty
    assert result.summary != "No changes"
    if kind == "move":
        assert len(result.nodes_moved) == 1
        assert not result.has_content_changes
    elif kind == "leaf":
        where, rest = path[0], path[1:]
        field = rest[1] if where in ("nodes", "edges") and len(rest) > 1 else None
        if field == "id":  # now another node or edge
            removed = result.nodes_removed if where == "nodes" else result.edges_removed
            added = result.nodes_added if where == "nodes" else result.edges_added
            assert [item.id for item in removed] == [defn[str(where)][rest[0]]["id"]]
            assert len(added) == 1
        elif field == "position":
            assert len(result.nodes_moved) == 1
        elif field is not None:
            (change,) = result.nodes_changed if where == "nodes" else result.edges_changed
            assert [f.path for f in change.fields] == [format_loc(rest[1:])]
        else:  # top-level fields, or an empty nodes/edges list made something else
            assert [f.path for f in result.fields] == [format_loc(path)]
