"""Dry runs evaluate conditions, render templates and build requests, and send nothing."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.definition.builders import (
    action_node,
    condition_node,
    definition,
    delay_node,
    edge,
    jira_config,
    trigger_config,
    trigger_node,
)
from app.extensions import db
from app.workflows.models import ExecutionAttempt, WorkflowExecution
from tests.builders import webhook

TOKEN = "dry-run-token-Xy7"


def dry_definition(url: str) -> dict:
    return definition(
        [
            trigger_node(),
            condition_node("is_p1", "priority", "P1"),
            action_node("jira", "jira", jira_config()),
            delay_node("wait", 10),
            webhook(
                "chat",
                url,
                body='{"key": {{ steps.jira.result.key | tojson }}, '
                '"title": {{ incident.title | tojson }}}',
                auth={"type": "bearer", "token": "{{ secrets.chat_token }}"},
            ),
            webhook("quiet", url + "/quiet"),
        ],
        [
            edge("start", "is_p1"),
            edge("is_p1", "jira", "true"),
            edge("is_p1", "quiet", "false"),
            edge("jira", "wait"),
            edge("wait", "chat"),
        ],
        trigger_config("manual"),
    )


def test_a_dry_run_shows_what_would_happen_and_sends_nothing(
    app,
    client,
    sign_in,
    responder,
    webhook_receiver,
    fake_jira,
    make_enabled_workflow,
    open_incident,
) -> None:
    workflow = make_enabled_workflow(
        dry_definition(webhook_receiver.url + "/chat"),
        secrets={**fake_jira.secrets(), "chat_token": TOKEN},
    )
    incident = open_incident(title="Payments down", priority="P1")
    sign_in(responder.email)
    page = client.get(f"/runs/dry-run?workflow={workflow.id}&incident={incident.id}")
    assert page.status_code == 200
    text = page.text
    steps = dict(re.findall(r'data-node="([^"]+)">.*?badge node-[a-z-]+">([^<]+)<', text, re.S))
    assert steps == {
        "start": "would run",
        "is_p1": "would run",
        "jira": "would run",
        "wait": "would wait",
        "chat": "would run",
        "quiet": "skipped",
    }
    assert "takes the <strong>true</strong> branch" in text
    assert "Would wait 10 minutes" in text
    assert "steps.jira.result.key" in text and "Payments down" in text
    assert "/rest/api/3/issue" in text
    assert TOKEN not in text and "[redacted]" in text
    # Nothing sent, nothing stored.
    assert webhook_receiver.requests == [] and fake_jira.requests == []
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowExecution)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ExecutionAttempt)) == 0


def test_a_dry_run_reports_a_template_that_fails(
    app, client, sign_in, responder, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [
                trigger_node(),
                # JSON for most titles (so it can be enabled), not for this incident's.
                webhook("hook", webhook_receiver.url, body='{"x": "{{ incident.title }}"}'),
            ],
            [edge("start", "hook")],
            trigger_config("manual"),
        )
    )
    incident = open_incident(title='Say "hi"')
    sign_in(responder.email)
    text = client.get(f"/runs/dry-run?workflow={workflow.id}&incident={incident.id}").text
    assert "did not render to valid JSON" in text
    assert webhook_receiver.requests == []


def test_a_dry_run_of_another_teams_incident_is_not_found(
    app,
    client,
    sign_in,
    make_user,
    make_team,
    make_enabled_workflow,
    open_incident,
    webhook_receiver,
) -> None:
    secrets = {
        "jira_base_url": "https://x.example",
        "jira_email": "a@example.com",
        "jira_api_token": "t",
        "chat_token": "t",
    }
    workflow = make_enabled_workflow(dry_definition(webhook_receiver.url), secrets=secrets)
    incident = open_incident()
    outsider = make_user("outsider@example.com", teams=[make_team("Elsewhere")])
    sign_in(outsider.email)
    assert (
        client.get(f"/runs/dry-run?workflow={workflow.id}&incident={incident.id}").status_code
        == 404
    )
