"""Follow-up across runs: ``incident.previous`` and the Jira and Linear update operations,
end to end through the real engine against the local fake Jira and Linear."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.definition import definition_errors, parse_definition
from app.definition.builders import action_node, definition, edge, trigger_config, trigger_node
from app.engine.context import previous_results
from app.engine.dry_run import dry_run
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.workflows.templates_builtin import BUILTIN_TEMPLATES
from tests.builders import attempts_of, webhook
from tests.fakes.servers import LINEAR_TEAM_ID, json_reply
from tests.support import drain, runs_of

TEMPLATES = {t.key: t for t in BUILTIN_TEMPLATES}


@pytest.fixture(autouse=True)
def allow_loopback(app, fake_linear):
    """The fake servers live on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    app.config["LINEAR_API_URL"] = fake_linear.endpoint


def _template(key: str, **fills: str) -> dict[str, Any]:
    """A built-in template's definition with its placeholders filled in."""
    defn = copy.deepcopy(TEMPLATES[key].definition)
    text = json.dumps(defn)
    for placeholder, value in fills.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def _resolve(responder, incident) -> None:
    incidents.change_status(incidents.Actor(responder, ChangeSource.API), incident, "resolve")
    db.session.commit()


def _results(run) -> dict[str, dict[str, Any]]:
    return {r["nodeId"]: r for r in run.completed_nodes}


def test_the_close_on_resolve_template_closes_the_issue_the_create_template_opened(
    app, worker, fake_jira, make_enabled_workflow, open_incident, responder
) -> None:
    opener = make_enabled_workflow(
        _template("jira-p1", CHANGE_ME="OPS"), secrets=fake_jira.secrets()
    )
    closer = make_enabled_workflow(_template("jira-close-on-resolve"), secrets=fake_jira.secrets())
    other = open_incident(title="Unrelated P1", priority="P1")
    incident = open_incident(title="Checkout down", priority="P1")
    drain(worker)
    assert [run.status for run in runs_of(opener)] == ["COMPLETED", "COMPLETED"]
    mine = next(i for i in fake_jira.issues if i["fields"]["summary"] == "[P1] Checkout down")
    assert {i["status"] for i in fake_jira.issues} == {"To Do"}

    _resolve(responder, incident)
    drain(worker)
    (run,) = runs_of(closer)
    assert run.status == "COMPLETED", run.error
    assert run.incident_id == incident.id
    # The issue this incident's run opened, and only it, is Done with a comment.
    assert mine["status"] == "Done"
    (comment,) = mine["comments"]
    text = json.dumps(comment)
    assert "Resolved in IncidentFlow" in text and "Checkout down" in text
    assert [i["status"] for i in fake_jira.issues if i is not mine] == ["To Do"]
    assert all(i["comments"] == [] for i in fake_jira.issues if i is not mine)
    # The transition was looked up by name, then taken by id, as Jira wants it.
    transition_requests = [r for r in fake_jira.requests if r.path.endswith("/transitions")]
    assert [(r.method, r.path) for r in transition_requests] == [
        ("GET", f"/rest/api/3/issue/{mine['key']}/transitions"),
        ("POST", f"/rest/api/3/issue/{mine['key']}/transitions"),
    ]
    assert transition_requests[1].json() == {"transition": {"id": "31"}}
    results = _results(run)
    assert results["close_jira"]["result"] == {
        "key": mine["key"],
        "url": f"{fake_jira.url}/browse/{mine['key']}",
        "transition": "Done",
        "transitionId": "31",
        "status": "Done",
    }
    assert results["comment_jira"]["result"]["commentId"]
    # What the run stored as sent is the completed request, not the placeholder.
    attempt = next(a for a in attempts_of(run) if a.node_id == "close_jira")
    assert json.loads(attempt.request["body"]) == {"transition": {"id": "31"}}
    assert "lookup" not in attempt.request
    assert other.id != incident.id


def test_a_transition_the_issue_cannot_take_fails_with_the_ones_it_can(
    app, worker, fake_jira, make_enabled_workflow, open_incident, responder
) -> None:
    make_enabled_workflow(_template("jira-p1", CHANGE_ME="OPS"), secrets=fake_jira.secrets())
    closer = make_enabled_workflow(_template("jira-close-on-resolve"), secrets=fake_jira.secrets())
    incident = open_incident(priority="P1")
    drain(worker)
    fake_jira.issues[0]["status"] = "Done"  # someone closed it by hand
    _resolve(responder, incident)
    drain(worker)
    (run,) = runs_of(closer)
    assert run.status == "FAILED"
    assert "no transition named 'Done'" in run.error and "'Reopen' (to To Do)" in run.error
    assert not any(r.method == "POST" and "/transitions" in r.path for r in fake_jira.requests)


def test_without_an_earlier_run_the_step_fails_and_says_why(
    app, worker, fake_jira, make_enabled_workflow, open_incident, responder
) -> None:
    closer = make_enabled_workflow(_template("jira-close-on-resolve"), secrets=fake_jira.secrets())
    incident = open_incident(priority="P3")
    _resolve(responder, incident)
    drain(worker)
    (run,) = runs_of(closer)
    assert run.status == "FAILED"
    assert "Could not render the issue key" in run.error
    assert "Jira issue for P1 incidents" in run.error
    assert fake_jira.requests == []


def test_the_linear_template_moves_the_escalation_issue_to_done(
    app, worker, fake_linear, make_enabled_workflow, open_incident, responder
) -> None:
    secrets = {"linear_api_key": fake_linear.api_key}
    opener = make_enabled_workflow(
        _template(
            "linear-escalation",
            **{
                "<<fill: the service to watch, e.g. payments-api>>": "checkout",
                "00000000-0000-0000-0000-000000000000": LINEAR_TEAM_ID,
            },
        ),
        secrets=secrets,
    )
    closer = make_enabled_workflow(_template("linear-done-on-resolve"), secrets=secrets)
    incident = open_incident(service="checkout")
    incidents.escalate(incidents.Actor(responder, ChangeSource.API), incident)
    db.session.commit()
    drain(worker)
    (opened,) = runs_of(opener)
    assert opened.status == "COMPLETED", opened.error
    (issue,) = fake_linear.issues
    assert issue["state"] == "Todo"

    _resolve(responder, incident)
    drain(worker)
    (run,) = runs_of(closer)
    assert run.status == "COMPLETED", run.error
    assert issue["state"] == "Done"
    query, update = (r.json() for r in fake_linear.requests[-2:])
    assert query["operationName"] == "IssueStates"
    assert query["variables"] == {"id": issue["id"]}
    done_id = fake_linear.state_ids(LINEAR_TEAM_ID)["Done"]
    assert update["variables"] == {"id": issue["id"], "input": {"stateId": done_id}}
    assert _results(run)["done_linear"]["result"]["state"] == "Done"


def test_linear_update_with_an_unknown_state_names_the_teams_states(
    app, worker, fake_linear, make_enabled_workflow, open_incident
) -> None:
    secrets = {"linear_api_key": fake_linear.api_key}
    defn = definition(
        [
            trigger_node(),
            action_node(
                "create", "linear", {"teamId": LINEAR_TEAM_ID, "title": "x", "description": ""}
            ),
            action_node(
                "move",
                "linear",
                {
                    "operation": "update",
                    "issueId": "{{ steps.create.result.identifier }}",
                    "state": "Shipped",
                },
            ),
        ],
        [edge("start", "create"), edge("create", "move")],
        trigger_config("incident_created"),
    )
    workflow = make_enabled_workflow(defn, secrets=secrets)
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED"
    assert "no workflow state named 'Shipped'" in run.error and "'Done' (completed)" in run.error
    # By state type, the team's first state of that type.
    assert fake_linear.issues[0]["state"] == "Todo"


def test_previous_is_the_latest_completed_step_of_earlier_runs_and_secrets_stay_redacted(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident, responder
) -> None:
    token = "s3cr3t-token-value-42"
    # The receiver echoes the token back: the stored result must not hold it.
    webhook_receiver.reply(
        json_reply(200, {"ticket": "T-1", "echo": token}),
        json_reply(200, {"ticket": "T-2", "echo": token}),
    )
    first = definition(
        [
            trigger_node(),
            webhook(
                "open",
                webhook_receiver.url + "/open",
                headers={"Content-Type": "application/json", "X-Token": "{{ secrets.token }}"},
            ),
        ],
        [edge("start", "open")],
        trigger_config("incident_created"),
        name="Opener",
    )
    opener = make_enabled_workflow(first, secrets={"token": token})
    incident = open_incident()
    drain(worker)
    (opened,) = runs_of(opener)
    assert opened.status == "COMPLETED", opened.error

    previous = previous_results(incident.id)
    assert set(previous) == {opener.id, "Opener"}
    assert previous["Opener"] is previous[opener.id]
    step = previous["Opener"]["open"]
    assert step["runId"] == opened.id and step["status"] == "completed"
    assert step["result"]["body"]["ticket"] == "T-1"
    assert token not in json.dumps(previous)
    assert previous_results(incident.id, exclude_run=opened.id) == {}

    follow = definition(
        [
            trigger_node(),
            webhook(
                "tell",
                webhook_receiver.url + "/tell",
                body=(
                    '{"ticket": {{ incident.previous["Opener"].open.result.body.ticket | tojson }},'
                    ' "echo": {{ incident.previous["Opener"].open.result.body.echo | tojson }}}'
                ),
            ),
        ],
        [edge("start", "tell")],
        trigger_config("state_changed", stateTransition={"to": "RESOLVED"}),
        name="Follower",
    )
    make_enabled_workflow(follow)
    _resolve(responder, incident)
    drain(worker)
    told = webhook_receiver.last
    assert told.path == "/tell"
    assert told.json()["ticket"] == "T-1"
    assert token not in told.body.decode()
    # Another incident sees nothing of this one's runs.
    assert previous_results(open_incident().id) == {}


def test_the_dry_run_reads_earlier_results(
    app, worker, fake_jira, make_enabled_workflow, open_incident
) -> None:
    make_enabled_workflow(_template("jira-p1", CHANGE_ME="OPS"), secrets=fake_jira.secrets())
    closer = make_enabled_workflow(_template("jira-close-on-resolve"), secrets=fake_jira.secrets())
    incident = open_incident(priority="P1")
    drain(worker)
    key = fake_jira.issues[0]["key"]
    before = len(fake_jira.requests)
    steps = {step.node_id: step for step in dry_run(closer, incident)}
    request = steps["close_jira"].detail["request"]
    # The site is a secret, masked in previews; the key came from the earlier run.
    assert request["url"] == f"[redacted]/rest/api/3/issue/{key}/transitions"
    assert request["lookup"]["method"] == "GET"
    assert steps["comment_jira"].detail["request"]["url"].endswith(f"/{key}/comment")
    assert len(fake_jira.requests) == before  # a dry run sends nothing


@pytest.mark.parametrize(
    ("config", "loc", "message"),
    [
        ({"operation": "close"}, "config.operation", "'close' is not a valid operation"),
        ({"operation": "transition", "issueKey": "OPS-1"}, "config.transition", "required"),
        (
            {"operation": "comment", "issueKey": "{{ secrets.jira_api_token }}", "body": "x"},
            "config.issueKey",
            "Secrets cannot be used here",
        ),
        (
            {"operation": "comment", "issueKey": "OPS-1", "body": "{{ incident.nope }}"},
            "config.body",
            "'incident' has no field 'nope'",
        ),
    ],
)
def test_update_operations_are_validated_like_the_rest(config, loc, message) -> None:
    defn = definition(
        [trigger_node(), action_node("j", "jira", config)],
        [edge("start", "j")],
        trigger_config("incident_created"),
    )
    with pytest.raises(ValueError) as raised:
        parse_definition(defn)
    found = {e.loc: e.message for e in definition_errors(raised.value)}
    assert any(where.endswith(loc) and message in text for where, text in found.items()), found


def test_a_config_without_operation_still_creates() -> None:
    defn = definition(
        [
            trigger_node(),
            action_node(
                "j",
                "jira",
                {"projectKey": "OPS", "issueType": "Task", "summary": "s", "description": ""},
            ),
        ],
        [edge("start", "j")],
        trigger_config("incident_created"),
    )
    stored = parse_definition(defn).to_json()
    assert "operation" not in stored["nodes"][1]["data"]["config"]
