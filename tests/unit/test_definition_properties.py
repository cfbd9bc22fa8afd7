"""Property tests for the definition schema: generated valid definitions round-trip,
targeted mutations are rejected at the mutated place, and no input raises anything
but ValidationError."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.definition import (
    always_runs_before,
    definition_errors,
    parse_definition,
    parse_definition_json,
    referenced_secrets,
    topological_order,
)
from app.definition.builders import Json
from tests.conftest import property_examples
from tests.strategies import definitions, dominators_by_removal

PROPERTY_SETTINGS = settings(
    max_examples=property_examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Path = tuple[str | int, ...]

# --- Valid definitions ---------------------------------------------------


@PROPERTY_SETTINGS
@given(definitions())
def test_generated_definitions_round_trip_unchanged(data: Json) -> None:
    original = copy.deepcopy(data)
    assert parse_definition(data).to_json() == original
    assert parse_definition_json(json.dumps(data)).to_json() == original
    assert data == original  # validation does not change its input


@PROPERTY_SETTINGS
@given(definitions())
def test_graph_helpers_agree_with_a_brute_force_oracle(data: Json) -> None:
    defn = parse_definition(data)
    order = topological_order(defn)
    assert sorted(order) == sorted(node["id"] for node in data["nodes"])
    for item in data["edges"]:
        assert order.index(item["source"]) < order.index(item["target"])
    assert always_runs_before(defn) == dominators_by_removal(data)


@PROPERTY_SETTINGS
@given(definitions(max_nodes=5))
def test_referenced_secrets_include_every_credential(data: Json) -> None:
    secrets = referenced_secrets(parse_definition(data))
    for node in data["nodes"]:
        if node["type"] != "action":
            continue
        expected: set[str] = set()
        if node["data"]["actionType"] == "jira":
            expected |= {"jira_base_url", "jira_email", "jira_api_token"}
        elif node["data"]["actionType"] == "linear":
            expected.add("linear_api_key")
        else:
            auth = node["data"]["config"]["auth"]
            values = [v for k, v in auth.items() if k in ("token", "password", "clientSecret")]
            values += list(auth.get("customHeaders", {}).values())
            expected |= {v.split("secrets.")[1].strip(" \t}") for v in values}
        for name in expected:
            assert node["id"] in secrets[name]


# --- Targeted mutations --------------------------------------------------


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def required_paths(data: Json) -> list[Path]:
    paths: list[Path] = [
        (key,)
        for key in ("id", "name", "description", "version", "nodes", "edges", "trigger", "settings")
    ]
    paths += [
        ("trigger", "type"),
        ("trigger", "conditions"),
        ("settings", "timeout"),
        ("settings", "enabled"),
    ]
    config_keys = {
        "webhook": ("url", "method", "headers", "body", "auth"),
        "jira": ("projectKey", "issueType", "summary", "description"),
        "linear": ("teamId", "title", "description"),
    }
    for i, node in enumerate(data["nodes"]):
        base: Path = ("nodes", i)
        paths += [(*base, key) for key in ("id", "type", "position", "data")]
        paths += [(*base, "position", "x"), (*base, "position", "y"), (*base, "data", "name")]
        if node["type"] == "action":
            kind = node["data"]["actionType"]
            paths += [(*base, "data", key) for key in ("actionType", "config", "retry")]
            paths += [
                (*base, "data", "retry", key) for key in ("attempts", "backoff", "initialDelayMs")
            ]
            paths += [(*base, "data", "config", key) for key in config_keys[kind]]
        elif node["type"] == "condition":
            paths += [(*base, "data", key) for key in ("field", "operator", "value")]
        elif node["type"] == "delay":
            paths.append((*base, "data", "durationMinutes"))
    for j in range(len(data["edges"])):
        paths += [("edges", j, key) for key in ("id", "source", "target")]
    return paths


def number_mutations(data: Json) -> list[tuple[Path, Any]]:
    options: list[tuple[Path, Any]] = [(("version",), 0), (("version",), -5)]
    for i, node in enumerate(data["nodes"]):
        options += [
            (("nodes", i, "position", "x"), 1_000_000.5),
            (("nodes", i, "position", "y"), -2e6),
            (("nodes", i, "position", "x"), float("nan")),
            (("nodes", i, "position", "y"), float("inf")),
        ]
        if node["type"] == "delay":
            options += [
                (("nodes", i, "data", "durationMinutes"), 10_081),
                (("nodes", i, "data", "durationMinutes"), -1),
            ]
        if node["type"] == "action":
            retry: Path = ("nodes", i, "data", "retry")
            options += [
                ((*retry, "attempts"), 0),
                ((*retry, "attempts"), 11),
                ((*retry, "initialDelayMs"), 99),
                ((*retry, "initialDelayMs"), 300_001),
            ]
            if node["data"]["actionType"] == "linear":
                options.append((("nodes", i, "data", "config", "priority"), 5))
    if data["trigger"]["type"] == "age":
        options += [
            (("trigger", "ageThresholdMinutes"), 0),
            (("trigger", "ageThresholdMinutes"), 43_201),
        ]
    return options


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Json, str, bool]:
    """A valid definition broken in one place: (data, expected loc, only error?)."""
    data = copy.deepcopy(draw(definitions(max_nodes=6)))  # mutated below: a private copy
    nodes, edges = data["nodes"], data["edges"]
    kinds = ["drop_required", "out_of_bounds", "cycle"]
    if edges:
        kinds += ["dangle", "bad_handle"]
    if len(edges) >= 2:
        kinds.append("duplicate_edge_id")
    if len(nodes) >= 2:
        kinds.append("duplicate_node_id")
    if any(node["type"] == "action" and node["data"]["actionType"] == "webhook" for node in nodes):
        kinds.append("literal_credential")
    kind = draw(st.sampled_from(kinds))

    if kind == "drop_required":
        path = draw(st.sampled_from(required_paths(data)))
        del get(data, path[:-1])[path[-1]]
        return data, dotted(path), True
    if kind == "out_of_bounds":
        path, value = draw(st.sampled_from(number_mutations(data)))
        get(data, path[:-1])[path[-1]] = value
        return data, dotted(path), True
    if kind == "dangle":
        j = draw(st.integers(0, len(edges) - 1))
        end = draw(st.sampled_from(["source", "target"]))
        edges[j][end] = "no-such-node-here"  # longer than any generated id
        return data, f"edges[{j}].{end}", False
    if kind == "cycle":
        # An edge from b back to a node that is on every path to b closes a cycle
        # that only this edge can be blamed for.
        runs_before = dominators_by_removal(data)
        sources = [node["id"] for node in nodes if node["type"] != "condition"]
        source = draw(st.sampled_from(sources))
        target = draw(st.sampled_from(sorted(runs_before[source] | {source})))
        edges.append({"id": "closing-edge", "source": source, "target": target})
        return data, f"edges[{len(edges) - 1}].target", True
    if kind == "bad_handle":
        j = draw(st.integers(0, len(edges) - 1))
        if "sourceHandle" in edges[j]:
            if draw(st.booleans()):
                del edges[j]["sourceHandle"]
            else:
                edges[j]["sourceHandle"] = draw(st.sampled_from(["yes", "no", "True", ""]))
        else:
            edges[j]["sourceHandle"] = draw(st.sampled_from(["true", "false"]))
        return data, f"edges[{j}].sourceHandle", True
    if kind == "duplicate_edge_id":
        i, j = sorted(
            draw(st.lists(st.integers(0, len(edges) - 1), min_size=2, max_size=2, unique=True))
        )
        edges[j]["id"] = edges[i]["id"]
        return data, f"edges[{j}].id", True
    if kind == "duplicate_node_id":
        k = draw(st.integers(1, len(nodes) - 1))
        nodes.append(copy.deepcopy(nodes[k]))
        return data, f"nodes[{len(nodes) - 1}].id", True
    # literal_credential
    k = draw(
        st.sampled_from(
            [
                i
                for i, node in enumerate(nodes)
                if node["type"] == "action" and node["data"]["actionType"] == "webhook"
            ]
        )
    )
    literal = draw(
        st.sampled_from(["hunter2", "Bearer abc.def", "{{ incident.title }}", "{{ secrets.a }} "])
    )
    auth, field = draw(
        st.sampled_from(
            [
                ({"type": "bearer", "token": literal}, "token"),
                ({"type": "basic", "username": "bot", "password": literal}, "password"),
                (
                    {
                        "type": "oauth2",
                        "clientId": "c",
                        "clientSecret": literal,
                        "tokenUrl": "https://a.example.com/t",
                    },
                    "clientSecret",
                ),
                ({"type": "custom", "customHeaders": {"X-Key": literal}}, "customHeaders.X-Key"),
            ]
        )
    )
    nodes[k]["data"]["config"]["auth"] = auth
    return data, f"nodes[{k}].data.config.auth.{field}", True


@PROPERTY_SETTINGS
@given(mutations())
def test_targeted_mutations_are_rejected_at_the_mutated_place(case: tuple[Json, str, bool]) -> None:
    data, loc, only = case
    try:
        parse_definition(data)
    except ValidationError as exc:
        locs = [error.loc for error in definition_errors(exc)]
    else:
        raise AssertionError(f"mutation at {loc} was accepted")
    assert loc in locs
    if only:
        assert set(locs) == {loc}


# --- Fuzzing -------------------------------------------------------------

KNOWN_KEYS = [
    "id",
    "name",
    "description",
    "version",
    "nodes",
    "edges",
    "trigger",
    "settings",
    "type",
    "position",
    "data",
    "x",
    "y",
    "actionType",
    "config",
    "retry",
    "url",
    "method",
    "headers",
    "body",
    "auth",
    "token",
    "source",
    "target",
    "sourceHandle",
    "conditions",
    "field",
    "value",
    "stateTransition",
    "from",
    "to",
    "ageThresholdMinutes",
    "durationMinutes",
    "timeout",
    "enabled",
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats()
    | st.text()
    | st.sampled_from(
        ["trigger", "action", "webhook", "bearer", "age", "{{ x", "{{ secrets.a }}", "P1"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=40,
)


def check_only_validation_errors(data: object) -> None:
    try:
        result = parse_definition(data)
    except ValidationError as exc:
        errors = definition_errors(exc)
        assert errors
        assert all(isinstance(error.loc, str) and error.message for error in errors)
    else:
        dumped = result.to_json()
        assert parse_definition(dumped).to_json() == dumped


@PROPERTY_SETTINGS
@given(json_values)
def test_arbitrary_json_values_raise_only_validation_errors(data: object) -> None:
    check_only_validation_errors(data)


def all_paths(data: Any) -> list[Path]:
    paths: list[Path] = [()]
    stack: list[tuple[Any, Path]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        children = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        for key, child in children:
            paths.append((*path, key))
            stack.append((child, (*path, key)))
    return paths


@st.composite
def arbitrary_mutations(draw: st.DrawFn) -> Json:
    # Mutate a private copy: drawn values may share objects with hypothesis's own
    # records (and with each other), and mutating those makes generation flaky.
    data = copy.deepcopy(draw(definitions(max_nodes=5)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(all_paths(data)))
        if not path:
            continue
        parent = get(data, path[:-1])
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(json_values))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            key = draw(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5))
            parent[key] = copy.deepcopy(draw(json_values))
        else:
            parent.insert(path[-1], copy.deepcopy(draw(json_values)))
    return data


@PROPERTY_SETTINGS
@given(arbitrary_mutations())
def test_arbitrary_mutations_raise_only_validation_errors(data: Json) -> None:
    check_only_validation_errors(data)
    try:
        text = json.dumps(data)
    except (ValueError, TypeError):
        return
    try:
        parse_definition_json(text)
    except ValidationError as exc:
        assert definition_errors(exc)


@PROPERTY_SETTINGS
@given(st.text() | st.binary())
def test_arbitrary_text_raises_only_validation_errors(text: str | bytes) -> None:
    try:
        parse_definition_json(text)
    except ValidationError as exc:
        assert definition_errors(exc)
