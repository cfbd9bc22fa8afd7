"""Run pages people can read: pretty-printed wrapped bodies, times to the second, per-step
durations, the branch a condition took, and one duration shared by the list and the page."""

from __future__ import annotations

import html
import re

import pytest

from tests.builders import benchmark_workflow
from tests.fakes.servers import json_reply
from tests.support import drain, runs_of

REPLY = {"ok": True, "message": "accepted-" + "x" * 200, "channel": {"name": "#payments"}}


@pytest.fixture(autouse=True)
def allow_loopback(app):
    """The webhook receiver lives on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


def step(page: str, node_id: str) -> str:
    match = re.search(rf'data-node="{node_id}">(.*?)</li>', page, re.S)
    assert match, node_id
    return match.group(1)


def test_bodies_are_pretty_printed_and_wrap(
    app, client, sign_in, worker, webhook_receiver, responder, make_enabled_workflow, open_incident
) -> None:
    webhook_receiver.reply(json_reply(200, REPLY), json_reply(200, {"ok": True}))
    workflow = make_enabled_workflow(benchmark_workflow(webhook_receiver.url))
    open_incident(title="Checkout down", priority="P1")
    drain(worker)
    (run,) = runs_of(workflow)
    sign_in(responder.email)
    first = html.unescape(step(client.get(f"/runs/{run.id}").text, "first"))
    # The request body (sent compact) and the response body come back indented.
    assert (
        '<pre class="body" tabindex="0" aria-label="Request body">{\n  "title": "Checkout down"\n}'
        in first
    )
    assert '{\n  "ok": true,\n  "message": "accepted-' in first
    assert '  "channel": {\n    "name": "#payments"\n  }' in first


def test_times_durations_and_branches_are_shown(
    app,
    client,
    sign_in,
    clock,
    worker,
    webhook_receiver,
    responder,
    make_enabled_workflow,
    open_incident,
) -> None:
    workflow = make_enabled_workflow(benchmark_workflow(webhook_receiver.url))
    open_incident(title="Slow refunds", priority="P3")
    drain(worker)
    (run,) = runs_of(workflow)
    clock.advance(minutes=3)
    sign_in(responder.email)
    page = client.get(f"/runs/{run.id}").text
    assert "took the false branch" in step(page, "is_p1")
    for skipped in ("first", "pause", "second"):
        assert "skipped (true branch)" in step(page, skipped)
    # Times to the second, with how long ago, the full date in the tooltip.
    started = run.started_at.strftime("%d %b %Y %H:%M:%S")
    assert re.search(
        rf'<time datetime="[^"]+" title="[^"]+ UTC">{started} UTC \(3 min ago\)</time>', page
    )
    assert 'data-testid="step-duration">took 0 ms<' in step(page, "is_p1")
    duration = re.search(r'data-testid="run-duration">([^<]+)<', page)
    assert duration and duration.group(1) == "0 ms"
    listed = client.get(f"/runs?workflow={workflow.id}").text
    assert f'data-testid="run-duration">{duration.group(1)}<' in listed
    assert "wall-clock time from the run&#39;s start to its end" in page
    assert "wall-clock time from the run&#39;s start to its end" in listed


def test_one_duration_while_a_run_waits_counts_the_wait(
    app, client, sign_in, clock, worker, responder, make_enabled_workflow, open_incident
) -> None:
    from tests.builders import branching

    workflow = make_enabled_workflow(branching(30))
    open_incident()
    drain(worker)
    clock.advance(minutes=12)
    (run,) = runs_of(workflow)
    sign_in(responder.email)
    page = client.get(f"/runs/{run.id}").text
    listed = client.get(f"/runs?workflow={workflow.id}").text
    assert 'data-testid="run-duration">12 min 0 s<' in page
    assert 'data-testid="run-duration">12 min 0 s<' in listed
    assert "(in 18 min)" in step(page, "wait")


def test_workflow_activity_is_on_the_incident_timeline_with_the_host_only(
    app, client, sign_in, worker, webhook_receiver, responder, make_enabled_workflow, open_incident
) -> None:
    from tests.builders import one_webhook

    webhook_receiver.reply(json_reply(200, {"ok": True}))
    definition = one_webhook(webhook_receiver.url + "/services/T0/B1/tok-9f8e7d?key=k-5c4b3a")
    definition["name"] = "Tell Slack"
    make_enabled_workflow(definition)
    incident = open_incident(title="Checkout down")
    drain(worker)
    sign_in(responder.email)
    page = client.get(f"/incidents/{incident.id}").text
    timeline = page[page.index('data-testid="timeline"') : page.index("</ol>")]
    texts = [html.unescape(t) for t in re.findall(r'<a href="/runs/[^"]+">([^<]+)</a>', timeline)]
    assert texts == [
        "Workflow Tell Slack completed",
        "Workflow Tell Slack sent a webhook to 127.0.0.1 — 200",
        "Workflow Tell Slack started (incident created)",
    ]
    assert "tok-9f8e7d" not in page and "k-5c4b3a" not in page
    # The incident's own events are still there (the fake engine clock sets the runs'
    # times, so their order against real-time events is not checked here).
    assert "Incident created" in timeline
