"""The workflow definition schema: valid shapes, every rule, error wording, the template sandbox."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jinja2
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from app.definition import (
    MAX_DEFINITION_TEXT,
    IncidentContext,
    WorkflowDefinition,
    always_runs_before,
    ancestors,
    definition_errors,
    definition_json_schema,
    format_loc,
    parse_definition,
    parse_definition_json,
    referenced_secrets,
    topological_order,
)
from app.definition.builders import (
    LABEL_ID,
    TEAM_ID,
    Json,
    chain,
    condition_node,
    definition,
    delay_node,
    edge,
    jira_config,
    jira_node,
    linear_node,
    trigger_config,
    trigger_node,
    webhook_node,
)
from app.definition.templating import (
    TemplateSyntaxProblem,
    parse_template,
    template_environment,
    template_references,
)
from tests.support import error_at, errors_of

CREDENTIAL_HINT = "Credentials are not stored in a definition"


def round_trips(data: Json, **kwargs: Any) -> None:
    assert parse_definition(data, **kwargs).to_json() == data
    assert parse_definition_json(json.dumps(data), **kwargs).to_json() == data


def branching() -> Json:
    """start -> check -(true)-> page -> wait ; check -(false)-> note."""
    return definition(
        [
            trigger_node(),
            condition_node("check", "status", "TRIGGERED"),
            webhook_node("page"),
            delay_node("wait", 0),
            jira_node("note"),
        ],
        [
            edge("start", "check"),
            edge("check", "page", "true"),
            edge("check", "note", "false"),
            edge("page", "wait"),
        ],
    )


# --- Valid definitions ---------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        trigger_config(
            "incident_created",
            conditions=[
                {"field": "priority", "value": "P1"},
                {"field": "status", "value": "TRIGGERED"},
                {"field": "service", "value": "checkout"},
                {"field": "team", "value": "Payments"},
                {"field": "metadata.region", "value": "eu-west-1"},
            ],
        ),
        trigger_config("state_changed", stateTransition={"from": "TRIGGERED", "to": "RESOLVED"}),
        trigger_config("state_changed", stateTransition={"to": "ACKNOWLEDGED"}),
        trigger_config("escalation"),
        trigger_config("manual"),
        trigger_config("age", ageThresholdMinutes=30),
    ],
    ids=lambda trigger: f"{trigger['type']}-{len(trigger)}",
)
def test_every_trigger_type_is_accepted_and_round_trips(trigger: Json) -> None:
    round_trips(chain(webhook_node("notify"), trigger=trigger))


def test_state_transition_from_is_from_on_the_wire_and_from__in_python() -> None:
    data = chain(
        webhook_node("notify"),
        trigger=trigger_config(
            "state_changed", stateTransition={"from": "TRIGGERED", "to": "RESOLVED"}
        ),
    )
    transition = parse_definition(data).trigger.state_transition
    assert transition is not None
    assert transition.from_ == "TRIGGERED"
    assert transition.to == "RESOLVED"


@pytest.mark.parametrize(
    "node",
    [
        webhook_node("act", method="PUT", headers={}, body=""),
        webhook_node("act", method="PATCH"),
        jira_node("act"),
        jira_node("act", priority="High", labels=["sev-1", "checkout"]),
        linear_node("act"),
        linear_node("act", priority=0, labelIds=[LABEL_ID, LABEL_ID.upper()]),
        linear_node("act", priority=4, labelIds=[]),
    ],
    ids=["webhook-put", "webhook-patch", "jira", "jira-full", "linear", "linear-p0", "linear-p4"],
)
def test_every_action_type_is_accepted_and_round_trips(node: Json) -> None:
    round_trips(chain(node))


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "none"},
        {"type": "bearer", "token": "{{ secrets.api_token }}"},
        {
            "type": "basic",
            "username": "bot-{{ team.name }}",
            "password": "{{secrets.bot_password}}",
        },
        {
            "type": "oauth2",
            "clientId": "incidentflow",
            "clientSecret": "{{  secrets.oauth_secret  }}",
            "tokenUrl": "https://auth.example.com:8443/oauth/token?audience=api",
        },
        {"type": "custom", "customHeaders": {"X-Api-Key": "{{ secrets.api_key }}"}},
    ],
    ids=lambda auth: auth["type"],
)
def test_every_auth_type_is_accepted_and_round_trips(auth: Json) -> None:
    data = chain(webhook_node("call", auth=auth))
    round_trips(data)
    round_trips(data, secret_names=["api_token", "bot_password", "oauth_secret", "api_key"])


def test_condition_with_true_and_false_branches_and_delay_round_trips() -> None:
    round_trips(branching())


def test_steps_of_an_action_on_every_path_are_allowed() -> None:
    # page always runs before wait's successor; the join after both branches
    # can still use 'first', which runs before the condition.
    data = definition(
        [
            trigger_node(),
            jira_node("first"),
            condition_node("check"),
            webhook_node("page", body="{{ steps.first.result.key }}"),
            webhook_node("mail"),
            webhook_node(
                "join", body='{{ steps["first"].result.url }} {{ incident.metadata.any.thing }}'
            ),
        ],
        [
            edge("start", "first"),
            edge("first", "check"),
            edge("check", "page", "true"),
            edge("check", "mail", "false"),
            edge("page", "join"),
            edge("mail", "join"),
        ],
    )
    round_trips(data)


def test_python_field_names_are_accepted_and_dumped_as_camel_case() -> None:
    data = chain(delay_node("wait"))
    data["nodes"][1]["data"] = {"duration_minutes": 5, "name": "Wait"}
    assert parse_definition(data).to_json()["nodes"][1]["data"] == {
        "durationMinutes": 5,
        "name": "Wait",
    }


def test_to_json_drops_absent_optional_fields_and_is_json_serialisable() -> None:
    data = chain(jira_node("ticket"))
    dumped = parse_definition(data).to_json()
    assert "priority" not in dumped["nodes"][1]["data"]["config"]
    assert "sourceHandle" not in dumped["edges"][0]
    assert json.loads(json.dumps(dumped)) == data


# --- Field rules ---------------------------------------------------------


def with_change(change: Callable[[Json], None], base: Callable[[], Json] | None = None) -> Json:
    data = base() if base else chain(webhook_node("call"))
    change(data)
    return data


def set_at(path: str, value: Any) -> Callable[[Json], None]:
    """A change that sets a value at a dotted path (numbers index lists)."""

    def change(data: Json) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def delete_at(path: str) -> Callable[[Json], None]:
    def change(data: Json) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]

    return change


def jira_chain() -> Json:
    return chain(jira_node("ticket"))


def linear_chain() -> Json:
    return chain(linear_node("issue"))


def condition_chain() -> Json:
    return chain(condition_node("check"))


def delay_chain() -> Json:
    return chain(delay_node("wait"))


FIELD_CASES = [
    pytest.param(delete_at("description"), None, "description", "required", id="missing-key"),
    pytest.param(
        set_at("nodes.0.data.color", "red"),
        None,
        "nodes[0].data.color",
        "Unknown field 'color'",
        id="extra-key",
    ),
    pytest.param(
        set_at("nodes.1.type", "email"),
        None,
        "nodes[1].type",
        "trigger, action, condition, delay",
        id="node-type",
    ),
    pytest.param(
        delete_at("nodes.1.type"), None, "nodes[1].type", "required", id="node-type-missing"
    ),
    pytest.param(
        set_at("nodes.1.data.actionType", "slack"),
        None,
        "nodes[1].data.actionType",
        "webhook, jira, linear",
        id="action-type",
    ),
    pytest.param(
        set_at("nodes.1.data.config.auth", {"type": "digest"}),
        None,
        "nodes[1].data.config.auth.type",
        "none, bearer, basic, oauth2, custom",
        id="auth-type",
    ),
    pytest.param(set_at("name", "   "), None, "name", "blank", id="name-blank"),
    pytest.param(set_at("name", "n" * 201), None, "name", "at most 200", id="name-long"),
    pytest.param(
        set_at("nodes.1.data.name", ""), None, "nodes[1].data.name", "empty", id="node-name-empty"
    ),
    pytest.param(set_at("description", "\n"), None, "description", "blank", id="description-blank"),
    pytest.param(
        set_at("description", "d" * 2001),
        None,
        "description",
        "at most 2,000",
        id="description-long",
    ),
    pytest.param(set_at("version", 0), None, "version", "at least 1", id="version-zero"),
    pytest.param(set_at("version", "1"), None, "version", "whole number", id="version-text"),
    pytest.param(set_at("version", 10**40), None, "version", "at most", id="version-huge"),
    pytest.param(set_at("nodes", []), None, "nodes", "at least 1", id="nodes-empty"),
    pytest.param(
        set_at("nodes", [trigger_node(f"n{i}") for i in range(201)]),
        None,
        "nodes",
        "at most 200",
        id="nodes-many",
    ),
    pytest.param(
        set_at("edges", [edge("start", "call", edge_id=f"e{i}") for i in range(501)]),
        None,
        "edges",
        "at most 500",
        id="edges-many",
    ),
    pytest.param(
        set_at("nodes.1.id", "a b"), None, "nodes[1].id", "letters, digits", id="id-chars"
    ),
    pytest.param(set_at("nodes.1.id", "n" * 65), None, "nodes[1].id", "at most 64", id="id-long"),
    pytest.param(set_at("edges.0.id", ""), None, "edges[0].id", "empty", id="edge-id-empty"),
    pytest.param(
        set_at("nodes.0.position.x", float("nan")),
        None,
        "nodes[0].position.x",
        "finite",
        id="x-nan",
    ),
    pytest.param(
        set_at("nodes.0.position.y", float("-inf")),
        None,
        "nodes[0].position.y",
        "finite",
        id="y-inf",
    ),
    pytest.param(
        set_at("nodes.0.position.x", 1_000_001),
        None,
        "nodes[0].position.x",
        "at most 1,000,000",
        id="x-far",
    ),
    pytest.param(
        set_at("nodes.0.position.y", True),
        None,
        "nodes[0].position.y",
        "Expected a number",
        id="y-bool",
    ),
    pytest.param(
        set_at("trigger", trigger_config("age", ageThresholdMinutes=0)),
        None,
        "trigger.ageThresholdMinutes",
        "at least 1",
        id="age-zero",
    ),
    pytest.param(
        set_at("trigger", trigger_config("age", ageThresholdMinutes=43_201)),
        None,
        "trigger.ageThresholdMinutes",
        "at most 43,200",
        id="age-long",
    ),
    pytest.param(
        set_at("nodes.1.data.durationMinutes", -1),
        delay_chain,
        "nodes[1].data.durationMinutes",
        "at least 0",
        id="delay-negative",
    ),
    pytest.param(
        set_at("nodes.1.data.durationMinutes", 10_081),
        delay_chain,
        "nodes[1].data.durationMinutes",
        "at most 10,080",
        id="delay-long",
    ),
    pytest.param(
        set_at("nodes.1.data.durationMinutes", 1.5),
        delay_chain,
        "nodes[1].data.durationMinutes",
        "whole number",
        id="delay-fraction",
    ),
    pytest.param(
        set_at("nodes.1.data.retry.attempts", 0),
        None,
        "nodes[1].data.retry.attempts",
        "at least 1",
        id="attempts-zero",
    ),
    pytest.param(
        set_at("nodes.1.data.retry.attempts", 11),
        None,
        "nodes[1].data.retry.attempts",
        "at most 10",
        id="attempts-many",
    ),
    pytest.param(
        set_at("nodes.1.data.retry.initialDelayMs", 99),
        None,
        "nodes[1].data.retry.initialDelayMs",
        "at least 100",
        id="delay-ms-short",
    ),
    pytest.param(
        set_at("nodes.1.data.retry.initialDelayMs", 300_001),
        None,
        "nodes[1].data.retry.initialDelayMs",
        "at most 300,000",
        id="delay-ms-long",
    ),
    pytest.param(
        set_at("nodes.1.data.retry.backoff", "linear"),
        None,
        "nodes[1].data.retry.backoff",
        "'exponential'",
        id="backoff",
    ),
    pytest.param(
        set_at("nodes.1.data.config.method", "GET"),
        None,
        "nodes[1].data.config.method",
        "'POST', 'PUT' or 'PATCH'",
        id="method",
    ),
    pytest.param(
        set_at("nodes.1.data.config.body", "x" * 100_001),
        None,
        "nodes[1].data.config.body",
        "at most 100,000",
        id="body-long",
    ),
    pytest.param(
        set_at("nodes.1.data.config.summary", "x" * 10_001),
        jira_chain,
        "nodes[1].data.config.summary",
        "at most 10,000",
        id="template-long",
    ),
    pytest.param(
        set_at("nodes.1.data.config.summary", " "),
        jira_chain,
        "nodes[1].data.config.summary",
        "blank",
        id="summary-blank",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {f"X-H{i}": "v" for i in range(51)}),
        None,
        "nodes[1].data.config.headers",
        "at most 50",
        id="headers-many",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"X Bad": "v"}),
        None,
        'nodes[1].data.config.headers["X Bad"]',
        "not a valid HTTP header name",
        id="header-name",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"host": "v"}),
        None,
        "nodes[1].data.config.headers.host",
        "set automatically",
        id="header-host",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"Content-Length": "1"}),
        None,
        "nodes[1].data.config.headers.Content-Length",
        "set automatically",
        id="header-length",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"Transfer-Encoding": "chunked"}),
        None,
        "nodes[1].data.config.headers.Transfer-Encoding",
        "set automatically",
        id="header-te",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"Connection": "close"}),
        None,
        "nodes[1].data.config.headers.Connection",
        "set automatically",
        id="header-connection",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"Authorization": "{{ secrets.t }}"}),
        None,
        "nodes[1].data.config.headers.Authorization",
        "auth",
        id="header-authorization",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"X-A": "1", "x-a": "2"}),
        None,
        "nodes[1].data.config.headers",
        "set twice",
        id="header-twice",
    ),
    pytest.param(
        set_at("nodes.1.data.config.headers", {"X-A": "a\r\nHost: evil"}),
        None,
        "nodes[1].data.config.headers.X-A",
        "one line",
        id="header-newline",
    ),
    pytest.param(
        set_at("nodes.1.data.config.url", "hooks.example.com/x"),
        None,
        "nodes[1].data.config.url",
        "http:// or https://",
        id="url-scheme",
    ),
    pytest.param(
        set_at("nodes.1.data.config.url", "{{ secrets.url }}"),
        None,
        "nodes[1].data.config.url",
        "http:// or https://",
        id="url-templated-scheme",
    ),
    pytest.param(
        set_at("nodes.1.data.config.url", "https://{{ incident.service }}.example.com/"),
        None,
        "nodes[1].data.config.url",
        "host name",
        id="url-templated-host",
    ),
    pytest.param(
        set_at("nodes.1.data.config.url", "https:///path"),
        None,
        "nodes[1].data.config.url",
        "not a valid host",
        id="url-no-host",
    ),
    pytest.param(
        set_at("nodes.1.data.config.url", "https://user:pw@example.com/"),
        None,
        "nodes[1].data.config.url",
        "password in the URL",
        id="url-userinfo",
    ),
    pytest.param(
        set_at("nodes.1.data.config.url", "https://example.com:70000/"),
        None,
        "nodes[1].data.config.url",
        "not a valid host",
        id="url-port",
    ),
    pytest.param(
        set_at(
            "nodes.1.data.config.auth",
            {
                "type": "oauth2",
                "clientId": "c",
                "clientSecret": "{{ secrets.s }}",
                "tokenUrl": "https://a.example.com/{{ x }}",
            },
        ),
        None,
        "nodes[1].data.config.auth.tokenUrl",
        "plain http:// or https:// URL",
        id="token-url-template",
    ),
    pytest.param(
        set_at(
            "nodes.1.data.config.auth",
            {
                "type": "oauth2",
                "clientId": "c",
                "clientSecret": "{{ secrets.s }}",
                "tokenUrl": "ftp://a.example.com/",
            },
        ),
        None,
        "nodes[1].data.config.auth.tokenUrl",
        "plain http:// or https:// URL",
        id="token-url-scheme",
    ),
    pytest.param(
        set_at("nodes.1.data.config.auth", {"type": "bearer", "token": "eyJhbGciOi"}),
        None,
        "nodes[1].data.config.auth.token",
        CREDENTIAL_HINT,
        id="bearer-literal",
    ),
    pytest.param(
        set_at("nodes.1.data.config.auth", {"type": "bearer", "token": "{{ secrets.a }}x"}),
        None,
        "nodes[1].data.config.auth.token",
        CREDENTIAL_HINT,
        id="bearer-partial",
    ),
    pytest.param(
        set_at(
            "nodes.1.data.config.auth", {"type": "basic", "username": "bot", "password": "hunter2"}
        ),
        None,
        "nodes[1].data.config.auth.password",
        CREDENTIAL_HINT,
        id="basic-literal",
    ),
    pytest.param(
        set_at(
            "nodes.1.data.config.auth",
            {
                "type": "oauth2",
                "clientId": "c",
                "clientSecret": "s3cr3t",
                "tokenUrl": "https://a.example.com/t",
            },
        ),
        None,
        "nodes[1].data.config.auth.clientSecret",
        CREDENTIAL_HINT,
        id="oauth2-literal",
    ),
    pytest.param(
        set_at(
            "nodes.1.data.config.auth", {"type": "custom", "customHeaders": {"X-Api-Key": "k-123"}}
        ),
        None,
        "nodes[1].data.config.auth.customHeaders.X-Api-Key",
        CREDENTIAL_HINT,
        id="custom-literal",
    ),
    pytest.param(
        set_at(
            "nodes.1.data.config.auth",
            {"type": "custom", "customHeaders": {"X-Api-Key": "{{ secrets.Key }}"}},
        ),
        None,
        "nodes[1].data.config.auth.customHeaders.X-Api-Key",
        "{{ secrets.<name> }}",
        id="custom-bad-secret-name",
    ),
    pytest.param(
        set_at("nodes.1.data.config.auth", {"type": "custom", "customHeaders": {}}),
        None,
        "nodes[1].data.config.auth.customHeaders",
        "at least 1",
        id="custom-empty",
    ),
    pytest.param(
        set_at("nodes.1.data.config.projectKey", "ops"),
        jira_chain,
        "nodes[1].data.config.projectKey",
        "Jira project key",
        id="project-key",
    ),
    pytest.param(
        set_at("nodes.1.data.config.labels", ["two words"]),
        jira_chain,
        "nodes[1].data.config.labels[0]",
        "cannot contain spaces",
        id="label-space",
    ),
    pytest.param(
        set_at("nodes.1.data.config.labels", [f"l{i}" for i in range(21)]),
        jira_chain,
        "nodes[1].data.config.labels",
        "at most 20",
        id="labels-many",
    ),
    pytest.param(
        set_at("nodes.1.data.config.labels", ["a", "a"]),
        jira_chain,
        "nodes[1].data.config.labels",
        "listed twice",
        id="labels-twice",
    ),
    pytest.param(
        set_at("nodes.1.data.config.teamId", "team-payments"),
        linear_chain,
        "nodes[1].data.config.teamId",
        "UUID",
        id="team-id",
    ),
    pytest.param(
        set_at("nodes.1.data.config.labelIds", [TEAM_ID, "bug"]),
        linear_chain,
        "nodes[1].data.config.labelIds[1]",
        "UUID",
        id="label-id",
    ),
    pytest.param(
        set_at("nodes.1.data.config.priority", 5),
        linear_chain,
        "nodes[1].data.config.priority",
        "at most 4",
        id="linear-priority",
    ),
    pytest.param(
        set_at("nodes.1.data.field", "severity"),
        condition_chain,
        "nodes[1].data.field",
        "priority, status, service, team or metadata",
        id="condition-field",
    ),
    pytest.param(
        set_at("nodes.1.data.value", "P9"),
        condition_chain,
        "nodes[1].data.value",
        "P1, P2, P3, P4, P5",
        id="condition-priority",
    ),
    pytest.param(
        set_at("nodes.1.data.operator", "!="),
        condition_chain,
        "nodes[1].data.operator",
        "'='",
        id="condition-operator",
    ),
    pytest.param(
        set_at("trigger.conditions", [{"field": "status", "value": "OPEN"}]),
        None,
        "trigger.conditions[0].value",
        "TRIGGERED, ACKNOWLEDGED, RESOLVED",
        id="trigger-status",
    ),
    pytest.param(
        set_at("trigger.conditions", [{"field": "metadata.", "value": "x"}]),
        None,
        "trigger.conditions[0].field",
        "metadata.<key>",
        id="trigger-metadata",
    ),
    pytest.param(
        set_at("trigger.type", "hourly"),
        None,
        "trigger.type",
        "'incident_created'",
        id="trigger-type",
    ),
    pytest.param(
        set_at("trigger", trigger_config("state_changed", stateTransition={"to": "CLOSED"})),
        None,
        "trigger.stateTransition.to",
        "'RESOLVED'",
        id="transition-status",
    ),
    pytest.param(
        set_at("trigger", trigger_config("state_changed", stateTransition={"from": "TRIGGERED"})),
        None,
        "trigger.stateTransition.to",
        "required",
        id="transition-to-missing",
    ),
    pytest.param(
        set_at("settings.timeout", "2min"),
        None,
        "settings.timeout",
        "'1min', '5min' or '15min'",
        id="timeout",
    ),
    pytest.param(
        set_at("settings.enabled", "yes"),
        None,
        "settings.enabled",
        "true or false",
        id="enabled-yes",
    ),
    pytest.param(
        set_at("settings.enabled", 1), None, "settings.enabled", "true or false", id="enabled-one"
    ),
    pytest.param(
        set_at("edges.0.sourceHandle", "maybe"),
        None,
        "edges[0].sourceHandle",
        "'true' or 'false'",
        id="handle-value",
    ),
    pytest.param(
        set_at("nodes", "all of them"), None, "nodes", "Expected a list", id="nodes-not-list"
    ),
    pytest.param(
        set_at("nodes.1", None), None, "nodes[1]", "Expected a JSON object", id="node-null"
    ),
]


@pytest.mark.parametrize(("change", "base", "loc", "fragment"), FIELD_CASES)
def test_field_rules_report_the_place_and_the_problem(
    change: Callable[[Json], None], base: Callable[[], Json] | None, loc: str, fragment: str
) -> None:
    error = error_at(with_change(change, base), loc)
    assert fragment in error.message


# --- Graph rules ---------------------------------------------------------


def graph(nodes: list[Json], edges: list[Json], **kwargs: Any) -> Json:
    return definition(nodes, edges, **kwargs)


W = webhook_node

GRAPH_CASES = [
    pytest.param(graph([W("a")], []), "nodes", "exactly one trigger node", id="no-trigger"),
    pytest.param(
        graph([trigger_node(), trigger_node("start2")], [edge("start", "start2")]),
        "nodes[1].type",
        "nodes[0] is already the trigger",
        id="two-triggers",
    ),
    pytest.param(
        graph([trigger_node(), W("a")], [edge("start", "a"), edge("a", "start")]),
        "edges[1].target",
        "no edge may lead into it",
        id="edge-into-trigger",
    ),
    pytest.param(
        graph([trigger_node(), W("a"), W("a")], [edge("start", "a")]),
        "nodes[2].id",
        "already used by nodes[1]",
        id="duplicate-node-id",
    ),
    pytest.param(
        graph(
            [trigger_node(), W("a"), W("b")],
            [edge("start", "a", edge_id="e"), edge("a", "b", edge_id="e")],
        ),
        "edges[1].id",
        "already used by edges[0]",
        id="duplicate-edge-id",
    ),
    pytest.param(
        graph([trigger_node(), W("a")], [edge("start", "a"), edge("ghost", "a")]),
        "edges[1].source",
        "No node has id 'ghost'",
        id="dangling-source",
    ),
    pytest.param(
        graph([trigger_node(), W("a")], [edge("start", "a"), edge("a", "ghost")]),
        "edges[1].target",
        "No node has id 'ghost'",
        id="dangling-target",
    ),
    pytest.param(
        graph([trigger_node(), W("a")], [edge("start", "a"), edge("a", "a")]),
        "edges[1].target",
        "to itself",
        id="self-loop",
    ),
    pytest.param(
        graph(
            [trigger_node(), W("a"), W("b"), W("c")],
            [edge("start", "a"), edge("a", "b"), edge("b", "c"), edge("c", "a")],
        ),
        "edges[3].target",
        "a -> b -> c -> a",
        id="cycle",
    ),
    pytest.param(
        graph(
            [trigger_node(), W("a"), W("b")],
            [edge("start", "a"), edge("a", "b"), edge("a", "b", edge_id="again")],
        ),
        "edges[2].target",
        "edges[1] already connects 'a' to 'b'",
        id="duplicate-edge",
    ),
    pytest.param(
        graph([trigger_node(), W("a")], [edge("start", "a", "true")]),
        "edges[0].sourceHandle",
        "Only edges leaving a condition node",
        id="handle-off-condition",
    ),
    pytest.param(
        graph([trigger_node(), condition_node("c"), W("a")], [edge("start", "c"), edge("c", "a")]),
        "edges[1].sourceHandle",
        "need sourceHandle 'true' or 'false'",
        id="handle-missing",
    ),
    pytest.param(
        graph(
            [trigger_node(), condition_node("c"), W("a"), W("b")],
            [edge("start", "c"), edge("c", "a", "true"), edge("c", "b", "true")],
        ),
        "edges[2].sourceHandle",
        "already has a 'true' edge (edges[1])",
        id="handle-twice",
    ),
    pytest.param(
        graph([trigger_node(), W("a"), W("b")], [edge("start", "a")]),
        "nodes[2]",
        "cannot be reached from the trigger",
        id="unreachable",
    ),
    pytest.param(
        graph([trigger_node(), W("a"), W("b")], [edge("start", "a"), edge("b", "a")]),
        "nodes[2]",
        "cannot be reached",
        id="unreachable-source",
    ),
    pytest.param(
        chain(W("a"), trigger=trigger_config("age")),
        "trigger.ageThresholdMinutes",
        "needs ageThresholdMinutes",
        id="age-without-threshold",
    ),
    pytest.param(
        chain(W("a"), trigger=trigger_config("manual", ageThresholdMinutes=5)),
        "trigger.ageThresholdMinutes",
        "Only 'age' triggers",
        id="threshold-without-age",
    ),
    pytest.param(
        chain(W("a"), trigger=trigger_config("state_changed")),
        "trigger.stateTransition",
        "needs stateTransition",
        id="state-without-transition",
    ),
    pytest.param(
        chain(
            W("a"),
            trigger=trigger_config(
                "state_changed", stateTransition={"from": "RESOLVED", "to": "RESOLVED"}
            ),
        ),
        "trigger.stateTransition.to",
        "both RESOLVED",
        id="transition-same-state",
    ),
    pytest.param(
        chain(W("a"), trigger=trigger_config("escalation", stateTransition={"to": "RESOLVED"})),
        "trigger.stateTransition",
        "Only 'state_changed' triggers",
        id="transition-without-state",
    ),
    pytest.param(
        chain(
            W("a"),
            trigger=trigger_config(
                conditions=[{"field": "service", "value": "a"}, {"field": "service", "value": "b"}]
            ),
        ),
        "trigger.conditions[1].field",
        "conditions[0] already checks 'service'",
        id="duplicate-condition",
    ),
    pytest.param(
        chain(
            W(
                "a",
                headers={"X-Key": "1"},
                auth={"type": "custom", "customHeaders": {"x-key": "{{ secrets.k }}"}},
            )
        ),
        "nodes[1].data.config.auth.customHeaders.x-key",
        "also set in headers",
        id="custom-header-clash",
    ),
]


@pytest.mark.parametrize(("data", "loc", "fragment"), GRAPH_CASES)
def test_graph_rules_report_the_place_and_the_problem(data: Json, loc: str, fragment: str) -> None:
    error = error_at(data, loc)
    assert fragment in error.message


def test_a_sound_graph_has_no_errors_beyond_the_broken_rule() -> None:
    # One bad edge must not cascade into unrelated reports.
    data = graph(
        [trigger_node(), W("a"), W("b")], [edge("start", "a"), edge("a", "b"), edge("b", "a")]
    )
    assert [(error.loc, error.code) for error in errors_of(data)] == [("edges[2].target", "cycle")]


def test_graph_errors_come_after_field_errors_are_fixed() -> None:
    data = graph([trigger_node(), W("a", method="GET")], [edge("start", "ghost")])
    assert [error.loc for error in errors_of(data)] == ["nodes[1].data.config.method"]
    data["nodes"][1]["data"]["config"]["method"] = "POST"
    locs = [error.loc for error in errors_of(data)]
    assert "edges[0].target" in locs
    assert "nodes[1]" in locs


def test_every_unreachable_node_and_every_broken_edge_is_reported_together() -> None:
    data = graph(
        [trigger_node(), W("a"), W("b"), W("c")],
        [edge("start", "a"), edge("a", "nowhere"), edge("b", "c")],
    )
    locs = {error.loc for error in errors_of(data)}
    assert locs == {"edges[1].target", "nodes[2]", "nodes[3]"}


# --- Template rules ------------------------------------------------------


def with_body(body: str) -> Json:
    return chain(W("call", body=body))


TEMPLATE_CASES = [
    pytest.param(
        with_body("{{ incident.title "),
        "nodes[1].data.config.body",
        "Template syntax error on line 1",
        id="syntax",
    ),
    pytest.param(
        with_body("{% if x %}"),
        "nodes[1].data.config.body",
        "Template syntax error",
        id="unclosed-block",
    ),
    pytest.param(
        with_body("{{ incident.title | shout }}"),
        "nodes[1].data.config.body",
        "Unknown filter 'shout'",
        id="unknown-filter",
    ),
    pytest.param(
        with_body("{% include 'other' %}"), "nodes[1].data.config.body", "include", id="include"
    ),
    pytest.param(
        with_body("{{ alert.title }}"),
        "nodes[1].data.config.body",
        "Unknown variable 'alert'",
        id="unknown-root",
    ),
    pytest.param(
        with_body("{{ incident.severity }}"),
        "nodes[1].data.config.body",
        "'incident' has no field 'severity'",
        id="unknown-incident-field",
    ),
    pytest.param(
        with_body("{{ incident.created_at }}"),
        "nodes[1].data.config.body",
        "no field 'created_at'",
        id="snake-case-field",
    ),
    pytest.param(
        with_body("{{ assignee.name }}"),
        "nodes[1].data.config.body",
        "'assignee' has no field 'name'",
        id="unknown-assignee-field",
    ),
    pytest.param(
        with_body("{{ team.slack }}"),
        "nodes[1].data.config.body",
        "'team' has no field 'slack'",
        id="unknown-team-field",
    ),
    pytest.param(
        with_body("{{ workflow.version }}"),
        "nodes[1].data.config.body",
        "'workflow' has no field 'version'",
        id="unknown-workflow-field",
    ),
    pytest.param(
        chain(W("call", url="https://example.com/{{ secrets }}")),
        "nodes[1].data.config.url",
        "secrets.<name>",
        id="bare-secrets",
    ),
    pytest.param(
        with_body("{{ secrets[name] }}"),
        "nodes[1].data.config.body",
        "secrets.<name>",
        id="dynamic-secret",
    ),
    pytest.param(
        with_body("{{ secrets.API_KEY }}"),
        "nodes[1].data.config.body",
        "not a valid secret name",
        id="secret-name",
    ),
    pytest.param(
        with_body("{{ steps }}"), "nodes[1].data.config.body", "steps.<nodeId>", id="bare-steps"
    ),
    pytest.param(
        with_body("{{ steps.call.result }}"),
        "nodes[1].data.config.body",
        "its own result",
        id="own-step",
    ),
    pytest.param(
        with_body("{{ steps.ghost.result }}"),
        "nodes[1].data.config.body",
        "No node has id 'ghost'",
        id="unknown-step",
    ),
    pytest.param(
        chain(delay_node("wait"), W("call", body="{{ steps.wait }}")),
        "nodes[2].data.config.body",
        "only action nodes have results",
        id="step-not-action",
    ),
    pytest.param(
        chain(W("first", body="{{ steps.later.result }}"), W("later")),
        "nodes[1].data.config.body",
        "does not run before this node",
        id="later-step",
    ),
    pytest.param(
        chain(jira_node("ticket", summary="{{ secrets.api_key }}")),
        "nodes[1].data.config.summary",
        "Secrets cannot be used here",
        id="secret-in-issue",
    ),
]


@pytest.mark.parametrize(("data", "loc", "fragment"), TEMPLATE_CASES)
def test_template_rules_report_the_field_and_the_problem(
    data: Json, loc: str, fragment: str
) -> None:
    error = error_at(data, loc)
    assert fragment in error.message


def test_hyphenated_step_ids_get_a_hint_to_use_brackets() -> None:
    data = chain(W("open-ticket"), W("notify", body="{{ steps.open-ticket.result }}"))
    error = error_at(data, "nodes[2].data.config.body")
    assert 'steps["node-id"]' in error.message
    data["nodes"][2]["data"]["config"]["body"] = '{{ steps["open-ticket"].result }}'
    round_trips(data)


def test_steps_on_a_sibling_branch_are_rejected() -> None:
    data = branching()
    data["nodes"][4]["data"]["config"]["summary"] = "{{ steps.page.result.status }}"
    error = error_at(data, "nodes[4].data.config.summary")
    assert "'page' does not run before this node" in error.message


def test_steps_that_only_run_on_one_branch_are_rejected_after_the_join() -> None:
    data = definition(
        [
            trigger_node(),
            condition_node("check"),
            W("page"),
            W("mail"),
            W("join", body="{{ steps.page.result }}"),
        ],
        [
            edge("start", "check"),
            edge("check", "page", "true"),
            edge("check", "mail", "false"),
            edge("page", "join"),
            edge("mail", "join"),
        ],
    )
    assert "does not run before this node" in error_at(data, "nodes[4].data.config.body").message


def test_names_bound_inside_a_template_are_not_variables() -> None:
    body = (
        "{% set sev = incident.priority %}{{ sev.lower() }}"
        "{% for key, value in incident.metadata.items() %}"
        "{{ loop.index }} {{ key }}={{ value }}{% endfor %}"
        "{% for n in range(3) %}{{ n }}{% endfor %}"
    )
    round_trips(with_body(body))


def test_unknown_secret_is_rejected_only_when_secret_names_are_given() -> None:
    data = chain(W("call", url="https://example.com/{{ secrets.slack_path }}"))
    round_trips(data)
    round_trips(data, secret_names={"slack_path"})
    error = error_at(data, "nodes[1].data.config.url", secret_names={"other"})
    assert "no secret named 'slack_path'" in error.message


def test_credential_secrets_are_checked_against_secret_names() -> None:
    data = chain(W("call", auth={"type": "bearer", "token": "{{ secrets.api_token }}"}))
    error = error_at(data, "nodes[1].data.config.auth.token", secret_names=[])
    assert "no secret named 'api_token'" in error.message


def test_jira_and_linear_need_their_implicit_secrets_when_secret_names_are_given() -> None:
    data = chain(jira_node("ticket"), linear_node("issue"))
    errors = errors_of(data, secret_names=["jira_base_url", "jira_email"])
    assert [(error.loc, error.code) for error in errors] == [
        ("nodes[1].data", "missing_secret"),
        ("nodes[2].data", "missing_secret"),
    ]
    assert "jira_api_token" in errors[0].message
    assert "linear_api_key" in errors[1].message
    round_trips(
        data, secret_names=["jira_base_url", "jira_email", "jira_api_token", "linear_api_key"]
    )


def test_referenced_secrets_lists_explicit_and_implicit_secrets_per_node() -> None:
    data = chain(
        W(
            "call",
            url="https://example.com/{{ secrets.path }}",
            headers={"X-Trace": "{{ secrets.trace }}"},
            auth={
                "type": "basic",
                "username": "{{ secrets.user }}",
                "password": "{{ secrets.pw }}",
            },
        ),
        jira_node("ticket"),
        W("again", body="{{ secrets.path }}"),
        linear_node("issue"),
    )
    assert referenced_secrets(parse_definition(data)) == {
        "jira_api_token": ["ticket"],
        "jira_base_url": ["ticket"],
        "jira_email": ["ticket"],
        "linear_api_key": ["issue"],
        "path": ["call", "again"],
        "pw": ["call"],
        "trace": ["call"],
        "user": ["call"],
    }


def test_template_fields_follow_the_template_context_model() -> None:
    fields = [info.alias for info in IncidentContext.model_fields.values()]
    body = " ".join(f"{{{{ incident.{name} }}}}" for name in fields)
    round_trips(with_body(body))
    assert "escalationLevel" in fields and "teamName" in fields


# --- Graph helpers -------------------------------------------------------


def test_graph_helpers_on_a_diamond() -> None:
    defn = parse_definition(
        definition(
            [
                trigger_node(),
                condition_node("check"),
                W("left"),
                W("right"),
                W("join"),
            ],
            [
                edge("start", "check"),
                edge("check", "right", "false"),
                edge("check", "left", "true"),
                edge("left", "join"),
                edge("right", "join"),
            ],
        )
    )
    order = topological_order(defn)
    assert order[0] == "start" and order[-1] == "join"
    for item in defn.edges:
        assert order.index(item.source) < order.index(item.target)
    assert ancestors(defn)["join"] == {"start", "check", "left", "right"}
    assert always_runs_before(defn)["join"] == {"start", "check"}
    assert always_runs_before(defn)["left"] == {"start", "check"}
    assert always_runs_before(defn)["start"] == frozenset()


# --- Input that is not a definition at all --------------------------------


@pytest.mark.parametrize("data", [None, [], "definition", 42, 3.5, True, b"{}"])
def test_non_objects_are_rejected_at_the_root(data: object) -> None:
    errors = errors_of(data)
    assert [(error.loc, error.message) for error in errors] == [
        ("", "The definition must be a JSON object.")
    ]


def test_deep_nesting_is_rejected_without_recursing() -> None:
    deep: Any = "leaf"
    for _ in range(50_000):
        deep = [deep]
    data = chain(W("call"))
    data["nodes"][1]["data"]["config"]["body"] = deep
    # body is the 6th level; the 17th is the first one too deep.
    error = error_at(data, "nodes[1].data.config.body" + "[0]" * 11)
    assert error.code == "too_deep"


def test_too_much_text_is_rejected_before_templates_are_parsed() -> None:
    bodies = MAX_DEFINITION_TEXT // 90_000 + 1
    data = chain(*[W(f"call{i}", body="{{ x }}" * 13_000) for i in range(bodies)])
    errors = errors_of(data)
    assert [(error.loc, error.code) for error in errors] == [("", "too_large")]
    assert f"{MAX_DEFINITION_TEXT:,}" in errors[0].message


def test_too_many_values_are_rejected_as_one_error() -> None:
    data = chain(W("call"))
    data["edges"] = [{}] * 200_000
    assert [(error.loc, error.code) for error in errors_of(data)] == [("", "too_large")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a\x00b", "NUL"), ("bad \ud800 text", "surrogate")],
    ids=["nul", "surrogate"],
)
def test_text_that_cannot_be_stored_is_rejected_where_it_is(text: str, problem: str) -> None:
    data = chain(W("call"))
    data["nodes"][1]["data"]["name"] = text
    assert problem in error_at(data, "nodes[1].data.name").message
    data = chain(W("call"))
    data["nodes"][1]["data"]["config"]["headers"] = {text: "v"}
    [error] = errors_of(data)
    # pydantic replaces unpaired surrogates in locations with U+FFFD.
    assert error.loc.startswith('nodes[1].data.config.headers["')
    assert problem in error.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[" * 5_000, "not valid JSON"),
        ("null", "must be a JSON object"),
        ("x" * 4_000_001, "too large"),
    ],
    ids=["truncated", "bad-utf8", "deep", "null", "huge"],
)
def test_bad_json_text_is_reported_at_the_root(text: str | bytes, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_definition_json(text)
    errors = definition_errors(caught.value)
    assert errors[0].loc == ""
    assert fragment in errors[0].message


def test_json_nan_is_rejected_where_it_is() -> None:
    text = json.dumps(chain(W("call"))).replace('"x": 0.0', '"x": NaN', 1)
    assert "NaN" in text
    with pytest.raises(ValidationError) as caught:
        parse_definition_json(text)
    assert [error.loc for error in definition_errors(caught.value)] == ["nodes[0].position.x"]


def test_parse_definition_json_rejects_non_text() -> None:
    with pytest.raises(ValidationError):
        parse_definition_json(None)  # type: ignore[arg-type]


# --- Error formatting ----------------------------------------------------


def test_union_tags_are_removed_from_locations() -> None:
    data = chain(W("call", auth={"type": "bearer", "token": "plain"}))
    with pytest.raises(ValidationError) as caught:
        parse_definition(data)
    raw = caught.value.errors()[0]["loc"]
    assert raw == ("nodes", 1, "action", "data", "webhook", "config", "auth", "bearer", "token")
    assert [error.loc for error in definition_errors(caught.value)] == [
        "nodes[1].data.config.auth.token"
    ]


def test_format_loc() -> None:
    assert format_loc(()) == ""
    assert format_loc(("nodes", 2, "data", "config", "url")) == "nodes[2].data.config.url"
    assert format_loc(("headers", "X.Y", "[key]")) == 'headers["X.Y"]'
    assert format_loc(("headers", "X-Request-Id")) == "headers.X-Request-Id"


def test_the_same_error_is_reported_once() -> None:
    errors = errors_of(with_body("{{ alert.a }} {{ alert.b }}"))
    assert len(errors) == 1


def test_extra_field_message_names_the_field() -> None:
    data = chain(W("call"))
    data["edges"][0]["targetHandle"] = "in"
    error = error_at(data, "edges[0].targetHandle")
    assert error.message == "Unknown field 'targetHandle'; remove it."
    assert error.code == "extra_forbidden"


def test_missing_field_message() -> None:
    data = chain(W("call"))
    del data["nodes"][1]["data"]["retry"]
    assert error_at(data, "nodes[1].data.retry").message == "This field is required."


# --- JSON Schema ---------------------------------------------------------


def test_json_schema_is_draft_2020_12_and_describes_the_graph_rules() -> None:
    schema = definition_json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "IncidentFlow workflow definition"
    assert "$id" not in schema
    for rule in ("exactly one node has type 'trigger'", "no cycles", "reachable", "sourceHandle"):
        assert rule in schema["description"]
    assert schema["properties"]["nodes"]["maxItems"] == 200
    assert schema["properties"]["edges"]["maxItems"] == 500
    delay = schema["$defs"]["DelayData"]["properties"]["durationMinutes"]
    assert (delay["minimum"], delay["maximum"]) == (0, 10_080)
    assert "10080" in delay["description"]


def test_json_schema_accepts_valid_definitions_and_rejects_field_errors() -> None:
    validator = Draft202012Validator(definition_json_schema())
    for data in (
        branching(),
        chain(linear_node("l"), W("w", auth={"type": "bearer", "token": "{{ secrets.t }}"})),
    ):
        validator.validate(data)
    bad = chain(delay_node("wait", 10_081))
    assert not validator.is_valid(bad)
    bad = chain(W("w", auth={"type": "bearer", "token": "literal"}))
    assert not validator.is_valid(bad)


def test_json_schema_is_a_fresh_copy() -> None:
    definition_json_schema()["title"] = "changed"
    assert definition_json_schema()["title"] == "IncidentFlow workflow definition"


def test_model_validate_applies_the_graph_rules_too() -> None:
    with pytest.raises(ValidationError):
        WorkflowDefinition.model_validate(graph([W("a")], []))
    with pytest.raises(ValidationError):
        WorkflowDefinition.model_validate(
            chain(W("a", body="{{ secrets.x }}")), context={"secret_names": []}
        )


# --- The template sandbox -------------------------------------------------


def test_template_environment_is_one_strict_sandbox_without_autoescape() -> None:
    env = template_environment()
    assert env is template_environment()
    assert isinstance(env, jinja2.sandbox.SandboxedEnvironment)
    assert env.undefined is jinja2.StrictUndefined
    assert env.from_string("{{ x }}").render(x="<b>&") == "<b>&"
    assert env.from_string("{{ x | tojson }}").render(x={"a": 1}) == '{"a": 1}'
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string("{{ x.__class__.__mro__ }}").render(x="")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ incident.title }}", [("incident", "title")]),
        ('{{ steps["n2"].result.key }}', [("steps", "n2", "result", "key")]),
        ("{{ steps[name].x }}", [("steps",), ("name",)]),
        ("{{ incident.title | upper }} {{ team.name }}", [("incident", "title"), ("team", "name")]),
        ("{% set t = team %}{{ t.name }}", [("team",)]),
        (
            "{% for tag in incident.metadata.tags %}{{ tag }}{{ loop.index }}{% endfor %}{{ tag }}",
            [("incident", "metadata", "tags"), ("tag",)],
        ),
        (
            "{% macro m(a) %}{{ a.b }}{{ c }}{% endmacro %}{{ m(incident) }}",
            [("c",), ("incident",)],
        ),
        ("{% with w = workflow %}{{ w.id }}{% endwith %}", [("workflow",)]),
        ("{{ range(3) | list }} {{ dict(a=1) }}", []),
        ("plain text", []),
    ],
)
def test_template_references(source: str, expected: list[tuple[str, ...]]) -> None:
    assert template_references(source) == expected


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ a", "Template syntax error on line 1"),
        ("line\n{% for %}", "on line 2"),
        ("{{ a | nope }}", "Unknown filter 'nope'"),
        ("{% if a is nope %}{% endif %}", "Unknown test 'nope'"),
        ("{% extends 'base' %}", "extends"),
        ("{% import 'm' as m %}", "import"),
        ("{{ " + "(" * 400 + "1" + ")" * 400 + " }}", "nested too deeply"),
        ("{{ 1" + "0" * 5_000 + " }}", "cannot be read"),
        ("{{ x" + " | upper" * 100 + " }}", "more than 64 levels"),
    ],
    ids=["eof", "line", "filter", "test", "extends", "import", "parens", "bigint", "filters"],
)
def test_parse_template_problems_are_readable(source: str, fragment: str) -> None:
    with pytest.raises(TemplateSyntaxProblem) as caught:
        parse_template(source)
    assert fragment in caught.value.message
    assert isinstance(caught.value, ValueError)


def test_parse_template_returns_the_tree() -> None:
    tree = parse_template("Hi {{ incident.title }}")
    assert isinstance(tree, jinja2.nodes.Template)


def test_builders_produce_valid_definitions() -> None:
    # Guards the builders the other tests mutate: each must start out valid.
    for data in (
        chain(W("a")),
        jira_chain(),
        linear_chain(),
        condition_chain(),
        delay_chain(),
        branching(),
        chain(jira_node("j", **jira_config(labels=["x"]))),
    ):
        assert parse_definition(copy.deepcopy(data)).to_json() == data
