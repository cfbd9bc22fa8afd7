"""Builders and helpers shared by test modules, so no test module imports another.

Workflow definitions the engine tests run (on the embedded worker and on Celery),
browser steps in the editor, and page helpers: signed-in clients, form and htmx
posts, the database as text.
Node-level definition builders are in ``app/definition/builders.py``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.db import utcnow
from app.definition.builders import (
    action_node,
    condition_node,
    definition,
    delay_node,
    edge,
    trigger_config,
    trigger_node,
    webhook_config,
)
from app.extensions import db
from app.workflows.models import ExecutionAttempt, WorkerHeartbeat
from tests.conftest import csrf_token_from, sign_in_client

# --- workflow definitions -----------------------------------------------------------


def webhook(
    node_id: str,
    url: str,
    body: str = '{"title": {{ incident.title | tojson }}}',
    attempts: int = 3,
    **config: Any,
) -> dict[str, Any]:
    node = action_node(
        node_id, "webhook", webhook_config(url=url, body=body, **config), name=f"Call {node_id}"
    )
    node["data"]["retry"]["attempts"] = attempts
    return node


def one_webhook(url: str) -> dict[str, Any]:
    """trigger -> webhook."""
    return definition(
        [trigger_node(), webhook("hook", url)], [edge("start", "hook")], trigger_config()
    )


def benchmark_workflow(receiver_url: str) -> dict[str, Any]:
    """trigger -> condition -> webhook -> delay(0) -> webhook."""
    return definition(
        [
            trigger_node(),
            condition_node("is_p1", "priority", "P1"),
            webhook("first", receiver_url + "/first"),
            delay_node("pause", 0),
            webhook(
                "second",
                receiver_url + "/second",
                body='{"first": {{ steps.first.result.status | tojson }}}',
            ),
        ],
        [
            edge("start", "is_p1"),
            edge("is_p1", "first", "true"),
            edge("first", "pause"),
            edge("pause", "second"),
        ],
        trigger_config("incident_created"),
    )


def branching(minutes: int = 30) -> dict[str, Any]:
    """trigger -> wait -> is it still TRIGGERED? -> true: wait 0 / false: wait 1."""
    return definition(
        [
            trigger_node(),
            delay_node("wait", minutes),
            condition_node("still_open", "status", "TRIGGERED"),
            delay_node("yes", 0),
            delay_node("no", 1),
        ],
        [
            edge("start", "wait"),
            edge("wait", "still_open"),
            edge("still_open", "yes", "true"),
            edge("still_open", "no", "false"),
        ],
        trigger_config("incident_created"),
    )


# --- browser (Playwright) --------------------------------------------------------


def htmx_settled(page: Any) -> None:
    """Wait until htmx has swapped and processed new content (its hx- attributes are live
    only after the settle step)."""
    from playwright.sync_api import expect

    busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
    expect(page.locator(busy)).to_have_count(0)


def add_node(page: Any, kind: str, after: str, branch: str | None = None) -> None:
    """Add a node of ``kind`` after the node ``after`` (on ``branch``) in the editor."""
    from playwright.sync_api import expect

    htmx_settled(page)
    panel = page.locator("#add-node-panel")
    if panel.get_by_label("After node").input_value() != after:
        panel.get_by_label("After node").select_option(after)
        expect(panel.get_by_label("After node")).to_have_value(after)
        htmx_settled(page)
    panel.get_by_label("New node", exact=True).select_option(kind)
    if branch:
        expect(panel.get_by_label("On the branch")).to_be_visible()
        panel.get_by_label("On the branch").select_option(branch)
    else:
        expect(panel.get_by_label("On the branch")).to_have_count(0)
    panel.get_by_role("button", name="Add node").click()


def apply(page: Any) -> None:
    """Apply the node panel's changes."""
    htmx_settled(page)
    page.locator("#node-panel").get_by_role("button", name="Apply changes").click()


# --- pages --------------------------------------------------------------------------

HX_CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')


def signed_in(app: Flask, email: str, password: str | None = None) -> FlaskClient:
    """A new client (its own cookie jar, like another browser) signed in as ``email``."""
    client = app.test_client()
    sign_in_client(client, email, password)
    return client


def sign_in_status(app: Flask, email: str, password: str) -> int:
    """The status a new client gets posting the real sign-in form (303 when signed in)."""
    client = app.test_client()
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
    ).status_code


def post(
    client: FlaskClient, url: str, data: dict[str, object] | None = None, **kwargs: Any
) -> TestResponse:
    """A plain form post, with the CSRF token a page would carry."""
    token = csrf_token_from(client.get("/").text)
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def hx_post(client: FlaskClient, url: str, data: dict[str, object] | None = None) -> TestResponse:
    """A post as htmx sends it: HX-Request, and the CSRF token from ``<body hx-headers>``."""
    match = HX_CSRF.search(client.get("/").text)
    assert match, "page has no hx-headers CSRF token"
    return client.post(
        url, data=data or {}, headers={"HX-Request": "true", "X-CSRFToken": match.group(1)}
    )


def database_text() -> str:
    """Every row of every table, as text: a plain secret must not be found in it."""
    with db.engine.connect() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in db.metadata.sorted_tables
            for row in conn.execute(table.select())
        )


# --- engine and operations helpers --------------------------------------------------


def attempts_of(run) -> list[ExecutionAttempt]:
    return list(
        db.session.scalars(
            sa.select(ExecutionAttempt)
            .where(ExecutionAttempt.execution_id == run.id)
            .order_by(ExecutionAttempt.id)
        )
    )


def heartbeat(worker_id: str, age_seconds: float, backend: str = "embedded") -> None:
    seen = utcnow() - timedelta(seconds=age_seconds)
    db.session.add(
        WorkerHeartbeat(
            id=worker_id,
            hostname="host",
            pid=1,
            backend=backend,
            started_at=seen,
            last_seen_at=seen,
        )
    )
    db.session.commit()


OPS_TOKEN = "ops-token-0123456789"


def ready(client: Any) -> tuple[int, dict[str, Any]]:
    """The readiness report with its details (shown to the metrics token)."""
    client.application.config["METRICS_TOKEN"] = OPS_TOKEN
    response = client.get("/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, response.get_json()


# Templates that would build enormous values; each must fail its own node quickly.
BOMBS = {
    "tower": '{"n": {{ 10 ** 64 ** 64 ** 64 ** 64 }}}',
    "pad": '{"n": "{{ \'\'.ljust(10 ** 9) }}"}',
    "spec": '{"n": "{{ \'{:>1000000000}\'.format(incident.title) }}"}',
    "double": "{% set ns = namespace(s=incident.title) %}{% for i in range(64) %}"
    '{% set ns.s = ns.s ~ ns.s %}{% endfor %}{"n": {{ ns.s | tojson }}}',
}
