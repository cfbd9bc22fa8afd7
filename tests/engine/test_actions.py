"""Actions end to end against real HTTP servers on 127.0.0.1 (tests/fakes/servers.py).

The fakes check each request as the real APIs document it; these tests check
what IncidentFlow sends, what it makes of every kind of answer (success,
errors, slowness, 429 with Retry-After, dropped connections, redirects) and
that no credential leaks into what is returned for storage.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from flask import Flask

from app.engine import templating
from app.engine.actions import (
    ActionSettings,
    AttemptOutcome,
    attempt,
    idempotency_key,
    perform,
    prepare,
    preview,
)
from app.engine.actions.jira import adf_document
from app.engine.actions.oauth import TokenCache
from app.engine.outbound import AllowList
from app.workflows.schema import JiraAction, LinearAction, WebhookAction
from tests.fakes.connections import (
    CONNECTION_CLOSE,
    HANG_UP,
    OK,
    OK_THEN_CLOSE,
    KeepAliveServer,
)
from tests.fakes.servers import (
    LINEAR_LABEL_ID,
    LINEAR_TEAM_ID,
    FakeJira,
    FakeLinear,
    FakeOAuth,
    FakeServer,
    Reply,
    WebhookReceiver,
    json_reply,
)

# The fakes' fixtures (webhook_receiver, fake_jira, ...); the root conftest may list it instead.

RETRY = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000}
SECRETS = {"hook_token": "s3cr3t-bearer-value", "hook_password": "pa55-w0rd-value"}
CONTEXT: dict[str, Any] = {
    "incident": {
        "id": "inc-42",
        "title": 'Checkout "down" again',
        "description": "Payments fail.\nCustomers see 500s.\n\nStarted 09:12.",
        "priority": "P1",
        "status": "TRIGGERED",
        "service": "checkout",
        "teamName": "Payments",
        "metadata": {"region": "eu-west-1"},
    },
    "team": {"id": "team-1", "name": "Payments"},
    "workflow": {"id": "wf-1", "name": "Escalate P1", "executionId": "run-7"},
    "steps": {},
}


class ManualClock:
    """Wall time moved by the test; monotonic time is real (sockets time out for real)."""

    def __init__(self) -> None:
        self.current = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def render(source: str) -> str:
    return templating.render(source, CONTEXT)


def settings(**config: Any) -> ActionSettings:
    """Settings the documented way: OUTBOUND_ALLOW lets the loopback fakes through."""
    return ActionSettings.from_config(
        {"OUTBOUND_ALLOW": "127.0.0.1", **config}, token_cache=TokenCache()
    )


def webhook(url: str, **config: Any) -> WebhookAction:
    data = {
        "url": url,
        "method": "POST",
        "headers": {},
        "body": '{"incident": {{ incident.id | tojson }}, "title": {{ incident.title | tojson }}}',
        "auth": {"type": "none"},
        **config,
    }
    return WebhookAction.model_validate(
        {"actionType": "webhook", "name": "Notify", "config": data, "retry": RETRY}
    )


def run(
    action: WebhookAction | JiraAction | LinearAction,
    *,
    secrets: dict[str, str] | None = None,
    timeout: float = 5.0,
    clock: ManualClock | None = None,
    config: ActionSettings | None = None,
) -> AttemptOutcome:
    return attempt(
        action,
        render=render,
        secrets=SECRETS if secrets is None else secrets,
        idempotency_key=idempotency_key("run-7", "notify"),
        clock=clock or ManualClock(),
        timeout=timeout,
        settings=config or settings(),
    )


def assert_no_secret_in(outcome: AttemptOutcome, *values: str) -> None:
    stored = json.dumps(outcome.to_json())
    for value in values:
        assert value not in stored
        assert base64.b64encode(value.encode()).decode() not in stored


# --- Webhook ---------------------------------------------------------------------


def test_webhook_sends_the_rendered_request_with_bearer_auth(
    webhook_receiver: WebhookReceiver,
) -> None:
    action = webhook(
        f"{webhook_receiver.url}/hooks/{{{{ incident.id }}}}?team={{{{ team.name }}}}",
        method="PUT",
        headers={"X-Region": "{{ incident.metadata.region }}"},
        auth={"type": "bearer", "token": "{{ secrets.hook_token }}"},
    )
    outcome = run(action)

    assert outcome.ok, outcome.error
    received = webhook_receiver.last
    assert received.method == "PUT"
    assert received.path == "/hooks/inc-42"
    assert received.query == {"team": ["Payments"]}
    assert received.header("Authorization") == "Bearer s3cr3t-bearer-value"
    assert received.header("X-Region") == "eu-west-1"
    assert received.header("Content-Type") == "application/json"
    assert received.header("Idempotency-Key") == idempotency_key("run-7", "notify")
    assert received.json() == {"incident": "inc-42", "title": 'Checkout "down" again'}
    assert outcome.status_code == 200
    assert outcome.result == {"status": 200, "body": {"ok": True}}
    assert outcome.request is not None
    assert outcome.request["headers"]["Authorization"] == "[redacted]"
    assert outcome.request["method"] == "PUT"
    assert_no_secret_in(outcome, "s3cr3t-bearer-value")


def test_tojson_keeps_any_value_safe_inside_the_json_body(
    webhook_receiver: WebhookReceiver,
) -> None:
    body = (
        '{"description": {{ incident.description | tojson }}, '
        '"meta": {{ incident.metadata | tojson }}}'
    )
    assert run(webhook(f"{webhook_receiver.url}/in", body=body)).ok
    assert webhook_receiver.last.json() == {
        "description": CONTEXT["incident"]["description"],
        "meta": {"region": "eu-west-1"},
    }


def test_basic_and_custom_header_auth(webhook_receiver: WebhookReceiver) -> None:
    basic = webhook(
        f"{webhook_receiver.url}/basic",
        auth={
            "type": "basic",
            "username": "bot-{{ team.id }}",
            "password": "{{ secrets.hook_password }}",
        },
    )
    custom = webhook(
        f"{webhook_receiver.url}/custom",
        auth={"type": "custom", "customHeaders": {"X-Api-Key": "{{ secrets.hook_token }}"}},
    )
    first, second = run(basic), run(custom)

    assert first.ok and second.ok
    basic_header = webhook_receiver.requests[0].header("Authorization") or ""
    assert base64.b64decode(basic_header.removeprefix("Basic ")) == b"bot-team-1:pa55-w0rd-value"
    assert webhook_receiver.requests[1].header("X-Api-Key") == "s3cr3t-bearer-value"
    assert webhook_receiver.requests[1].header("Authorization") is None
    assert second.request is not None and second.request["headers"]["X-Api-Key"] == "[redacted]"
    assert_no_secret_in(first, "pa55-w0rd-value")
    assert_no_secret_in(second, "s3cr3t-bearer-value")


def test_a_body_that_is_not_json_fails_without_sending(webhook_receiver: WebhookReceiver) -> None:
    action = webhook(f"{webhook_receiver.url}/in", body='{"title": "{{ incident.title }}"}')
    outcome = run(action)

    assert not outcome.ok and not outcome.retryable
    assert outcome.error is not None
    assert outcome.error.startswith(
        "The body did not render to valid JSON: Expecting ',' delimiter"
    )
    assert "(line 1, column 22)" in outcome.error
    assert webhook_receiver.requests == []


def test_a_template_that_fails_to_render_fails_the_step(webhook_receiver: WebhookReceiver) -> None:
    outcome = run(webhook(f"{webhook_receiver.url}/in", body='{"x": "{{ incident.nope }}"}'))
    assert not outcome.ok and not outcome.retryable
    assert outcome.error is not None and outcome.error.startswith("Could not render the body:")
    assert "nope" in outcome.error
    assert webhook_receiver.requests == []


def test_a_missing_secret_names_the_secret(webhook_receiver: WebhookReceiver) -> None:
    action = webhook(
        f"{webhook_receiver.url}/in", auth={"type": "bearer", "token": "{{ secrets.gone }}"}
    )
    outcome = run(action)
    assert not outcome.ok and not outcome.retryable
    assert "'gone'" in (outcome.error or "")
    assert webhook_receiver.requests == []


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (408, True), (404, False), (400, False)]
)
def test_error_statuses_fail_and_only_some_are_retryable(
    webhook_receiver: WebhookReceiver, status: int, retryable: bool
) -> None:
    webhook_receiver.reply(json_reply(status, {"message": "nope"}))
    outcome = run(webhook(f"{webhook_receiver.url}/in"))
    assert not outcome.ok
    assert outcome.status_code == status
    assert outcome.retryable is retryable
    assert outcome.error is not None and f"answered {status}" in outcome.error
    assert outcome.response is not None and outcome.response["status"] == status


def test_every_attempt_carries_the_same_idempotency_key(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.reply(Reply(status=503))
    action = webhook(f"{webhook_receiver.url}/in")
    assert run(action).retryable
    assert run(action).ok
    keys = {request.header("Idempotency-Key") for request in webhook_receiver.requests}
    assert keys == {idempotency_key("run-7", "notify")}
    assert idempotency_key("run-7", "other") != idempotency_key("run-7", "notify")


def test_429_with_retry_after_in_seconds(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.rate_limit(retry_after="7")
    outcome = run(webhook(f"{webhook_receiver.url}/in"))
    assert not outcome.ok and outcome.retryable
    assert outcome.status_code == 429
    assert outcome.retry_after_seconds == 7.0


def test_429_with_retry_after_as_a_date_uses_the_engine_clock(
    webhook_receiver: WebhookReceiver,
) -> None:
    clock = ManualClock()
    webhook_receiver.rate_limit(format_datetime(clock.now() + timedelta(seconds=45), usegmt=True))
    outcome = run(webhook(f"{webhook_receiver.url}/in"), clock=clock)
    assert outcome.retry_after_seconds == 45.0


def test_a_slow_server_times_out_quickly_and_may_be_retried(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.slow(5.0)
    started = time.monotonic()
    outcome = run(webhook(f"{webhook_receiver.url}/in"), timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert not outcome.ok and outcome.retryable and outcome.timed_out
    assert outcome.status_code is None
    assert outcome.error == "The webhook at 127.0.0.1 did not answer within 0.3 s (timed out)."


def test_a_dropped_connection_is_a_retryable_failure(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.drop()
    outcome = run(webhook(f"{webhook_receiver.url}/in"))
    assert not outcome.ok and outcome.retryable and not outcome.timed_out
    assert outcome.error is not None
    assert "connection to the webhook at 127.0.0.1" in outcome.error


def test_a_redirect_is_a_failure_and_is_not_followed(webhook_receiver: WebhookReceiver) -> None:
    inner = FakeServer(host="127.0.0.2").start()
    try:
        webhook_receiver.redirect(f"{inner.url}/latest/meta-data/")
        outcome = run(webhook(f"{webhook_receiver.url}/in"))
    finally:
        inner.stop()
    assert not outcome.ok and not outcome.retryable
    assert outcome.status_code == 302
    assert "redirects are not followed" in (outcome.error or "")
    assert inner.requests == []


def test_without_the_allowlist_the_guard_refuses_loopback(
    webhook_receiver: WebhookReceiver,
) -> None:
    outcome = run(webhook(f"{webhook_receiver.url}/in"), config=ActionSettings())
    assert not outcome.ok and not outcome.retryable
    assert outcome.error is not None
    assert outcome.error.startswith("The request to the webhook at 127.0.0.1 was not sent:")
    assert "loopback address" in outcome.error
    assert webhook_receiver.requests == []


def test_a_large_response_is_kept_bounded(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.reply(Reply(status=200, body="x" * 100_000))
    outcome = run(webhook(f"{webhook_receiver.url}/in"))
    assert outcome.ok
    assert outcome.response is not None and outcome.response["truncated"] is True
    assert len(outcome.response["body"]) == 4096
    assert outcome.result is not None and len(outcome.result["body"]) == 4096


# --- OAuth2 client credentials ------------------------------------------------------


def oauth_webhook(receiver: WebhookReceiver, oauth: FakeOAuth) -> WebhookAction:
    return webhook(
        f"{receiver.url}/secure",
        auth={
            "type": "oauth2",
            "clientId": "incidentflow",
            "clientSecret": "{{ secrets.oauth_secret }}",
            "tokenUrl": oauth.token_url,
        },
    )


OAUTH_SECRETS = {"oauth_secret": "oauth-client-secret-456"}


def test_oauth_token_is_fetched_once_and_reused_until_it_expires(
    webhook_receiver: WebhookReceiver, fake_oauth: FakeOAuth
) -> None:
    fake_oauth.expires_in = 120
    clock, config = ManualClock(), settings()
    action = oauth_webhook(webhook_receiver, fake_oauth)

    for _ in range(2):
        assert run(action, secrets=OAUTH_SECRETS, clock=clock, config=config).ok
    assert fake_oauth.token_requests == 1
    token_request = fake_oauth.requests[0]
    assert token_request.form() == {"grant_type": "client_credentials"}
    assert (
        token_request.header("Authorization")
        == "Basic " + base64.b64encode(b"incidentflow:oauth-client-secret-456").decode()
    )
    first_token = fake_oauth.issued[0]
    assert [r.header("Authorization") for r in webhook_receiver.requests] == [
        f"Bearer {first_token}"
    ] * 2

    clock.advance(100)  # within the 30 s margin before expiry: renewed
    outcome = run(action, secrets=OAUTH_SECRETS, clock=clock, config=config)
    assert outcome.ok
    assert fake_oauth.token_requests == 2
    assert webhook_receiver.last.header("Authorization") == f"Bearer {fake_oauth.issued[1]}"
    assert outcome.request is not None
    assert "OAuth2 token from" in outcome.request["headers"]["Authorization"]
    assert_no_secret_in(outcome, "oauth-client-secret-456", *fake_oauth.issued)


def test_concurrent_attempts_share_one_token_fetch(
    webhook_receiver: WebhookReceiver, fake_oauth: FakeOAuth
) -> None:
    fake_oauth.token_delay = 0.2  # every attempt starts while the first fetch is running
    config, action = settings(), oauth_webhook(webhook_receiver, fake_oauth)
    start = threading.Barrier(6)
    outcomes: list[AttemptOutcome] = []

    def one() -> None:
        start.wait()
        outcomes.append(run(action, secrets=OAUTH_SECRETS, config=config))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(outcomes) == 6 and all(outcome.ok for outcome in outcomes)
    assert fake_oauth.token_requests == 1


def test_a_401_refreshes_the_token_once(
    webhook_receiver: WebhookReceiver, fake_oauth: FakeOAuth
) -> None:
    webhook_receiver.reply(Reply(status=401, body={"error": "token revoked"}))
    outcome = run(oauth_webhook(webhook_receiver, fake_oauth), secrets=OAUTH_SECRETS)
    assert outcome.ok
    assert fake_oauth.token_requests == 2
    sent = [request.header("Authorization") for request in webhook_receiver.requests]
    assert sent == [f"Bearer {fake_oauth.issued[0]}", f"Bearer {fake_oauth.issued[1]}"]


def test_a_second_401_fails_without_more_refreshing(
    webhook_receiver: WebhookReceiver, fake_oauth: FakeOAuth
) -> None:
    webhook_receiver.reply(Reply(status=401), Reply(status=401))
    outcome = run(oauth_webhook(webhook_receiver, fake_oauth), secrets=OAUTH_SECRETS)
    assert not outcome.ok and not outcome.retryable and outcome.status_code == 401
    assert fake_oauth.token_requests == 2
    assert len(webhook_receiver.requests) == 2


def test_a_rejected_client_secret_is_reported(
    webhook_receiver: WebhookReceiver, fake_oauth: FakeOAuth
) -> None:
    outcome = run(oauth_webhook(webhook_receiver, fake_oauth), secrets={"oauth_secret": "wrong"})
    assert not outcome.ok and not outcome.retryable
    assert outcome.error is not None
    assert "answered 401 Unauthorized (invalid_client)" in outcome.error
    assert webhook_receiver.requests == []


# --- Dry run -----------------------------------------------------------------------


def test_prepare_shows_the_request_as_it_would_be_sent_with_secrets_masked(
    webhook_receiver: WebhookReceiver,
) -> None:
    action = webhook(
        f"{webhook_receiver.url}/in",
        headers={"X-Trace": "{{ workflow.executionId }}"},
        body='{"token_hint": "{{ secrets.hook_token }}", "id": {{ incident.id | tojson }}}',
        auth={"type": "bearer", "token": "{{ secrets.hook_token }}"},
    )
    prepared = prepare(
        action,
        render=lambda source: templating.render(source, {**CONTEXT, "secrets": SECRETS}),
        secrets=SECRETS,
        idempotency_key="key-1",
        settings=settings(),
    )
    view = prepared.masked()
    assert view == {
        "method": "POST",
        "url": f"{webhook_receiver.url}/in",
        "headers": {
            "X-Trace": "run-7",
            "Authorization": "[redacted]",
            "Content-Type": "application/json",
            "Idempotency-Key": "key-1",
        },
        "body": '{"token_hint": "[redacted]", "id": "inc-42"}',
    }
    assert "s3cr3t" not in repr(prepared)
    assert webhook_receiver.requests == []  # preparing sends nothing

    broken = webhook(f"{webhook_receiver.url}/in", body="{oops")
    shown = preview(broken, render=render, secrets=SECRETS, idempotency_key="k")
    assert shown["error"].startswith("The body did not render to valid JSON")


# --- Jira Cloud ----------------------------------------------------------------------


def jira(**config: Any) -> JiraAction:
    data = {
        "projectKey": "OPS",
        "issueType": "Incident",
        "summary": "[{{ incident.priority }}] {{ incident.title }}\n(auto)",
        "description": "{{ incident.description }}",
        "priority": "Highest",
        "labels": ["incident", "payments"],
        **config,
    }
    return JiraAction.model_validate(
        {"actionType": "jira", "name": "Open Jira", "config": data, "retry": RETRY}
    )


def test_jira_creates_an_issue_as_the_v3_api_documents(fake_jira: FakeJira) -> None:
    outcome = run(jira(), secrets=fake_jira.secrets())

    assert outcome.ok, outcome.error
    assert outcome.status_code == 201
    assert outcome.result == {
        "id": "10001",
        "key": "OPS-1",
        "self": f"{fake_jira.url}/rest/api/3/issue/10001",
        "url": f"{fake_jira.url}/browse/OPS-1",
    }
    sent = fake_jira.last
    assert (sent.method, sent.path) == ("POST", "/rest/api/3/issue")
    assert sent.header("Accept") == "application/json"
    fields = sent.json()["fields"]
    assert fields["project"] == {"key": "OPS"}
    assert fields["issuetype"] == {"name": "Incident"}
    assert fields["summary"] == '[P1] Checkout "down" again (auto)'
    assert fields["priority"] == {"name": "Highest"}
    assert fields["labels"] == ["incident", "payments"]
    assert fields["description"] == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Payments fail."},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "Customers see 500s."},
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "Started 09:12."}]},
        ],
    }
    assert_no_secret_in(outcome, fake_jira.api_token)


def test_jira_rejects_a_wrong_api_token(fake_jira: FakeJira) -> None:
    secrets = {**fake_jira.secrets(), "jira_api_token": "wrong-token"}
    outcome = run(jira(), secrets=secrets)
    assert not outcome.ok and not outcome.retryable
    assert outcome.status_code == 401
    assert "jira_api_token" in (outcome.error or "")
    assert fake_jira.issues == []


def test_jira_field_errors_are_shown(fake_jira: FakeJira) -> None:
    outcome = run(jira(issueType="Epic", priority="Urgent"), secrets=fake_jira.secrets())
    assert not outcome.ok and not outcome.retryable and outcome.status_code == 400
    assert outcome.error == (
        "Jira answered 400 Bad Request: issuetype: Specify a valid issue type; "
        "priority: Specify a valid priority."
    )


def test_jira_rate_limits_and_outages_are_retryable(fake_jira: FakeJira) -> None:
    fake_jira.reply(
        json_reply(429, {"errorMessages": ["Rate limit exceeded"]}, **{"Retry-After": "12"}),
        Reply(status=503, body="upstream unavailable"),
    )
    limited = run(jira(), secrets=fake_jira.secrets())
    down = run(jira(), secrets=fake_jira.secrets())
    assert (limited.retryable, limited.retry_after_seconds) == (True, 12.0)
    assert "Rate limit exceeded" in (limited.error or "")
    assert down.retryable and down.status_code == 503
    assert run(jira(), secrets=fake_jira.secrets()).result["key"] == "OPS-1"  # type: ignore[index]


def test_jira_needs_its_secrets(fake_jira: FakeJira) -> None:
    secrets = fake_jira.secrets()
    del secrets["jira_base_url"]
    outcome = run(jira(), secrets=secrets)
    assert not outcome.ok and not outcome.retryable
    assert "jira_base_url" in (outcome.error or "")
    assert fake_jira.requests == []


def test_adf_document_from_plain_text() -> None:
    assert adf_document("") == {"type": "doc", "version": 1, "content": []}
    assert adf_document("one\r\n\r\n\r\ntwo\n\nthree") == {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]}
            for line in ("one", "two", "three")
        ],
    }


# --- Linear ----------------------------------------------------------------------------


def linear(**config: Any) -> LinearAction:
    data = {
        "teamId": LINEAR_TEAM_ID,
        "title": "{{ incident.title }}",
        "description": "Opened by {{ workflow.name }} for {{ incident.id }}",
        "priority": 1,
        "labelIds": [LINEAR_LABEL_ID],
        **config,
    }
    return LinearAction.model_validate(
        {"actionType": "linear", "name": "Open Linear", "config": data, "retry": RETRY}
    )


def linear_settings(server: FakeLinear) -> ActionSettings:
    return settings(LINEAR_API_URL=server.endpoint)


def test_linear_creates_an_issue_with_the_issue_create_mutation(fake_linear: FakeLinear) -> None:
    outcome = run(
        linear(),
        secrets={"linear_api_key": fake_linear.api_key},
        config=linear_settings(fake_linear),
    )
    assert outcome.ok, outcome.error
    issue = fake_linear.issues[0]
    assert outcome.result == {
        "id": issue["id"],
        "identifier": "ENG-1",
        "url": "https://linear.app/acme/issue/eng-1/created-issue",
    }
    sent = fake_linear.last
    assert sent.header("Authorization") == fake_linear.api_key  # no "Bearer" for API keys
    assert "issueCreate(input: $input)" in sent.json()["query"]
    assert sent.json()["variables"] == {
        "input": {
            "teamId": LINEAR_TEAM_ID,
            "title": 'Checkout "down" again',
            "description": "Opened by Escalate P1 for inc-42",
            "priority": 1,
            "labelIds": [LINEAR_LABEL_ID],
        }
    }
    assert_no_secret_in(outcome, fake_linear.api_key)


def test_linear_graphql_errors_in_a_200_are_failures(fake_linear: FakeLinear) -> None:
    outcome = run(
        linear(teamId="00000000-0000-4000-8000-000000000000"),
        secrets={"linear_api_key": fake_linear.api_key},
        config=linear_settings(fake_linear),
    )
    assert not outcome.ok and not outcome.retryable
    assert outcome.status_code == 200
    assert outcome.error == "Linear refused the issue: Could not find referenced Team."


def test_linear_success_false_is_a_failure(fake_linear: FakeLinear) -> None:
    fake_linear.reply(json_reply(200, {"data": {"issueCreate": {"success": False, "issue": None}}}))
    outcome = run(
        linear(),
        secrets={"linear_api_key": fake_linear.api_key},
        config=linear_settings(fake_linear),
    )
    assert not outcome.ok and "success: false" in (outcome.error or "")


def test_linear_rejects_a_wrong_api_key(fake_linear: FakeLinear) -> None:
    outcome = run(
        linear(), secrets={"linear_api_key": "lin_api_wrong"}, config=linear_settings(fake_linear)
    )
    assert not outcome.ok and not outcome.retryable and outcome.status_code == 401
    assert "linear_api_key" in (outcome.error or "")
    assert "not authenticated" in (outcome.error or "").lower() or "authenticate" in (
        outcome.error or ""
    )


def test_linear_rate_limit_errors_are_retryable(fake_linear: FakeLinear) -> None:
    fake_linear.reply(
        json_reply(
            400,
            {"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]},
        )
    )
    outcome = run(
        linear(),
        secrets={"linear_api_key": fake_linear.api_key},
        config=linear_settings(fake_linear),
    )
    assert not outcome.ok and outcome.retryable


def test_linear_endpoint_defaults_to_the_public_api() -> None:
    prepared = prepare(
        linear(),
        render=render,
        secrets={"linear_api_key": "lin_api_x"},
        idempotency_key="k",
        settings=ActionSettings(),
    )
    assert prepared.url == "https://api.linear.app/graphql"
    assert prepared.masked()["headers"]["Authorization"] == "[redacted]"


def test_perform_can_resend_a_prepared_request(fake_linear: FakeLinear) -> None:
    config = linear_settings(fake_linear)
    prepared = prepare(
        linear(),
        render=render,
        secrets={"linear_api_key": fake_linear.api_key},
        idempotency_key="k",
        settings=config,
    )
    fake_linear.reply(Reply(drop=True))
    first = perform(prepared, clock=ManualClock(), timeout=2, settings=config)
    second = perform(prepared, clock=ManualClock(), timeout=2, settings=config)
    assert first.retryable and not first.ok
    assert second.ok and second.result is not None and second.result["identifier"] == "ENG-1"


# --- Keep-alive ---------------------------------------------------------------------------


@pytest.fixture
def keepalive_server() -> Iterator[KeepAliveServer]:
    """A raw HTTP server on 127.0.0.1 that counts connections and answers as scripted."""
    server = KeepAliveServer().start()
    yield server
    server.stop()


def test_consecutive_attempts_share_one_connection(keepalive_server: KeepAliveServer) -> None:
    action = webhook(f"{keepalive_server.url}/in")
    first, second = run(action), run(action)
    assert first.ok and second.ok, (first.error, second.error)
    assert len(keepalive_server.connections) == 1
    assert len(keepalive_server.connections[0].requests) == 2


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param((OK_THEN_CLOSE,), id="closed-while-idle"),
        pytest.param((CONNECTION_CLOSE,), id="connection-close"),
    ],
)
def test_a_connection_the_receiver_closed_does_not_fail_the_next_attempt(
    keepalive_server: KeepAliveServer, answers: tuple[str, ...]
) -> None:
    keepalive_server.answer(*answers)
    action = webhook(f"{keepalive_server.url}/in")
    assert run(action).ok
    if answers == (OK_THEN_CLOSE,):
        assert keepalive_server.idle_closed.wait(2)
    outcome = run(action)
    assert outcome.ok, outcome.error
    assert len(keepalive_server.connections) == 2
    assert keepalive_server.connections[1].requests == [
        b"POST /in HTTP/1.1\r\n" + b'{"incident": "inc-42", "title": "Checkout \\"down\\" again"}'
    ]


def test_a_connection_closed_after_the_request_went_out_fails_that_attempt_only(
    keepalive_server: KeepAliveServer,
) -> None:
    """The receiver read the request, then closed the kept-alive connection: it may have
    acted on it, so the transport does not send it again; the attempt fails (retryable,
    for the run's retry policy) and the next one goes out on a new connection."""
    keepalive_server.answer(OK, HANG_UP)
    action = webhook(f"{keepalive_server.url}/in")
    assert run(action).ok
    failed = run(action)
    assert not failed.ok and failed.retryable
    assert run(action).ok
    assert [len(conn.requests) for conn in keepalive_server.connections] == [2, 1]


def test_cookies_do_not_outlive_an_attempt(
    webhook_receiver: WebhookReceiver, fake_oauth: FakeOAuth
) -> None:
    """A cookie set in an attempt goes with its resent request, not with the next attempt."""
    webhook_receiver.reply(Reply(status=401, headers={"Set-Cookie": "lb=node-2; Path=/"}))
    action, config = oauth_webhook(webhook_receiver, fake_oauth), settings()
    assert run(action, secrets=OAUTH_SECRETS, config=config).ok
    assert run(action, secrets=OAUTH_SECRETS, config=config).ok
    cookies = [request.header("Cookie") for request in webhook_receiver.requests]
    assert cookies == [None, "lb=node-2", None]


# --- Wiring ------------------------------------------------------------------------------


def test_without_explicit_settings_the_app_config_is_used(
    webhook_receiver: WebhookReceiver, fake_linear: FakeLinear
) -> None:
    flask_app = Flask(__name__)
    flask_app.config.update(OUTBOUND_ALLOW="127.0.0.1", LINEAR_API_URL=fake_linear.endpoint)
    secrets = {"linear_api_key": fake_linear.api_key}
    with flask_app.app_context():
        assert ActionSettings.from_current_app().linear_api_url == fake_linear.endpoint
        reached = attempt(
            webhook(f"{webhook_receiver.url}/in"),
            render=render,
            secrets={},
            idempotency_key="k",
            clock=ManualClock(),
            timeout=2,
        )
        created = attempt(
            linear(), render=render, secrets=secrets, idempotency_key="k", clock=ManualClock()
        )
    assert reached.ok and created.ok
    refused = attempt(
        webhook(f"{webhook_receiver.url}/in"),
        render=render,
        secrets={},
        idempotency_key="k",
        clock=ManualClock(),
        timeout=2,
    )
    assert not refused.ok and "loopback" in (refused.error or "")  # no app: defaults
    assert len(webhook_receiver.requests) == 1


def test_settings_from_the_app_config_are_built_once_per_set_of_values() -> None:
    flask_app = Flask(__name__)
    flask_app.config.update(OUTBOUND_ALLOW="127.0.0.1")
    with flask_app.app_context():
        first = ActionSettings.from_current_app()
        assert first.allow == AllowList.parse("127.0.0.1")
        assert ActionSettings.from_current_app() is first

        flask_app.config["OUTBOUND_ALLOW"] = ["10.0.0.0/8"]
        assert ActionSettings.from_current_app().allow == AllowList.parse("10.0.0.0/8")
        flask_app.config["OUTBOUND_ALLOW"].append("hooks.internal")  # changed in place
        assert ActionSettings.from_current_app().allow == AllowList.parse(
            "10.0.0.0/8, hooks.internal"
        )
        flask_app.config.update(
            OUTBOUND_ALLOW="127.0.0.1",
            LINEAR_API_URL="https://linear.internal/graphql",
            OUTBOUND_CONNECT_TIMEOUT=2,
            OUTBOUND_REQUEST_TIMEOUT="7.5",
        )
        changed = ActionSettings.from_current_app()
        assert (changed.linear_api_url, changed.connect_timeout, changed.request_timeout) == (
            "https://linear.internal/graphql",
            2.0,
            7.5,
        )
        for name in ("LINEAR_API_URL", "OUTBOUND_CONNECT_TIMEOUT", "OUTBOUND_REQUEST_TIMEOUT"):
            del flask_app.config[name]
        assert ActionSettings.from_current_app() is first  # the same values again

        injected = ActionSettings(linear_api_url="https://injected.example/graphql")
        flask_app.config["ENGINE_ACTION_SETTINGS"] = injected
        assert ActionSettings.from_current_app() is injected


def test_a_changed_outbound_allow_is_enforced_at_the_next_attempt(
    keepalive_server: KeepAliveServer,
) -> None:
    """The connection the old allowlist let through is alive, and is not used."""
    flask_app = Flask(__name__)
    flask_app.config.update(OUTBOUND_ALLOW="127.0.0.1")
    action = webhook(f"{keepalive_server.url}/in")

    def attempt_now() -> AttemptOutcome:
        return attempt(
            action, render=render, secrets={}, idempotency_key="k", clock=ManualClock(), timeout=2
        )

    with flask_app.app_context():
        allowed = attempt_now()
        flask_app.config["OUTBOUND_ALLOW"] = "hooks.internal"
        refused = attempt_now()
    assert allowed.ok
    assert not refused.ok and not refused.retryable
    assert "loopback address" in (refused.error or "")
    assert len(keepalive_server.requests) == 1
    assert not keepalive_server.connections[0].closed_by_client.is_set()


def test_each_action_returns_the_result_shape_it_declares(
    webhook_receiver: WebhookReceiver, fake_jira: FakeJira, fake_linear: FakeLinear
) -> None:
    from app.engine.actions import RESULT_SHAPES

    outcomes = {
        "webhook": run(webhook(f"{webhook_receiver.url}/hook")),
        "jira": run(jira(), secrets=fake_jira.secrets()),
        "linear": run(
            linear(),
            secrets={"linear_api_key": fake_linear.api_key},
            config=linear_settings(fake_linear),
        ),
    }
    for kind, outcome in outcomes.items():
        assert outcome.ok and isinstance(outcome.result, dict), (kind, outcome.error)
        assert set(outcome.result) == set(RESULT_SHAPES[kind]), kind
