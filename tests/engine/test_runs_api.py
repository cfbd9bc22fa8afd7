"""Runs over the API: start by hand, read the timeline with attempts, cancel."""

from __future__ import annotations

from app.auth.tokens import create_token
from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.extensions import db
from tests.builders import branching, webhook
from tests.support import drain, runs_of


def bearer(user) -> dict[str, str]:
    _, token = create_token(user, "runs")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_start_a_run_by_hand_read_it_and_see_its_attempts(
    app, client, worker, responder, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("manual"),
        )
    )
    incident = open_incident()
    headers = bearer(responder)
    started = client.post(
        f"/api/v1/incidents/{incident.id}/runs", headers=headers, json={"workflowId": workflow.id}
    )
    assert started.status_code == 201, started.get_json()
    run = started.get_json()
    assert run["status"] == "PENDING" and run["triggeredBy"] == "manual"
    assert started.headers["Location"] == f"/api/v1/runs/{run['id']}"
    drain(worker)
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=headers).get_json()
    assert detail["status"] == "COMPLETED"
    assert [n["nodeId"] for n in detail["completedNodes"]] == ["start", "hook"]
    (attempt,) = detail["attempts"]
    assert attempt["ok"] and attempt["statusCode"] == 200 and attempt["nodeId"] == "hook"
    listed = client.get(f"/api/v1/incidents/{incident.id}/runs", headers=headers).get_json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]
    by_workflow = client.get(f"/api/v1/workflows/{workflow.id}/runs", headers=headers)
    assert [r["id"] for r in by_workflow.get_json()["items"]] == [run["id"]]


def test_only_manual_workflows_start_by_hand(
    app, client, responder, make_enabled_workflow, open_incident, webhook_receiver
) -> None:
    workflow = make_enabled_workflow(branching(0))  # an incident_created trigger
    incident = open_incident()
    response = client.post(
        f"/api/v1/incidents/{incident.id}/runs",
        headers=bearer(responder),
        json={"workflowId": workflow.id},
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["loc"] == "workflowId"


def test_cancel_a_waiting_run_then_cancelling_again_is_a_conflict(
    app, client, worker, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    headers = bearer(responder)
    cancelled = client.post(f"/api/v1/runs/{run.id}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "CANCELLED"
    again = client.post(f"/api/v1/runs/{run.id}/cancel", headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"


def test_another_teams_runs_are_not_found(
    app, client, worker, make_user, make_team, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    incident = open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    headers = bearer(make_user("outsider@example.com", teams=[make_team("Elsewhere")]))
    assert client.get(f"/api/v1/runs/{run.id}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/runs/{run.id}/cancel", headers=headers).status_code == 404
    assert client.get(f"/api/v1/incidents/{incident.id}/runs", headers=headers).status_code == 404
    assert runs_of(workflow)[0].status == "RUNNING"


def test_a_run_started_twice_with_one_idempotency_key_starts_once(
    app, client, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", "https://hooks.example.com/hook")],
            [edge("start", "hook")],
            trigger_config("manual"),
        )
    )
    incident = open_incident()
    headers = {**bearer(responder), "Idempotency-Key": "run-once-1"}
    path = f"/api/v1/incidents/{incident.id}/runs"
    first = client.post(path, headers=headers, json={"workflowId": workflow.id})
    again = client.post(path, headers=headers, json={"workflowId": workflow.id})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(runs_of(workflow)) == 1
    # Without the key, a second request starts a second run.
    assert client.post(path, headers=bearer(responder), json={"workflowId": workflow.id})
    assert len(runs_of(workflow)) == 2


def test_a_run_whose_attempt_got_no_response_reads_with_response_null(
    app, client, responder, make_enabled_workflow, open_incident
) -> None:
    from app.db import utcnow
    from app.workflows.models import ExecutionAttempt, WorkflowExecution

    workflow = make_enabled_workflow(branching(30))
    incident = open_incident()
    run = WorkflowExecution(
        workflow_id=workflow.id,
        workflow_version=workflow.version,
        definition_snapshot=workflow.definition,
        incident_id=incident.id,
        triggered_by="manual",
        status="FAILED",
    )
    db.session.add(run)
    db.session.flush()
    db.session.add(
        ExecutionAttempt(
            execution_id=run.id,
            node_id="hook",
            number=1,
            ok=False,
            status_code=None,
            request={"method": "POST", "url": "https://hooks.example.com/hook"},
            response=None,
            error="Connection refused",
            started_at=utcnow(),
        )
    )
    db.session.commit()
    response = client.get(f"/api/v1/runs/{run.id}", headers=bearer(responder))
    assert response.status_code == 200, response.text
    (attempt,) = response.get_json()["attempts"]
    assert attempt["response"] is None and attempt["error"] == "Connection refused"
