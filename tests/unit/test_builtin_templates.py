"""The built-in templates: real, schema-valid, renderable, with their blanks marked."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from app.engine.templating import template_environment
from app.workflows.enums import TemplateCategory
from app.workflows.schema import parse_definition, referenced_secrets
from app.workflows.templates_builtin import (
    BUILTIN_TEMPLATES,
    PLACEHOLDER_LINEAR_ID,
    PLACEHOLDER_PROJECT_KEY,
    BuiltinTemplate,
    unfilled_placeholders,
)

BY_KEY = {t.key: t for t in BUILTIN_TEMPLATES}


class _Secrets(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return f"secret-{key}"


def sample_context() -> dict[str, Any]:
    """What the engine gives templates, with awkward text to catch broken JSON."""
    return {
        "incident": {
            "id": "cinc123",
            "title": 'Disk "full" on db-1\\',
            "description": "line one\nline two\t{tabs}",
            "priority": "P1",
            "status": "TRIGGERED",
            "service": "payments-api",
            "createdAt": "2025-01-01T10:00:00Z",
            "acknowledgedAt": None,
            "resolvedAt": None,
            "escalationLevel": 2,
            "teamName": "Payments",
            "metadata": {},
        },
        "assignee": None,
        "team": {"id": "cteam", "name": "Payments", "slackChannel": "#payments"},
        "workflow": {"id": "cwf", "name": "Test", "executionId": "cexec"},
        "steps": {"create_jira": {"result": {"key": "OPS-42", "id": "10001"}}},
        "secrets": _Secrets(),
        # A failure workflow's failed run (workflow_failed triggers).
        "failure": {
            "runId": "crun1",
            "workflowId": "cwf2",
            "workflowName": 'Page "on-call"',
            "nodeId": "page",
            "nodeName": None,
            "error": 'Page: the webhook answered 500: {"error": "down"}\n',
            "failuresInADay": 3,
            "failedAt": "2025-01-01T10:00:00Z",
        },
    }


def webhook_nodes(template: BuiltinTemplate) -> list[dict[str, Any]]:
    return [
        node
        for node in template.definition["nodes"]
        if node["type"] == "action" and node["data"]["actionType"] == "webhook"
    ]


@pytest.mark.parametrize("template", BUILTIN_TEMPLATES, ids=lambda t: t.key)
def test_every_builtin_template_is_a_valid_definition(template: BuiltinTemplate) -> None:
    defn = parse_definition(template.definition)
    assert defn.settings.enabled is False
    assert len(defn.description) > 40, "a template needs a real description"


def test_at_least_three_templates_per_category_with_unique_keys_and_names() -> None:
    per_category = Counter(t.category for t in BUILTIN_TEMPLATES)
    assert {c: per_category[c] >= 3 for c in TemplateCategory} == dict.fromkeys(
        TemplateCategory, True
    )
    assert len({t.key for t in BUILTIN_TEMPLATES}) == len(BUILTIN_TEMPLATES)
    assert len({t.name for t in BUILTIN_TEMPLATES}) == len(BUILTIN_TEMPLATES)
    assert all(len(t.key) <= 64 for t in BUILTIN_TEMPLATES)


@pytest.mark.parametrize(
    "template",
    [t for t in BUILTIN_TEMPLATES if webhook_nodes(t)],
    ids=lambda t: t.key,
)
def test_webhook_bodies_render_to_json(template: BuiltinTemplate) -> None:
    env = template_environment()
    for node in webhook_nodes(template):
        body = env.from_string(node["data"]["config"]["body"]).render(**sample_context())
        assert isinstance(json.loads(body), dict), node["id"]


def test_the_examples_the_issue_names_are_there() -> None:
    jira = BY_KEY["jira-p1"].definition
    assert jira["trigger"] == {
        "type": "incident_created",
        "conditions": [{"field": "priority", "value": "P1"}],
    }
    assert jira["nodes"][1]["data"]["actionType"] == "jira"

    linear = BY_KEY["linear-escalation"].definition
    assert linear["trigger"]["type"] == "escalation"
    assert linear["trigger"]["conditions"][0]["field"] == "service"

    slack = BY_KEY["slack-with-jira-key"].definition
    body = slack["nodes"][2]["data"]["config"]["body"]
    assert "steps.create_jira.result.key" in body
    assert slack["nodes"][2]["data"]["config"]["url"].startswith("https://hooks.slack.com/")
    env = template_environment()
    assert "OPS-42" in json.loads(env.from_string(body).render(**sample_context()))["text"]

    remediate = BY_KEY["remediate-then-escalate"].definition
    kinds = [node["type"] for node in remediate["nodes"]]
    assert kinds == ["trigger", "action", "delay", "condition", "action"]
    assert remediate["nodes"][2]["data"]["durationMinutes"] == 10
    assert remediate["nodes"][3]["data"] == {
        "field": "status",
        "operator": "=",
        "value": "TRIGGERED",
        "name": "Still unacknowledged?",
    }
    assert {"source": "still_triggered", "target": "escalate", "sourceHandle": "true"}.items() <= (
        remediate["edges"][3].items()
    )


def test_credentials_are_secrets_never_literals() -> None:
    for template in BUILTIN_TEMPLATES:
        used = referenced_secrets(parse_definition(template.definition))
        for node in webhook_nodes(template):
            auth = node["data"]["config"]["auth"]
            if auth["type"] == "bearer":
                assert auth["token"].startswith("{{ secrets.")
        # Jira and Linear templates need their implicit secrets, webhooks name theirs.
        assert used, template.key


def test_placeholders_mark_what_the_user_must_fill() -> None:
    found = {t.key: unfilled_placeholders(t.definition) for t in BUILTIN_TEMPLATES}
    assert [p.loc for p in found["jira-p1"]] == ["nodes[1].data.config.projectKey"]
    assert {p.loc for p in found["linear-escalation"]} == {
        "nodes[1].data.config.teamId",
        "trigger.conditions[0].value",
    }
    remediate = {p.loc: p.hint for p in found["remediate-then-escalate"]}
    assert remediate["nodes[1].data.config.url"] == "your remediation endpoint"
    # Templates whose only blanks are secrets have no placeholders.
    assert found["pagerduty-p1-p2"] == []


def test_a_filled_in_definition_has_no_placeholders_left() -> None:
    definition = copy.deepcopy(BY_KEY["linear-escalation"].definition)
    assert unfilled_placeholders(definition)
    definition["nodes"][1]["data"]["config"]["teamId"] = "5f2b7c1e-8a4d-4f6b-9c3e-1d2a3b4c5d6e"
    definition["trigger"]["conditions"][0]["value"] = "payments-api"
    assert unfilled_placeholders(definition) == []
    parse_definition(definition)


def test_placeholder_values_only_count_in_their_own_fields() -> None:
    definition = copy.deepcopy(BY_KEY["jira-p1"].definition)
    definition["nodes"][1]["data"]["config"]["projectKey"] = "OPS"
    definition["nodes"][1]["data"]["config"]["summary"] = (
        f"{PLACEHOLDER_PROJECT_KEY} {PLACEHOLDER_LINEAR_ID}"
    )
    assert unfilled_placeholders(definition) == []
