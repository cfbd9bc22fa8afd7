"""Builders for workflow definitions in their wire (JSON) form, with working defaults:
the tests, the benchmarks and scripts build definitions with them (``chain(webhook_node(
"notify"))``). The ids ``TEAM_ID`` and ``LABEL_ID`` are examples in Linear's format."""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]

RETRY: Json = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000}
TEAM_ID = "5f2b7c1e-8a4d-4f6b-9c3e-1d2a3b4c5d6e"
LABEL_ID = "0b6a1f3e-2c4d-4e5f-8a9b-7c6d5e4f3a2b"


def position(x: float = 0.0, y: float = 0.0) -> Json:
    return {"x": x, "y": y}


def trigger_node(node_id: str = "start", name: str = "Incident created") -> Json:
    return {"id": node_id, "type": "trigger", "position": position(), "data": {"name": name}}


def action_node(node_id: str, action_type: str, config: Json, name: str | None = None) -> Json:
    return {
        "id": node_id,
        "type": "action",
        "position": position(0, 100),
        "data": {
            "actionType": action_type,
            "name": name or f"Action {node_id}",
            "config": config,
            "retry": copy.deepcopy(RETRY),
        },
    }


def webhook_config(**overrides: Any) -> Json:
    config: Json = {
        "url": "https://hooks.example.com/incidents/{{ incident.id }}",
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": '{"title": {{ incident.title | tojson }}}',
        "auth": {"type": "none"},
    }
    config.update(overrides)
    return config


def webhook_node(node_id: str, **overrides: Any) -> Json:
    return action_node(node_id, "webhook", webhook_config(**overrides))


def jira_config(**overrides: Any) -> Json:
    config: Json = {
        "projectKey": "OPS",
        "issueType": "Task",
        "summary": "[{{ incident.priority }}] {{ incident.title }}",
        "description": "{{ incident.description }}",
    }
    config.update(overrides)
    return config


def jira_node(node_id: str, **overrides: Any) -> Json:
    return action_node(node_id, "jira", jira_config(**overrides))


def linear_config(**overrides: Any) -> Json:
    config: Json = {
        "teamId": TEAM_ID,
        "title": "{{ incident.title }}",
        "description": "Opened by {{ workflow.name }}",
    }
    config.update(overrides)
    return config


def linear_node(node_id: str, **overrides: Any) -> Json:
    return action_node(node_id, "linear", linear_config(**overrides))


def condition_node(node_id: str, field: str = "priority", value: str = "P1") -> Json:
    return {
        "id": node_id,
        "type": "condition",
        "position": position(0, 200),
        "data": {"field": field, "operator": "=", "value": value, "name": f"Is {value}?"},
    }


def delay_node(node_id: str, minutes: int = 10) -> Json:
    return {
        "id": node_id,
        "type": "delay",
        "position": position(0, 300),
        "data": {"durationMinutes": minutes, "name": f"Wait {minutes} minutes"},
    }


def edge(source: str, target: str, handle: str | None = None, edge_id: str | None = None) -> Json:
    result: Json = {"id": edge_id or f"e-{source}-{target}", "source": source, "target": target}
    if handle is not None:
        result["sourceHandle"] = handle
    return result


def trigger_config(trigger_type: str = "incident_created", **extra: Any) -> Json:
    return {"type": trigger_type, "conditions": [], **extra}


def definition(
    nodes: list[Json],
    edges: list[Json],
    trigger: Json | None = None,
    **overrides: Any,
) -> Json:
    result: Json = {
        "id": "wf_1",
        "name": "Open a ticket",
        "description": "Opens a ticket for every new incident.",
        "version": 1,
        "nodes": nodes,
        "edges": edges,
        "trigger": trigger or trigger_config(),
        "settings": {"timeout": "5min", "enabled": True},
    }
    result.update(overrides)
    return result


def chain(*nodes: Json, trigger: Json | None = None) -> Json:
    """A definition whose nodes run one after the other, after a trigger node."""
    all_nodes = [trigger_node(), *nodes]
    edges = [edge(a["id"], b["id"]) for a, b in zip(all_nodes, all_nodes[1:], strict=False)]
    return definition(all_nodes, edges, trigger)
