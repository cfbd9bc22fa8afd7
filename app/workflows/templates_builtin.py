"""The built-in workflow templates, as data, and their idempotent installer.

Every template is a real, schema-valid definition. What a user must supply is
marked so the editor can highlight it and enabling can refuse until it is done:

* ``<<fill: what to enter>>`` inside free text (URLs after the host, condition
  values);
* the Jira project key ``CHANGE_ME`` (the key's pattern allows no markers);
* the Linear team id ``00000000-0000-0000-0000-000000000000`` (it must be a UUID).

Credentials are never placeholders: they are workflow secrets
(``{{ secrets.<name> }}``, and the ones Jira and Linear actions read
implicitly), which ``set_enabled`` already requires before a workflow runs.

``install_builtin_templates()`` creates the templates that are missing, keyed by
``Workflow.template_key``; a retired one is never brought back.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.auth.models import User
from app.extensions import db
from app.workflows.enums import ScopeType, TemplateCategory
from app.workflows.models import Workflow, WorkflowVersion
from app.workflows.schema import format_loc, parse_definition

Json = dict[str, Any]

SYSTEM_USER_EMAIL = "system@incidentflow.invalid"

FILL_MARKER = "<<fill:"
PLACEHOLDER_PROJECT_KEY = "CHANGE_ME"
PLACEHOLDER_LINEAR_ID = "00000000-0000-0000-0000-000000000000"
_FILL_RE = re.compile(r"<<fill:\s*(.*?)\s*>>", re.DOTALL)

RETRY: Json = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 2000}
JSON_HEADERS: Json = {"Content-Type": "application/json"}
SLACK_URL = "https://hooks.slack.com/services/{{ secrets.slack_webhook_path }}"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
JIRA_CLOSE_NAME = "Close the Jira issue when the incident resolves"
LINEAR_DONE_NAME = "Move the Linear issue to Done on resolve"


# --- builders -------------------------------------------------------------


def _trigger(name: str, y: int = 0) -> Json:
    return {
        "id": "trigger",
        "type": "trigger",
        "position": {"x": 0, "y": y},
        "data": {"name": name},
    }


def _action(node_id: str, x: int, y: int, action_type: str, name: str, config: Json) -> Json:
    return {
        "id": node_id,
        "type": "action",
        "position": {"x": x, "y": y},
        "data": {
            "actionType": action_type,
            "name": name,
            "config": config,
            "retry": copy.deepcopy(RETRY),
        },
    }


def _webhook(
    node_id: str,
    x: int,
    y: int,
    name: str,
    url: str,
    body: str,
    auth: Json | None = None,
) -> Json:
    config = {
        "url": url,
        "method": "POST",
        "headers": dict(JSON_HEADERS),
        "body": body,
        "auth": auth or {"type": "none"},
    }
    return _action(node_id, x, y, "webhook", name, config)


def _condition(node_id: str, x: int, y: int, name: str, field: str, value: str) -> Json:
    return {
        "id": node_id,
        "type": "condition",
        "position": {"x": x, "y": y},
        "data": {"field": field, "operator": "=", "value": value, "name": name},
    }


def _delay(node_id: str, x: int, y: int, minutes: int) -> Json:
    return {
        "id": node_id,
        "type": "delay",
        "position": {"x": x, "y": y},
        "data": {"durationMinutes": minutes, "name": f"Wait {minutes} minutes"},
    }


def _edge(source: str, target: str, handle: str | None = None) -> Json:
    edge: Json = {"id": f"{source}-{target}", "source": source, "target": target}
    if handle:
        edge["id"] = f"{source}-{handle}-{target}"
        edge["sourceHandle"] = handle
    return edge


def _definition(
    name: str, description: str, trigger: Json, nodes: list[Json], edges: list[Json]
) -> Json:
    return {
        "id": "template",
        "name": name,
        "description": description,
        "version": 1,
        "nodes": nodes,
        "edges": edges,
        "trigger": {"conditions": [], **trigger},
        "settings": {"timeout": "5min", "enabled": False},
    }


def _p1_or_p2(target: str) -> tuple[list[Json], list[Json]]:
    """Trigger conditions must all match, so "P1 or P2" is two condition nodes."""
    nodes = [
        _condition("is_p1", 0, 140, "Is it P1?", "priority", "P1"),
        _condition("is_p2", 220, 280, "Is it P2?", "priority", "P2"),
    ]
    edges = [
        _edge("trigger", "is_p1"),
        _edge("is_p1", target, "true"),
        _edge("is_p1", "is_p2", "false"),
        _edge("is_p2", target, "true"),
    ]
    return nodes, edges


# --- the templates --------------------------------------------------------


@dataclass(frozen=True)
class BuiltinTemplate:
    key: str
    category: TemplateCategory
    definition: Json

    @property
    def name(self) -> str:
        return str(self.definition["name"])


def _ticketing() -> list[BuiltinTemplate]:
    jira_p1 = _definition(
        "Jira issue for P1 incidents",
        "Opens a Jira Cloud issue as soon as a P1 incident is created, with the incident's "
        "title, service and team. Replace the project key CHANGE_ME with your Jira project's "
        "key, and add the secrets jira_base_url, jira_email and jira_api_token.",
        {"type": "incident_created", "conditions": [{"field": "priority", "value": "P1"}]},
        [
            _trigger("P1 incident created"),
            _action(
                "create_jira",
                0,
                140,
                "jira",
                "Open a Jira issue",
                {
                    "projectKey": PLACEHOLDER_PROJECT_KEY,
                    "issueType": "Bug",
                    "summary": "[P1] {{ incident.title }}",
                    "description": (
                        "P1 incident on {{ incident.service or 'no service' }} for team "
                        "{{ incident.teamName }} (IncidentFlow id {{ incident.id }}).\n\n"
                        "{{ incident.description }}"
                    ),
                    "priority": "Highest",
                    "labels": ["incident", "p1"],
                },
            ),
        ],
        [_edge("trigger", "create_jira")],
    )
    linear_escalation = _definition(
        "Linear issue when a service's incident escalates",
        "Opens an urgent Linear issue when an incident of one service is escalated. Enter the "
        "service name in the trigger condition, replace the team id "
        "00000000-0000-0000-0000-000000000000 with your Linear team's id, and add the secret "
        "linear_api_key.",
        {
            "type": "escalation",
            "conditions": [
                {"field": "service", "value": "<<fill: the service to watch, e.g. payments-api>>"}
            ],
        },
        [
            _trigger("Incident escalated"),
            _action(
                "create_linear",
                0,
                140,
                "linear",
                "Open a Linear issue",
                {
                    "teamId": PLACEHOLDER_LINEAR_ID,
                    "title": "Escalated: {{ incident.title }}",
                    "description": (
                        "{{ incident.service }} incident escalated to level "
                        "{{ incident.escalationLevel }} ({{ incident.priority }}, "
                        "{{ incident.status }}).\n\n{{ incident.description }}"
                    ),
                    "priority": 1,
                },
            ),
        ],
        [_edge("trigger", "create_linear")],
    )
    jira_unacknowledged = _definition(
        "Jira issue for incidents unacknowledged after 30 minutes",
        "Opens a Jira issue for any incident still unacknowledged 30 minutes after it was "
        "created, so nothing is forgotten overnight. Replace the project key CHANGE_ME, and "
        "add the secrets jira_base_url, jira_email and jira_api_token.",
        {
            "type": "age",
            "ageThresholdMinutes": 30,
            "conditions": [{"field": "status", "value": "TRIGGERED"}],
        },
        [
            _trigger("Unacknowledged for 30 minutes"),
            _action(
                "create_jira",
                0,
                140,
                "jira",
                "Open a Jira issue",
                {
                    "projectKey": PLACEHOLDER_PROJECT_KEY,
                    "issueType": "Task",
                    "summary": "Unacknowledged for 30 min: [{{ incident.priority }}] "
                    "{{ incident.title }}",
                    "description": (
                        "Nobody acknowledged this incident within 30 minutes of "
                        "{{ incident.createdAt }}.\nTeam: {{ incident.teamName }}\n"
                        "Service: {{ incident.service or 'none' }}\n\n{{ incident.description }}"
                    ),
                    "labels": ["incident", "unacknowledged"],
                },
            ),
        ],
        [_edge("trigger", "create_jira")],
    )
    linear_review = _definition(
        "Linear post-incident review for resolved P1s",
        "When a P1 incident is resolved, opens a Linear issue to hold the post-incident "
        "review. Replace the team id 00000000-0000-0000-0000-000000000000 with your Linear "
        "team's id and add the secret linear_api_key.",
        {
            "type": "state_changed",
            "stateTransition": {"to": "RESOLVED"},
            "conditions": [{"field": "priority", "value": "P1"}],
        },
        [
            _trigger("P1 resolved"),
            _action(
                "create_review",
                0,
                140,
                "linear",
                "Open a review issue",
                {
                    "teamId": PLACEHOLDER_LINEAR_ID,
                    "title": "Post-incident review: {{ incident.title }}",
                    "description": (
                        "Opened {{ incident.createdAt }}, acknowledged "
                        "{{ incident.acknowledgedAt or 'never' }}, resolved "
                        "{{ incident.resolvedAt }}.\nTeam: {{ incident.teamName }}; service: "
                        "{{ incident.service or 'none' }}.\n\nWrite the timeline, the cause "
                        "and the follow-up actions here."
                    ),
                    "priority": 2,
                },
            ),
        ],
        [_edge("trigger", "create_review")],
    )
    opened_jira = "incident.previous[" + repr(str(jira_p1["name"])) + "].create_jira.result.key"
    jira_close = _definition(
        JIRA_CLOSE_NAME,
        "When an incident is resolved, moves the Jira issue that the workflow "
        f"'{jira_p1['name']}' opened for it to Done and comments with the resolution. "
        "It reads that workflow's result through incident.previous, by its name: if "
        "yours has another name, or the step another id, change the issue key fields. "
        "Change the transition if your Jira workflow names it otherwise, and add the "
        "secrets jira_base_url, jira_email and jira_api_token.",
        {"type": "state_changed", "stateTransition": {"to": "RESOLVED"}},
        [
            _trigger("Incident resolved"),
            _action(
                "close_jira",
                0,
                140,
                "jira",
                "Move the Jira issue to Done",
                {
                    "operation": "transition",
                    "issueKey": "{{ " + opened_jira + " }}",
                    "transition": "Done",
                },
            ),
            _action(
                "comment_jira",
                0,
                280,
                "jira",
                "Comment with the resolution",
                {
                    "operation": "comment",
                    "issueKey": "{{ " + opened_jira + " }}",
                    "body": (
                        "Resolved in IncidentFlow at {{ incident.resolvedAt }}: "
                        "{{ incident.title }} ({{ incident.priority }}, team "
                        "{{ incident.teamName }}, service {{ incident.service or 'none' }}).\n\n"
                        "Acknowledged: {{ incident.acknowledgedAt or 'never' }}. "
                        "Escalation level reached: {{ incident.escalationLevel }}."
                    ),
                },
            ),
        ],
        [_edge("trigger", "close_jira"), _edge("close_jira", "comment_jira")],
    )
    opened_linear = (
        "incident.previous[" + repr(str(linear_escalation["name"])) + "].create_linear.result.id"
    )
    linear_done = _definition(
        LINEAR_DONE_NAME,
        "When an incident is resolved, moves the Linear issue that the workflow "
        f"'{linear_escalation['name']}' opened for it to the state Done. It reads that "
        "workflow's result through incident.previous, by its name: if yours has another "
        "name, or the step another id, change the issue id field. Add the secret "
        "linear_api_key.",
        {"type": "state_changed", "stateTransition": {"to": "RESOLVED"}},
        [
            _trigger("Incident resolved"),
            _action(
                "done_linear",
                0,
                140,
                "linear",
                "Move the Linear issue to Done",
                {"operation": "update", "issueId": "{{ " + opened_linear + " }}", "state": "Done"},
            ),
        ],
        [_edge("trigger", "done_linear")],
    )
    return [
        BuiltinTemplate("jira-p1", TemplateCategory.TICKETING, jira_p1),
        BuiltinTemplate("linear-escalation", TemplateCategory.TICKETING, linear_escalation),
        BuiltinTemplate("jira-unacknowledged", TemplateCategory.TICKETING, jira_unacknowledged),
        BuiltinTemplate("linear-review", TemplateCategory.TICKETING, linear_review),
        BuiltinTemplate("jira-close-on-resolve", TemplateCategory.TICKETING, jira_close),
        BuiltinTemplate("linear-done-on-resolve", TemplateCategory.TICKETING, linear_done),
    ]


def _communication() -> list[BuiltinTemplate]:
    slack_with_jira = _definition(
        "Slack message with the Jira key on new incidents",
        "Opens a Jira issue for every new incident, then posts to a Slack channel (any "
        "Slack-compatible incoming webhook) with the issue key from the Jira step. Replace "
        "the project key CHANGE_ME; add the secrets jira_base_url, jira_email, jira_api_token "
        "and slack_webhook_path (the part of your incoming webhook URL after /services/). Add "
        "a trigger condition to limit it, for example priority = P1.",
        {"type": "incident_created"},
        [
            _trigger("Incident created"),
            _action(
                "create_jira",
                0,
                140,
                "jira",
                "Open a Jira issue",
                {
                    "projectKey": PLACEHOLDER_PROJECT_KEY,
                    "issueType": "Task",
                    "summary": "[{{ incident.priority }}] {{ incident.title }}",
                    "description": "{{ incident.description }}",
                    "labels": ["incident"],
                },
            ),
            _webhook(
                "notify_slack",
                0,
                280,
                "Post to Slack",
                SLACK_URL,
                '{"text": {{ (":rotating_light: [" ~ incident.priority ~ "] " ~ incident.title'
                ' ~ " (" ~ incident.teamName ~ ") - Jira " ~ steps.create_jira.result.key)'
                " | tojson }}}",
            ),
        ],
        [_edge("trigger", "create_jira"), _edge("create_jira", "notify_slack")],
    )
    teams_nodes, teams_edges = _p1_or_p2("post_teams")
    teams = _definition(
        "Microsoft Teams message for P1 and P2 incidents",
        "Posts an Adaptive Card to a Teams channel when a P1 or P2 incident is created. In "
        "Teams, add the workflow 'Post to a channel when a webhook request is received', then "
        "copy its URL here: replace the host and the marked path, and save the value of its "
        "sig= parameter as the secret teams_webhook_sig.",
        {"type": "incident_created"},
        [
            _trigger("Incident created"),
            *teams_nodes,
            _webhook(
                "post_teams",
                0,
                420,
                "Post to Teams",
                "https://prod-00.westeurope.logic.azure.com:443/workflows/"
                "<<fill: your Teams workflow id>>/triggers/manual/paths/invoke"
                "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
                "&sig={{ secrets.teams_webhook_sig }}",
                '{"type": "message", "attachments": [{"contentType": '
                '"application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", '
                '"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", '
                '"version": "1.4", "body": ['
                '{"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true, '
                '"text": {{ ("[" ~ incident.priority ~ "] " ~ incident.title) | tojson }}}, '
                '{"type": "TextBlock", "wrap": true, "text": {{ incident.description | tojson }}}, '
                '{"type": "FactSet", "facts": ['
                '{"title": "Service", "value": {{ (incident.service or "none") | tojson }}}, '
                '{"title": "Team", "value": {{ incident.teamName | tojson }}}, '
                '{"title": "Status", "value": {{ incident.status | tojson }}}]}]}}]}',
            ),
        ],
        teams_edges,
    )
    pd_nodes, pd_edges = _p1_or_p2("page")
    pagerduty = _definition(
        "PagerDuty page for P1 and P2 incidents",
        "Triggers a PagerDuty alert through the Events API v2 when a P1 (critical) or P2 "
        "(error) incident is created. Add the secret pagerduty_routing_key (the integration "
        "key of your PagerDuty service). The dedup key lets the 'Resolve the PagerDuty alert' "
        "template close it again.",
        {"type": "incident_created"},
        [
            _trigger("Incident created"),
            *pd_nodes,
            _webhook(
                "page",
                0,
                420,
                "Page through PagerDuty",
                PAGERDUTY_URL,
                '{"routing_key": "{{ secrets.pagerduty_routing_key }}", '
                '"event_action": "trigger", "dedup_key": "incidentflow-{{ incident.id }}", '
                '"payload": {"summary": {{ ("[" ~ incident.priority ~ "] " ~ incident.title) '
                "| tojson }}, "
                '"source": {{ (incident.service or incident.teamName) | tojson }}, '
                "\"severity\": \"{{ 'critical' if incident.priority == 'P1' else 'error' }}\", "
                '"custom_details": {"team": {{ incident.teamName | tojson }}, '
                '"description": {{ incident.description | tojson }}}}}',
            ),
        ],
        pd_edges,
    )
    opsgenie = _definition(
        "Opsgenie alert when an incident escalates",
        "Creates an Opsgenie alert with the incident's priority when an incident is "
        "escalated. Save 'GenieKey <your API key>' as the secret opsgenie_auth; EU accounts "
        "use api.eu.opsgenie.com instead of api.opsgenie.com.",
        {"type": "escalation"},
        [
            _trigger("Incident escalated"),
            _webhook(
                "alert",
                0,
                140,
                "Create an Opsgenie alert",
                "https://api.opsgenie.com/v2/alerts",
                '{"message": {{ incident.title | truncate(130, true, "...") | tojson }}, '
                '"alias": "incidentflow-{{ incident.id }}", '
                '"description": {{ incident.description | tojson }}, '
                '"priority": "{{ incident.priority }}", "source": "IncidentFlow", '
                '"tags": ["incidentflow", "escalation-{{ incident.escalationLevel }}"], '
                '"details": {"team": {{ incident.teamName | tojson }}, '
                '"service": {{ (incident.service or "none") | tojson }}}}',
                auth={
                    "type": "custom",
                    "customHeaders": {"Authorization": "{{ secrets.opsgenie_auth }}"},
                },
            ),
        ],
        [_edge("trigger", "alert")],
    )
    slack_resolved = _definition(
        "Slack message when an incident is resolved",
        "Tells a Slack channel (any Slack-compatible incoming webhook) when an incident is "
        "resolved, with how it ran. Add the secret slack_webhook_path (the part of your "
        "incoming webhook URL after /services/).",
        {"type": "state_changed", "stateTransition": {"to": "RESOLVED"}},
        [
            _trigger("Incident resolved"),
            _webhook(
                "notify_slack",
                0,
                140,
                "Post to Slack",
                SLACK_URL,
                '{"text": {{ (":white_check_mark: Resolved [" ~ incident.priority ~ "] " ~ '
                'incident.title ~ " (" ~ incident.teamName ~ "), opened " ~ incident.createdAt)'
                " | tojson }}}",
            ),
        ],
        [_edge("trigger", "notify_slack")],
    )
    return [
        BuiltinTemplate("slack-with-jira-key", TemplateCategory.COMMUNICATION, slack_with_jira),
        BuiltinTemplate("teams-p1-p2", TemplateCategory.COMMUNICATION, teams),
        BuiltinTemplate("pagerduty-p1-p2", TemplateCategory.COMMUNICATION, pagerduty),
        BuiltinTemplate("opsgenie-escalation", TemplateCategory.COMMUNICATION, opsgenie),
        BuiltinTemplate("slack-resolved", TemplateCategory.COMMUNICATION, slack_resolved),
    ]


def _auto_resolution() -> list[BuiltinTemplate]:
    remediate = _definition(
        "Remediate, wait 10 minutes, escalate if still unacknowledged",
        "Calls your remediation endpoint (for example a runbook runner) when an incident of "
        "one service is created, waits 10 minutes, and if the incident is still TRIGGERED "
        "calls your escalation webhook. Enter the service and both endpoint URLs, and add the "
        "secrets remediation_token and escalation_token.",
        {
            "type": "incident_created",
            "conditions": [
                {"field": "service", "value": "<<fill: the service to remediate, e.g. k8s-prod>>"}
            ],
        },
        [
            _trigger("Incident created"),
            _webhook(
                "remediate",
                0,
                140,
                "Run the remediation",
                "https://hooks.example.com/<<fill: your remediation endpoint>>",
                '{"incidentId": "{{ incident.id }}", "service": {{ incident.service | tojson }},'
                ' "priority": "{{ incident.priority }}", "title": {{ incident.title | tojson }}}',
                auth={"type": "bearer", "token": "{{ secrets.remediation_token }}"},
            ),
            _delay("wait", 0, 280, 10),
            _condition("still_triggered", 0, 420, "Still unacknowledged?", "status", "TRIGGERED"),
            _webhook(
                "escalate",
                0,
                560,
                "Escalate",
                "https://hooks.example.com/<<fill: your escalation webhook>>",
                '{"incidentId": "{{ incident.id }}", "title": {{ incident.title | tojson }}, '
                '"team": {{ incident.teamName | tojson }}, "reason": "Automatic remediation '
                'ran 10 minutes ago and the incident is still unacknowledged."}',
                auth={"type": "bearer", "token": "{{ secrets.escalation_token }}"},
            ),
        ],
        [
            _edge("trigger", "remediate"),
            _edge("remediate", "wait"),
            _edge("wait", "still_triggered"),
            _edge("still_triggered", "escalate", "true"),
        ],
    )
    health_check = _definition(
        "Health check when an incident is acknowledged",
        "When a responder acknowledges an incident, asks your health-check service to test "
        "the affected service; the health checker can then resolve the incident through the "
        "IncidentFlow API (POST /api/v1/incidents/<id>/resolve) if all is well. Enter the "
        "endpoint URL and add the secret health_check_token.",
        {"type": "state_changed", "stateTransition": {"from": "TRIGGERED", "to": "ACKNOWLEDGED"}},
        [
            _trigger("Incident acknowledged"),
            _webhook(
                "health_check",
                0,
                140,
                "Request a health check",
                "https://hooks.example.com/<<fill: your health-check endpoint>>",
                '{"incidentId": "{{ incident.id }}", '
                '"service": {{ (incident.service or "") | tojson }}, '
                '"team": {{ incident.teamName | tojson }}, '
                '"acknowledgedAt": "{{ incident.acknowledgedAt or \'\' }}"}',
                auth={"type": "bearer", "token": "{{ secrets.health_check_token }}"},
            ),
        ],
        [_edge("trigger", "health_check")],
    )
    restart = _definition(
        "Restart a stuck service after 15 minutes",
        "If an incident of one service is still unacknowledged after 15 minutes, calls your "
        "restart endpoint, waits 5 minutes, and tells the team's Slack channel if the "
        "incident is still TRIGGERED. Enter the service and the restart URL, and add the "
        "secrets restart_token and slack_webhook_path.",
        {
            "type": "age",
            "ageThresholdMinutes": 15,
            "conditions": [
                {"field": "status", "value": "TRIGGERED"},
                {
                    "field": "service",
                    "value": "<<fill: the service to restart, e.g. checkout-web>>",
                },
            ],
        },
        [
            _trigger("Unacknowledged for 15 minutes"),
            _webhook(
                "restart",
                0,
                140,
                "Restart the service",
                "https://hooks.example.com/<<fill: your restart endpoint>>",
                '{"service": {{ incident.service | tojson }}, "incidentId": "{{ incident.id }}"}',
                auth={"type": "bearer", "token": "{{ secrets.restart_token }}"},
            ),
            _delay("wait", 0, 280, 5),
            _condition("still_triggered", 0, 420, "Still unacknowledged?", "status", "TRIGGERED"),
            _webhook(
                "tell_team",
                0,
                560,
                "Tell the team",
                SLACK_URL,
                '{"text": {{ ("Automatic restart of " ~ incident.service ~ " did not clear: " ~ '
                'incident.title ~ ". Please take a look.") | tojson }}}',
            ),
        ],
        [
            _edge("trigger", "restart"),
            _edge("restart", "wait"),
            _edge("wait", "still_triggered"),
            _edge("still_triggered", "tell_team", "true"),
        ],
    )
    pagerduty_resolve = _definition(
        "Resolve the PagerDuty alert when the incident is resolved",
        "Resolves the PagerDuty alert opened by the 'PagerDuty page' template (same dedup "
        "key) as soon as the incident is resolved in IncidentFlow. Add the secret "
        "pagerduty_routing_key.",
        {"type": "state_changed", "stateTransition": {"to": "RESOLVED"}},
        [
            _trigger("Incident resolved"),
            _webhook(
                "resolve_alert",
                0,
                140,
                "Resolve the PagerDuty alert",
                PAGERDUTY_URL,
                '{"routing_key": "{{ secrets.pagerduty_routing_key }}", '
                '"event_action": "resolve", "dedup_key": "incidentflow-{{ incident.id }}"}',
            ),
        ],
        [_edge("trigger", "resolve_alert")],
    )
    return [
        BuiltinTemplate("remediate-then-escalate", TemplateCategory.AUTO_RESOLUTION, remediate),
        BuiltinTemplate("health-check-on-ack", TemplateCategory.AUTO_RESOLUTION, health_check),
        BuiltinTemplate("restart-stuck-service", TemplateCategory.AUTO_RESOLUTION, restart),
        BuiltinTemplate("pagerduty-resolve", TemplateCategory.AUTO_RESOLUTION, pagerduty_resolve),
    ]


def _failure_workflows() -> list[BuiltinTemplate]:
    """Workflows that watch other workflows: a ``workflow_failed`` trigger."""
    slack_failures = _definition(
        "Post failed runs to Slack",
        "Posts to a Slack channel (any Slack-compatible incoming webhook) whenever a workflow "
        "run fails: which workflow, on which incident, at which step, and the error (scrubbed "
        "of that workflow's secrets). Add the secret slack_webhook_path (the part of your "
        "incoming webhook URL after /services/). To watch only some workflows, list their ids "
        "in the trigger. A failure of this workflow itself never starts another run.",
        {"type": "workflow_failed"},
        [
            _trigger("A workflow run failed"),
            _webhook(
                "notify_slack",
                0,
                140,
                "Post to Slack",
                SLACK_URL,
                '{"text": {{ (":warning: Workflow "" ~ failure.workflowName ~ "" failed on "'
                ' ~ incident.title ~ " at step " ~ (failure.nodeName or failure.nodeId or "?")'
                ' ~ ": " ~ failure.error ~ " (run " ~ failure.runId ~ ")") | tojson }}}',
            ),
        ],
        [_edge("trigger", "notify_slack")],
    )
    jira_repeated = _definition(
        "Open a Jira issue for repeated failures",
        "Opens a Jira issue when a workflow has failed three times within 24 hours, with the "
        "last error, so that someone fixes the workflow or its destination. At most one issue "
        "per incident a day. Replace the project key CHANGE_ME, and add the secrets "
        "jira_base_url, jira_email and jira_api_token.",
        {"type": "workflow_failed", "minFailures": 3},
        [
            _trigger("Third failure in 24 hours"),
            _action(
                "create_jira",
                0,
                140,
                "jira",
                "Open a Jira issue",
                {
                    "projectKey": PLACEHOLDER_PROJECT_KEY,
                    "issueType": "Bug",
                    "summary": (
                        "Workflow {{ failure.workflowName }} failed "
                        "{{ failure.failuresInADay }} times in 24 hours"
                    ),
                    "description": (
                        "The IncidentFlow workflow {{ failure.workflowName }} "
                        "({{ failure.workflowId }}) failed {{ failure.failuresInADay }} times "
                        "in the last 24 hours. The last failure was run {{ failure.runId }} on "
                        "incident {{ incident.title }} ({{ incident.id }}), at step "
                        "{{ failure.nodeName or failure.nodeId }}:\n\n{{ failure.error }}"
                    ),
                    "priority": "High",
                    "labels": ["incidentflow", "workflow-failure"],
                },
            ),
        ],
        [_edge("trigger", "create_jira")],
    )
    jira_repeated["settings"]["oncePerIncidentMinutes"] = 1440
    return [
        BuiltinTemplate("failed-runs-to-slack", TemplateCategory.COMMUNICATION, slack_failures),
        BuiltinTemplate("jira-for-repeated-failures", TemplateCategory.TICKETING, jira_repeated),
    ]


BUILTIN_TEMPLATES: tuple[BuiltinTemplate, ...] = (
    *_ticketing(),
    *_communication(),
    *_auto_resolution(),
    *_failure_workflows(),
)


# --- what is left to fill -------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """A value the user must replace: where (``nodes[1].data.config.url``) and what."""

    loc: str
    hint: str


def unfilled_placeholders(definition: Any) -> list[Placeholder]:
    """Every template placeholder still in a definition, in document order."""
    found: list[Placeholder] = []

    def walk(value: Any, loc: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*loc, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*loc, index))
        elif isinstance(value, str):
            key = loc[-1] if loc else None
            if FILL_MARKER in value:
                hints = _FILL_RE.findall(value) or ["a value"]
                found.append(Placeholder(format_loc(loc), "; ".join(hints)))
            elif key == "projectKey" and value == PLACEHOLDER_PROJECT_KEY:
                found.append(Placeholder(format_loc(loc), "your Jira project key"))
            elif key == "teamId" and value == PLACEHOLDER_LINEAR_ID:
                found.append(Placeholder(format_loc(loc), "your Linear team id"))

    walk(definition, ())
    return found


# --- installing -----------------------------------------------------------


def system_user() -> User:
    """The inactive, password-less author of the built-in templates (created once)."""
    user = db.session.scalar(sa.select(User).where(User.email == SYSTEM_USER_EMAIL))
    if user is None:
        user = User(
            email=SYSTEM_USER_EMAIL,
            first_name="IncidentFlow",
            last_name="(built-in)",
            is_admin=False,
            is_active=False,
            password_hash=None,
        )
        db.session.add(user)
        db.session.flush()
    return user


def install_builtin_templates() -> int:
    """Create the built-in templates that are missing; return how many were created.

    Idempotent by ``template_key``; a template an admin retired keeps its row
    (with ``retired_at``) and is therefore never installed again. Flushes, the
    caller commits.
    """
    existing = set(
        db.session.scalars(
            sa.select(Workflow.template_key).where(Workflow.template_key.is_not(None))
        )
    )
    author: User | None = None
    created = 0
    for spec in BUILTIN_TEMPLATES:
        if spec.key in existing:
            continue
        author = author or system_user()
        defn = parse_definition(spec.definition)
        template = Workflow(
            name=defn.name,
            description=defn.description,
            version=1,
            definition={},
            scope_type=ScopeType.GLOBAL,
            team_id=None,
            is_enabled=False,
            is_template=True,
            template_category=spec.category,
            template_key=spec.key,
            created_by_id=author.id,
        )
        db.session.add(template)
        db.session.flush()
        stored = defn.to_json()
        stored["id"] = template.id
        stored["settings"] = {**stored["settings"], "enabled": False}
        template.definition = stored
        db.session.add(
            WorkflowVersion(
                workflow_id=template.id,
                version=1,
                definition=stored,
                changed_by_id=author.id,
                change_note="Built-in template",
            )
        )
        created += 1
    db.session.flush()
    return created
