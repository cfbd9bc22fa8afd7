"""Hypothesis strategies for workflow definitions: valid ones of every node kind, and
the graph oracles (reachability, dominators) the property tests check against."""

from __future__ import annotations

from collections import deque

from hypothesis import strategies as st

from app.definition.builders import Json
from app.incidents.enums import IncidentPriority, IncidentStatus

# Strategies are built once at import: building them inside composite draws
# costs more than drawing from them.

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"
ID_CHARS = LOWER + UPPER + DIGITS + "_-"
STATUSES = [status.value for status in IncidentStatus]
PRIORITIES = [priority.value for priority in IncidentPriority]


def word(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    """One character from ``first`` then up to ``max_rest`` from ``rest``."""
    return st.builds(
        str.__add__, st.sampled_from(first), st.text(st.sampled_from(rest), max_size=max_rest)
    )


ids = word(ID_CHARS, ID_CHARS, 11)
secret_names = word(LOWER, LOWER + DIGITS + "_", 10)
names = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20
).filter(str.strip)
# Free text that cannot open a Jinja tag.
plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00{"), max_size=30)
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="{"), max_size=20
)
template_parts = st.sampled_from(
    [
        "{{ incident.title }}",
        "{{ incident.metadata.anything.deeper }}",
        "{{ team.name | upper }}",
        "{% if assignee %}{{ assignee.email }}{% endif %}",
        '{"priority": {{ incident.priority | tojson }}}',
        "{{ workflow.executionId }} {{ incident.createdAt }}",
        "{% for k, v in incident.metadata.items() %}{{ k }}={{ v }};{% endfor %}",
        "",
    ]
)
template_text = st.builds(lambda a, t, b: a + t + b, plain_text, template_parts, plain_text)
required_template_text = template_text.map(
    lambda text: text if text.strip() else "{{ incident.title }}"
)
coordinates = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positions = st.fixed_dictionaries({"x": coordinates, "y": coordinates})
hosts = st.builds(
    lambda name, tld: f"{name}.{tld}", word(LOWER, LOWER + DIGITS, 8), word(LOWER, LOWER, 5)
)
secret_refs = st.builds(
    lambda form, name: form % name,
    st.sampled_from(["{{ secrets.%s }}", "{{secrets.%s}}", "{{  secrets.%s\t}}"]),
    secret_names,
)
webhook_auths = st.one_of(
    st.just({"type": "none"}),
    st.fixed_dictionaries({"type": st.just("bearer"), "token": secret_refs}),
    st.fixed_dictionaries({"type": st.just("basic"), "username": names, "password": secret_refs}),
    st.fixed_dictionaries(
        {
            "type": st.just("oauth2"),
            "clientId": required_template_text,
            "clientSecret": secret_refs,
            "tokenUrl": hosts.map(lambda host: f"https://{host}/oauth/token"),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("custom"),
            "customHeaders": st.dictionaries(
                word(LOWER, LOWER, 7).map("X-Key-".__add__), secret_refs, min_size=1, max_size=3
            ),
        }
    ),
)
retries = st.fixed_dictionaries(
    {
        "attempts": st.integers(1, 10),
        "backoff": st.just("exponential"),
        "initialDelayMs": st.integers(100, 300_000),
    }
)
# Lower-case names so that no two differ only in case.
header_names = word(LOWER, LOWER + DIGITS + "-", 9).map("x-".__add__)
webhook_data = st.fixed_dictionaries(
    {
        "actionType": st.just("webhook"),
        "name": names,
        "config": st.fixed_dictionaries(
            {
                "url": st.builds(
                    lambda host, port, path: f"https://{host}{port}/hooks/{path}",
                    hosts,
                    st.sampled_from(["", ":8080", ":443"]),
                    st.sampled_from(["", "{{ incident.id }}", "{{ secrets.hook_path }}"]),
                ),
                "method": st.sampled_from(["POST", "PUT", "PATCH"]),
                "headers": st.dictionaries(
                    header_names,
                    st.builds(str.__add__, header_text, st.sampled_from(["", "{{ incident.id }}"])),
                    max_size=3,
                ),
                "body": template_text,
                "auth": webhook_auths,
            }
        ),
        "retry": retries,
    }
)
jira_data = st.fixed_dictionaries(
    {
        "actionType": st.just("jira"),
        "name": names,
        "config": st.fixed_dictionaries(
            {
                "projectKey": st.builds(
                    str.__add__, st.sampled_from(UPPER), word(UPPER + DIGITS + "_", UPPER, 8)
                ),
                "issueType": names,
                "summary": required_template_text,
                "description": template_text,
            },
            optional={
                "priority": names,
                "labels": st.lists(word(ID_CHARS, ID_CHARS + ".", 9), unique=True, max_size=5),
            },
        ),
        "retry": retries,
    }
)
uuid_text = st.uuids().map(str)
linear_data = st.fixed_dictionaries(
    {
        "actionType": st.just("linear"),
        "name": names,
        "config": st.fixed_dictionaries(
            {"teamId": uuid_text, "title": required_template_text, "description": template_text},
            optional={
                "priority": st.integers(0, 4),
                "labelIds": st.lists(uuid_text, unique=True, max_size=4),
            },
        ),
        "retry": retries,
    }
)
condition_fields = st.one_of(
    st.tuples(st.just("priority"), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("status"), st.sampled_from(STATUSES)),
    st.tuples(st.sampled_from(["service", "team"]), names),
    st.tuples(word(ID_CHARS, ID_CHARS, 9).map("metadata.".__add__), names),
)
condition_data = st.builds(
    lambda pair, name: {"field": pair[0], "operator": "=", "value": pair[1], "name": name},
    condition_fields,
    names,
)
delay_data = st.fixed_dictionaries({"durationMinutes": st.integers(0, 10_080), "name": names})
NODE_DATA = {
    "webhook": webhook_data,
    "jira": jira_data,
    "linear": linear_data,
    "condition": condition_data,
    "delay": delay_data,
}
node_kinds = st.sampled_from(sorted(NODE_DATA))
trigger_conditions = st.lists(condition_fields, max_size=4, unique_by=lambda pair: pair[0]).map(
    lambda pairs: [{"field": field, "value": value} for field, value in pairs]
)
transitions = st.sampled_from(
    [{"to": to} for to in STATUSES]
    + [{"from": source, "to": to} for source in STATUSES for to in STATUSES if source != to]
)
trigger_configs = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["incident_created", "escalation", "manual"]),
            "conditions": trigger_conditions,
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("age"),
            "conditions": trigger_conditions,
            "ageThresholdMinutes": st.integers(1, 43_200),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("state_changed"),
            "conditions": trigger_conditions,
            "stateTransition": transitions,
        }
    ),
)
workflow_settings = st.fixed_dictionaries(
    {"timeout": st.sampled_from(["1min", "5min", "15min"]), "enabled": st.booleans()}
)
versions = st.integers(1, 2**31 - 1)


def reachable(start: str, edges: list[Json], removed: str | None = None) -> set[str]:
    if start == removed:
        return set()
    seen = {start}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for item in edges:
            if (
                item["source"] == current
                and item["target"] != removed
                and item["target"] not in seen
            ):
                seen.add(item["target"])
                queue.append(item["target"])
    return seen


def dominators_by_removal(data: Json) -> dict[str, set[str]]:
    """Independent oracle: d always runs before n iff removing d cuts n off the trigger."""
    node_ids = [node["id"] for node in data["nodes"]]
    start = node_ids[0]
    return {
        node_id: {
            other
            for other in node_ids
            if other != node_id and node_id not in reachable(start, data["edges"], removed=other)
        }
        for node_id in node_ids
    }


@st.composite
def definitions(draw: st.DrawFn, max_nodes: int = 10) -> Json:
    """A valid definition: a random DAG rooted at the trigger, every node reachable."""
    kinds = draw(st.lists(node_kinds, max_size=max_nodes))
    count = len(kinds)
    node_ids = draw(st.lists(ids, min_size=count + 1, max_size=count + 1, unique=True))
    nodes: list[Json] = [
        {
            "id": node_ids[0],
            "type": "trigger",
            "position": draw(positions),
            "data": {"name": draw(names)},
        }
    ]
    for node_id, kind in zip(node_ids[1:], kinds, strict=True):
        nodes.append(
            {
                "id": node_id,
                "type": kind if kind in ("condition", "delay") else "action",
                "position": draw(positions),
                "data": draw(NODE_DATA[kind]),
            }
        )

    edges: list[Json] = []
    free_handles = {i + 1: ["true", "false"] for i, kind in enumerate(kinds) if kind == "condition"}
    connected: set[tuple[int, int]] = set()

    def can_leave(i: int) -> bool:
        return i not in free_handles or bool(free_handles[i])

    def connect(source: int, target: int) -> None:
        item: Json = {
            "id": f"e{len(edges)}",
            "source": node_ids[source],
            "target": node_ids[target],
        }
        if source in free_handles:
            handles = free_handles[source]
            item["sourceHandle"] = handles.pop(draw(st.integers(0, len(handles) - 1)))
        edges.append(item)
        connected.add((source, target))

    # Each node hangs off an earlier one, so the trigger reaches every node and
    # edges only point forward; a few extra forward edges make joins.
    for target in range(1, count + 1):
        connect(draw(st.sampled_from([i for i in range(target) if can_leave(i)])), target)
    for source, target in draw(
        st.lists(st.tuples(st.integers(0, count), st.integers(0, count)), max_size=count)
    ):
        if source < target and can_leave(source) and (source, target) not in connected:
            connect(source, target)

    data: Json = {
        "id": draw(ids),
        "name": draw(names),
        "description": draw(names),
        "version": draw(versions),
        "nodes": nodes,
        "edges": edges,
        "trigger": draw(trigger_configs),
        "settings": draw(workflow_settings),
    }
    # Let some actions use the result of an action that always runs before them.
    runs_before = dominators_by_removal(data)
    for node in nodes:
        if node["type"] != "action":
            continue
        earlier = sorted(
            other["id"]
            for other in nodes
            if other["type"] == "action" and other["id"] in runs_before[node["id"]]
        )
        if not earlier or not draw(st.booleans()):
            continue
        step = draw(st.sampled_from(earlier))
        field = {"webhook": "body", "jira": "summary", "linear": "title"}
        config = node["data"]["config"]
        config[field[node["data"]["actionType"]]] += f' {{{{ steps["{step}"].result }}}}'
    return data
