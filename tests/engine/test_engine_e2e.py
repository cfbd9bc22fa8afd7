"""Runs end to end against real local servers standing in for a webhook receiver, Jira
and Linear: what is sent, what is stored, retries, time-outs, secrets, the guard.

Every test runs on both engine backends: the embedded worker, and Celery (each run goes
through Redis as ``advance_run`` messages, claimed, driven and handed back by the Celery
tasks; ``celery_driver`` in tests/fixtures/celery.py), with engine time in the test's hands."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.definition.builders import (
    action_node,
    definition,
    edge,
    jira_config,
    linear_config,
    trigger_config,
    trigger_node,
)
from app.engine.worker import Worker
from app.extensions import db
from tests.builders import attempts_of, benchmark_workflow, webhook
from tests.fakes.servers import LINEAR_TEAM_ID, Reply, json_reply
from tests.support import drain, runs_of


@pytest.fixture(params=["embedded", "celery"])
def worker(request: pytest.FixtureRequest, embedded_worker: Worker) -> Any:
    """The embedded worker, or the Celery backend standing in for it."""
    if request.param == "embedded":
        return embedded_worker
    return request.getfixturevalue("celery_driver")


@pytest.fixture(autouse=True)
def allow_loopback(app, fake_linear):
    """The tests' fake servers live on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    app.config["LINEAR_API_URL"] = fake_linear.endpoint


def test_the_benchmark_workflow_runs_end_to_end(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(benchmark_workflow(webhook_receiver.url))
    incident = open_incident(title='Checkout "down"', priority="P1")
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED", run.error
    first, second = webhook_receiver.requests
    assert (first.method, first.path, second.path) == ("POST", "/first", "/second")
    assert first.json() == {"title": 'Checkout "down"'}
    assert second.json() == {"first": 200}
    assert first.header("Content-Type").startswith("application/json")
    keys = {first.header("Idempotency-Key"), second.header("Idempotency-Key")}
    assert len(keys) == 2 and None not in keys
    results = {r["nodeId"]: r for r in run.completed_nodes}
    assert results["first"]["result"]["status"] == 200
    assert [a.ok for a in attempts_of(run)] == [True, True]
    assert run.incident_id == incident.id


def test_the_false_branch_skips_the_webhooks(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(benchmark_workflow(webhook_receiver.url))
    open_incident(priority="P3")
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"
    assert {r["nodeId"]: r["status"] for r in run.completed_nodes} == {
        "start": "completed",
        "is_p1": "completed",
        "first": "skipped",
        "pause": "skipped",
        "second": "skipped",
    }
    assert webhook_receiver.requests == []


def test_jira_issue_then_a_chat_message_with_its_key(
    app, worker, fake_jira, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    defn = definition(
        [
            trigger_node(),
            action_node("jira", "jira", jira_config(priority="Highest", labels=["incident"])),
            webhook(
                "chat",
                webhook_receiver.url + "/chat",
                body='{"text": "Opened {{ steps.jira.result.key }}: {{ steps.jira.result.url }}"}',
            ),
        ],
        [edge("start", "jira"), edge("jira", "chat")],
        trigger_config("incident_created"),
    )
    workflow = make_enabled_workflow(defn, secrets=fake_jira.secrets())
    open_incident(title="Database failover", priority="P1", description="Primary lost.")
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED", run.error
    sent = fake_jira.last.json()["fields"]
    assert sent["project"] == {"key": "OPS"} and sent["summary"] == "[P1] Database failover"
    assert sent["description"]["type"] == "doc" and sent["labels"] == ["incident"]
    key = fake_jira.issues[0]["key"]
    assert webhook_receiver.last.json() == {"text": f"Opened {key}: {fake_jira.url}/browse/{key}"}


def test_linear_issue_and_graphql_errors(
    app, worker, fake_linear, make_enabled_workflow, open_incident
) -> None:
    defn = definition(
        [
            trigger_node(),
            action_node("linear", "linear", linear_config(teamId=LINEAR_TEAM_ID, priority=1)),
        ],
        [edge("start", "linear")],
        trigger_config("incident_created"),
    )
    workflow = make_enabled_workflow(defn, secrets={"linear_api_key": fake_linear.api_key})
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED", run.error
    result = {r["nodeId"]: r for r in run.completed_nodes}["linear"]["result"]
    assert result["identifier"].startswith("ENG-") and result["url"]

    fake_linear.reply(json_reply(200, {"errors": [{"message": "Team not found"}]}))
    open_incident()
    drain(worker)
    failed = runs_of(workflow)[-1]
    assert failed.status == "FAILED" and "Team not found" in failed.error


def test_a_429_is_retried_after_retry_after_with_the_same_idempotency_key(
    app, clock, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    webhook_receiver.rate_limit(retry_after="120")
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    (first,) = attempts_of(run)
    assert run.status == "RUNNING" and first.status_code == 429 and not first.ok
    assert first.retry_at >= clock.now() + timedelta(seconds=120)
    assert run.due_at == first.retry_at

    clock.advance(seconds=119)
    drain(worker)
    assert len(webhook_receiver.requests) == 1
    clock.advance(seconds=300)
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"
    assert [a.number for a in attempts_of(run)] == [1, 2]
    one, two = webhook_receiver.requests
    assert one.header("Idempotency-Key") == two.header("Idempotency-Key")


def test_retries_stop_after_the_configured_attempts(
    app, clock, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook", attempts=3)],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    webhook_receiver.reply(*[json_reply(503, {"error": "down"}) for _ in range(5)])
    open_incident()
    for _ in range(4):
        drain(worker)
        clock.advance(minutes=10)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "after 3 attempts" in run.error
    assert len(webhook_receiver.requests) == 3
    assert [a.status_code for a in attempts_of(run)] == [503, 503, 503]


def test_a_client_error_fails_at_once_with_the_reason(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    webhook_receiver.reply(json_reply(400, {"error": "bad field"}))
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "400" in run.error
    assert len(attempts_of(run)) == 1
    hook = {r["nodeId"]: r for r in run.completed_nodes}["hook"]
    assert hook["status"] == "failed"


def test_a_body_that_is_not_json_fails_the_step_clearly(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    # Valid JSON for most titles (enabling's sample render passes), not for this one.
    workflow = make_enabled_workflow(
        definition(
            [
                trigger_node(),
                webhook(
                    "hook", webhook_receiver.url + "/hook", body='{"title": "{{ incident.title }}"}'
                ),
            ],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    open_incident(title='Say "hi"')
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "valid JSON" in run.error
    assert webhook_receiver.requests == []


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ range(100000000) | list }}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ],
)
def test_sandbox_escapes_fail_the_step_cleanly(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident, body
) -> None:
    from app.workflows.models import Workflow

    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    # Bypass the editor's checks: the engine must hold on its own.
    stored = dict(workflow.definition)
    stored["nodes"][1]["data"]["config"]["body"] = body
    db.session.execute(
        sa.update(Workflow).where(Workflow.id == workflow.id).values(definition=stored)
    )
    db.session.commit()
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "could not render the body" in run.error.lower()
    assert webhook_receiver.requests == []


def test_a_run_past_its_timeout_fails_and_abandons_its_request(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
            settings={"timeout": "1min", "enabled": True},
        )
    )
    webhook_receiver.slow(5)
    open_incident()
    worker.consume_events()
    (run,) = runs_of(workflow)
    run.working_ms = 60_000 - 300  # 0.3 s of working time left
    db.session.commit()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "timed out" in run.error
    assert run.working_ms >= 60_000


def test_the_outbound_guard_refuses_loopback_unless_allowed(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    app.config["OUTBOUND_ALLOW"] = ""
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "loopback" in run.error.lower()
    assert webhook_receiver.requests == [] and len(attempts_of(run)) == 1


def test_a_secret_never_lands_in_any_row_page_or_log(
    app,
    client,
    sign_in,
    responder,
    worker,
    webhook_receiver,
    make_enabled_workflow,
    open_incident,
    caplog,
) -> None:
    token = "s3cr3t-bearer-token-Zq8"
    defn = definition(
        [
            trigger_node(),
            webhook(
                "hook",
                webhook_receiver.url + "/hook",
                body='{"echo": "{{ secrets.api_token }}"}',
                auth={"type": "bearer", "token": "{{ secrets.api_token }}"},
            ),
        ],
        [edge("start", "hook")],
        trigger_config("incident_created"),
    )
    workflow = make_enabled_workflow(defn, secrets={"api_token": token})
    # The receiver echoes the token back, as careless APIs do.
    webhook_receiver.reply(json_reply(200, {"received": token}))
    caplog.set_level(logging.DEBUG)
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED", run.error
    assert webhook_receiver.last.header("Authorization") == f"Bearer {token}"
    assert webhook_receiver.last.json() == {"echo": token}

    dump = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            dump.extend(repr(tuple(row)) for row in conn.execute(table.select()))
    everything = "\n".join(dump)
    assert "[secret]" in everything or "[redacted]" in everything
    assert token not in everything
    sign_in(responder.email)
    assert token not in client.get(f"/runs/{run.id}").text
    assert token not in caplog.text


def test_steps_see_earlier_results_and_an_unknown_field_fails_clearly(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [
                trigger_node(),
                webhook(
                    "hook",
                    webhook_receiver.url + "/hook",
                    body='{"meta": {{ incident.metadata.missing | tojson }}}',
                ),
            ],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "missing" in run.error
    assert webhook_receiver.requests == []


def test_a_dropped_connection_is_retried(
    app, clock, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    webhook_receiver.reply(Reply(drop=True))
    open_incident()
    drain(worker)
    clock.advance(minutes=5)
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"
    assert [a.ok for a in attempts_of(run)] == [False, True]
