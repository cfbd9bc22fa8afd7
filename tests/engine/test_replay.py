"""Replaying failed runs through the real engine, against a local webhook receiver: from
the failed step or from the start, on the run's own version or the workflow's current one;
bulk replays after a receiver outage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.auth.tokens import create_token
from app.definition.builders import definition, delay_node, edge, trigger_config, trigger_node
from app.errors import Conflict, Forbidden
from app.extensions import db
from app.ops.models import AuditEntry
from app.runs import replay
from app.runs.replay import ReplayMode, ReplayVersion
from app.runs.service import cancel_run
from app.workflows import service as workflows
from app.workflows.models import WorkflowExecution
from tests.builders import webhook
from tests.conftest import csrf_token_from
from tests.fakes.servers import WebhookReceiver, json_reply
from tests.support import drain, runs_of

NODE, START = ReplayMode.NODE, ReplayMode.START
OWN, CURRENT = ReplayVersion.OWN, ReplayVersion.CURRENT


@pytest.fixture(autouse=True)
def allow_loopback(app):
    """The receiver lives on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


def two_hooks(url: str, second_path: str = "/two") -> dict[str, Any]:
    """trigger -> one -> two; two sends what one got back."""
    return definition(
        [
            trigger_node(),
            webhook("one", url + "/one", attempts=1),
            webhook(
                "two",
                url + second_path,
                body='{"first": {{ steps.one.result.status | tojson }}}',
                attempts=1,
            ),
        ],
        [edge("start", "one"), edge("one", "two")],
        trigger_config("incident_created"),
    )


@pytest.fixture
def failed_run(worker, webhook_receiver, make_enabled_workflow, open_incident, admin):
    """A run whose first call went through and whose second failed (503)."""
    workflow = make_enabled_workflow(two_hooks(webhook_receiver.url))
    webhook_receiver.reply(json_reply(200, {"ok": True}), json_reply(503, {"error": "down"}))
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and run.error.startswith("Call two")
    webhook_receiver.requests.clear()
    return run


def replay_now(user, run, mode, on, clock) -> WorkflowExecution:
    origin = db.session.get(WorkflowExecution, run.id)
    new = replay.replay(user, origin, mode, on, clock)
    db.session.commit()
    return new


def paths(receiver: WebhookReceiver) -> list[str]:
    return [r.path for r in receiver.requests]


def test_replay_from_the_failed_step_carries_results_over(
    app, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    new = replay_now(admin, failed_run, NODE, OWN, clock)
    drain(worker)
    run = db.session.get(WorkflowExecution, new.id)
    assert run.status == "COMPLETED", run.error
    # Only the failed step is sent again, and it still sees the first step's result.
    assert paths(webhook_receiver) == ["/two"]
    assert webhook_receiver.last.json() == {"first": 200}
    original = {r["nodeId"]: r for r in failed_run.completed_nodes}
    carried = {r["nodeId"]: r for r in run.completed_nodes}
    assert carried["one"] == original["one"]
    assert carried["two"]["status"] == "completed"
    assert (run.replay_of_id, run.replay_mode, run.workflow_version) == (failed_run.id, "node", 1)
    # A new run, so a new Idempotency-Key for the step sent again.
    assert webhook_receiver.last.header("Idempotency-Key") not in (None, "")
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "run.replayed")
    ).one()
    assert entry.details["run_id"] == run.id and entry.details["replay_of"] == failed_run.id


def test_replay_from_the_start_sends_everything_again(
    app, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    new = replay_now(admin, failed_run, START, OWN, clock)
    drain(worker)
    run = db.session.get(WorkflowExecution, new.id)
    assert run.status == "COMPLETED", run.error
    assert paths(webhook_receiver) == ["/one", "/two"]
    assert run.replay_mode == "start"


def test_replay_on_the_current_version_or_the_runs_own(
    app, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    workflow = workflows.get_workflow(admin, failed_run.workflow_id)
    fixed = two_hooks(webhook_receiver.url, second_path="/two-fixed")
    workflows.save_version(admin, workflow, fixed, base_version=1)
    db.session.commit()

    on_current = replay_now(admin, failed_run, NODE, CURRENT, clock)
    drain(worker)
    assert paths(webhook_receiver) == ["/two-fixed"]
    assert webhook_receiver.last.json() == {"first": 200}
    assert db.session.get(WorkflowExecution, on_current.id).workflow_version == 2

    webhook_receiver.requests.clear()
    on_own = replay_now(admin, failed_run, START, OWN, clock)
    drain(worker)
    assert paths(webhook_receiver) == ["/one", "/two"]
    run = db.session.get(WorkflowExecution, on_own.id)
    assert (run.status, run.workflow_version) == ("COMPLETED", 1)

    # The preview names what differs and what will run.
    plan = replay.plan_replay(
        admin, db.session.get(WorkflowExecution, failed_run.id), NODE, CURRENT
    )
    assert plan.diff is not None and [n.id for n in plan.diff.nodes_changed] == ["two"]
    assert [s.id for s in plan.carried_steps] == ["start", "one"]
    assert [s.id for s in plan.will_run] == ["two"]


def test_replay_from_a_step_the_current_version_removed_is_refused(
    app, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    workflow = workflows.get_workflow(admin, failed_run.workflow_id)
    shorter = definition(
        [trigger_node(), webhook("one", webhook_receiver.url + "/one")],
        [edge("start", "one")],
        trigger_config("incident_created"),
    )
    workflows.save_version(admin, workflow, shorter, base_version=1)
    db.session.commit()
    origin = db.session.get(WorkflowExecution, failed_run.id)
    with pytest.raises(Conflict, match="no longer exists in version 2"):
        replay.replay(admin, origin, NODE, CURRENT, clock)
    db.session.rollback()
    # From the start on that version is fine.
    replay_now(admin, failed_run, START, CURRENT, clock)
    drain(worker)
    assert paths(webhook_receiver) == ["/one"]


def test_only_editors_replay_and_only_ended_failures(
    app, admin, responder, clock, worker, webhook_receiver, failed_run
) -> None:
    origin = db.session.get(WorkflowExecution, failed_run.id)
    # A global workflow: members see its runs on their incidents, only admins change it.
    with pytest.raises(Forbidden):
        replay.replay(responder, origin, NODE, OWN, clock)
    db.session.rollback()
    new = replay_now(admin, failed_run, NODE, OWN, clock)
    drain(worker)
    done = db.session.get(WorkflowExecution, new.id)
    assert done.status == "COMPLETED"
    with pytest.raises(Conflict, match="Only failed, timed-out or cancelled"):
        replay.replay(admin, done, NODE, OWN, clock)


def test_bulk_replay_after_an_outage_delivers_each_failed_run_once(
    app, admin, clock, worker, make_enabled_workflow, open_incident
) -> None:
    app.config["REPLAY_RUNS_PER_SECOND"] = 2.0
    receiver = WebhookReceiver().start()
    port = receiver.port
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", receiver.url + "/hook", attempts=1)],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    before = clock.now()
    receiver.stop()  # the destination goes down: connections are refused
    for n in range(3):
        open_incident(title=f"Outage {n}")
    drain(worker)
    failed = runs_of(workflow)
    assert [r.status for r in failed] == ["FAILED"] * 3
    receiver = WebhookReceiver(port=port).start()  # back, at the same address
    try:
        targets = replay.bulk_workflows(admin, workflow_id=workflow.id)
        window = (before - timedelta(minutes=1), clock.now() + timedelta(minutes=1))
        bulk = replay.plan_bulk(admin, targets, *window, NODE, OWN)
        assert (bulk.count, bulk.already_replayed) == (3, 0)
        started = replay.bulk_replay(admin, bulk, clock)
        db.session.commit()
        # Staggered: one every half second, the first now.
        due = sorted(r.due_at - clock.now() for r in started)
        assert due == [timedelta(0), timedelta(seconds=0.5), timedelta(seconds=1)]
        drain(worker)
        assert len(receiver.requests) == 1  # only the first was due
        clock.advance(seconds=1)
        drain(worker)
        assert len(receiver.requests) == 3
        titles = sorted(r.json()["title"] for r in receiver.requests)
        assert titles == ["Outage 0", "Outage 1", "Outage 2"]

        # A second bulk action over the same window replays nothing again.
        again = replay.plan_bulk(admin, targets, *window, NODE, OWN)
        assert (again.count, again.already_replayed) == (0, 3)
        assert replay.bulk_replay(admin, again, clock) == []
        db.session.commit()
        drain(worker)
        assert len(receiver.requests) == 3
        replays = [r for r in runs_of(workflow) if r.replay_of_id]
        assert sorted(r.replay_of_id for r in replays) == sorted(r.id for r in failed)
        assert {r.status for r in replays} == {"COMPLETED"}
    finally:
        receiver.stop()


def test_replay_from_the_pages(
    app, client, sign_in, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    sign_in(admin.email)
    page = client.get(f"/runs/{failed_run.id}").text
    assert f'href="/runs/{failed_run.id}/replay"' in page
    preview = client.get(f"/runs/{failed_run.id}/replay?mode=node&version=own")
    assert preview.status_code == 200
    assert "Carried over from this run" in preview.text
    will_run = preview.text.split("Will run", 1)[1]
    assert "<code>two</code>" in will_run and "<code>one</code>" not in will_run
    csrf = csrf_token_from(preview.text)
    response = client.post(
        f"/runs/{failed_run.id}/replay",
        data={"csrf_token": csrf, "mode": "node", "version": "own"},
    )
    assert response.status_code == 303
    (new,) = [
        r
        for r in runs_of(db.session.get(WorkflowExecution, failed_run.id).workflow)
        if r.replay_of_id
    ]
    assert response.headers["Location"] == f"/runs/{new.id}"
    drain(worker)
    shown = client.get(f"/runs/{new.id}").text
    assert f'Replay of <a href="/runs/{failed_run.id}">#{failed_run.id[-8:]}</a>' in shown
    listed = client.get(f"/runs?workflow={new.workflow_id}").text
    assert f"(replay of #{failed_run.id[-8:]})" in listed
    origin_page = client.get(f"/runs/{failed_run.id}").text
    assert f'href="/runs/{new.id}">#{new.id[-8:]}</a>' in origin_page.split("Replayed as", 1)[1]

    # Bad choices are named; a refused replay says why and starts nothing.
    bad = client.post(
        f"/runs/{failed_run.id}/replay", data={"csrf_token": csrf, "mode": "sideways"}
    )
    assert bad.status_code == 422 and "from the failed node" in bad.text
    done = client.post(f"/runs/{new.id}/replay", data={"csrf_token": csrf, "mode": "start"})
    assert done.status_code == 409 and "this one is completed" in done.text
    assert len(runs_of(db.session.get(WorkflowExecution, failed_run.id).workflow)) == 2


def test_members_without_edit_rights_see_no_replay(
    app, client, sign_in, responder, failed_run
) -> None:
    sign_in(responder.email)
    assert "/replay" not in client.get(f"/runs/{failed_run.id}").text
    assert client.get(f"/runs/{failed_run.id}/replay").status_code == 403
    csrf = csrf_token_from(client.get(f"/runs/{failed_run.id}").text)
    refused = client.post(f"/runs/{failed_run.id}/replay", data={"csrf_token": csrf})
    assert refused.status_code == 403


def test_bulk_replay_pages_count_confirm_and_replay_once(
    app,
    client,
    sign_in,
    responder,
    clock,
    worker,
    webhook_receiver,
    make_enabled_workflow,
    open_incident,
) -> None:
    team = responder.team
    workflow = make_enabled_workflow(two_hooks(webhook_receiver.url), team=team)
    webhook_receiver.reply(*[json_reply(503, {"error": "down"}) for _ in range(2)])
    open_incident(title="A")
    open_incident(title="B")
    drain(worker)
    assert [r.status for r in runs_of(workflow)] == ["FAILED", "FAILED"]
    sign_in(responder.email)
    window = {
        "since": (clock.now() - timedelta(hours=1)).isoformat(),
        "until": (clock.now() + timedelta(hours=1)).isoformat(),
    }
    page = client.get("/runs/replay-failed", query_string={"team": team.id, **window})
    assert page.status_code == 200
    assert 'data-testid="bulk-count">2<' in page.text
    csrf = csrf_token_from(page.text)
    form = {"csrf_token": csrf, "team": team.id, "mode": "start", **window}
    done = client.post("/runs/replay-failed", data=form)
    assert done.status_code == 303
    assert len([r for r in runs_of(workflow) if r.replay_of_id]) == 2
    again = client.get("/runs/replay-failed", query_string={"workflow": workflow.id, **window})
    assert 'data-testid="bulk-count">0<' in again.text and "2 failed runs were" in again.text
    assert client.post("/runs/replay-failed", data=form).status_code == 303
    assert len(runs_of(workflow)) == 4
    clock.advance(seconds=5)
    drain(worker)
    assert {r.status for r in runs_of(workflow) if r.replay_of_id} == {"COMPLETED"}
    # An inverted window is named; another team's workflows are not offered.
    bad = client.get(
        "/runs/replay-failed",
        query_string={"team": team.id, "since": window["until"], "until": window["since"]},
    )
    assert bad.status_code == 422 and "must come after its start" in bad.text


def bearer(user) -> dict[str, str]:
    _, token = create_token(user, "replays")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_replay_over_the_api(
    app, client, admin, responder, clock, worker, webhook_receiver, failed_run
) -> None:
    headers = bearer(admin)
    url = f"/api/v1/runs/{failed_run.id}/replay"
    preview = client.get(url, headers=headers, query_string={"mode": "node"})
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert [s["id"] for s in body["carriedOver"]] == ["start", "one"]
    assert [s["id"] for s in body["willRun"]] == ["two"]
    assert body["problem"] is None and body["versionChanges"] is None
    assert client.get(url, headers=bearer(responder)).status_code == 403

    key = {"Idempotency-Key": "replay-once-1"}
    started = client.post(url, headers={**headers, **key}, json={"mode": "node"})
    assert started.status_code == 201, started.get_json()
    run = started.get_json()
    assert run["replayOfId"] == failed_run.id and run["replayMode"] == "node"
    assert started.headers["Location"] == f"/api/v1/runs/{run['id']}"
    # The same key again answers the first response and starts nothing.
    repeat = client.post(url, headers={**headers, **key}, json={"mode": "node"})
    assert repeat.get_json()["id"] == run["id"]
    drain(worker)
    origin = client.get(f"/api/v1/runs/{failed_run.id}", headers=headers).get_json()
    assert origin["replayedAs"] == [run["id"]]
    assert client.get(f"/api/v1/runs/{run['id']}", headers=headers).get_json()["status"] == (
        "COMPLETED"
    )
    assert [r.path for r in webhook_receiver.requests] == ["/two"]
    refused = client.post(f"/api/v1/runs/{run['id']}/replay", headers=headers, json={})
    assert refused.status_code == 409
    bad = client.post(url, headers=headers, json={"mode": "sideways"})
    assert bad.status_code == 422


def test_bulk_replay_over_the_api(
    app, client, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    headers = bearer(admin)
    window = {
        "workflowId": failed_run.workflow_id,
        "since": (clock.now() - timedelta(hours=1)).isoformat(),
        "until": (clock.now() + timedelta(hours=1)).isoformat(),
    }
    counted = client.get("/api/v1/replays", headers=headers, query_string=window)
    assert counted.status_code == 200, counted.get_json()
    assert counted.get_json()["count"] == 1
    assert counted.get_json()["runIds"] == [failed_run.id]
    started = client.post("/api/v1/replays", headers=headers, json=window)
    assert started.status_code == 201, started.get_json()
    (replay_id,) = started.get_json()["runIds"]
    again = client.post("/api/v1/replays", headers=headers, json=window).get_json()
    assert (again["count"], again["alreadyReplayed"], again["runIds"]) == (0, 1, [])
    drain(worker)
    assert [r.path for r in webhook_receiver.requests] == ["/two"]
    naive = {**window, "since": "2026-01-01T00:00:00"}
    assert client.post("/api/v1/replays", headers=headers, json=naive).status_code == 422


def test_a_cancelled_run_replays_from_the_step_it_was_waiting_at(
    app, admin, clock, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), delay_node("pause", 30), webhook("hook", webhook_receiver.url)],
            [edge("start", "pause"), edge("pause", "hook")],
            trigger_config("incident_created"),
        )
    )
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.parked_until is not None
    cancel_run(admin, run, clock)
    db.session.commit()
    plan = replay.plan_replay(admin, run, NODE, OWN)
    assert plan.problem is None and plan.from_node.id == "pause"
    assert [s.id for s in plan.will_run] == ["pause", "hook"]
    new = replay_now(admin, run, NODE, OWN, clock)
    drain(worker)
    assert webhook_receiver.requests == []  # waiting again, as the original was
    clock.advance(minutes=30)
    drain(worker)
    assert db.session.get(WorkflowExecution, new.id).status == "COMPLETED"
    assert len(webhook_receiver.requests) == 1


def test_two_bulk_replays_racing_over_one_run_replay_it_once(
    app, admin, clock, worker, webhook_receiver, failed_run
) -> None:
    targets = replay.bulk_workflows(admin, workflow_id=failed_run.workflow_id)
    window = (clock.now() - timedelta(hours=1), clock.now() + timedelta(hours=1))
    first = replay.plan_bulk(admin, targets, *window, START, OWN)
    second = replay.plan_bulk(admin, targets, *window, START, OWN)  # planned before either ran
    assert first.count == second.count == 1
    replay.bulk_replay(admin, first, clock)
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        replay.bulk_replay(admin, second, clock)
    db.session.rollback()
    drain(worker)
    assert paths(webhook_receiver) == ["/one", "/two"]
