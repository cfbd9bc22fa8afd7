"""Run pages: the timeline of a run, cancel and re-run, runs on the incident page."""

from __future__ import annotations

import re

from app.definition.builders import chain, condition_node, trigger_config
from app.extensions import db
from tests.builders import branching
from tests.conftest import csrf_token_from
from tests.support import drain, runs_of


def test_the_run_page_shows_each_node_and_refreshes_while_active(
    app, client, sign_in, clock, worker, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    open_incident(title="Checkout down")
    drain(worker)
    (run,) = runs_of(workflow)
    sign_in(responder.email)
    page = client.get(f"/runs/{run.id}").text
    assert 'data-testid="run-status">Running<' in page
    assert 'hx-trigger="every 2s"' in page
    steps = re.findall(r'data-node="([^"]+)"', page)
    assert steps == ["start", "wait", "still_open", "yes", "no"]
    assert re.search(r'data-node="wait">.*?node-waiting', page, re.S)

    clock.advance(minutes=30)
    drain(worker)
    page = client.get(f"/runs/{run.id}", headers={"HX-Request": "true"}).text
    assert "<html" not in page and 'hx-trigger="every 2s"' not in page
    assert 'data-testid="run-status">Completed<' in page
    assert re.search(r'data-node="no">.*?node-skipped', page, re.S)


def test_cancel_from_the_page_then_run_again(
    app, client, sign_in, clock, worker, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    sign_in(responder.email)
    csrf = csrf_token_from(client.get(f"/runs/{run.id}").text)
    response = client.post(f"/runs/{run.id}/cancel", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert runs_of(workflow)[0].status == "CANCELLED"
    again = client.post(
        f"/runs/{run.id}/cancel", data={"csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert again.status_code == 409 and "already ended" in again.text
    rerun = client.post(f"/runs/{run.id}/rerun", data={"csrf_token": csrf})
    assert rerun.status_code == 303
    new = runs_of(workflow)[-1]
    assert rerun.headers["Location"] == f"/runs/{new.id}"
    assert new.triggered_by == "manual" and new.status == "PENDING"


def test_run_a_workflow_by_hand_from_the_incident_page(
    app, client, sign_in, clock, worker, responder, make_enabled_workflow, open_incident
) -> None:
    manual = make_enabled_workflow(
        chain(condition_node("check"), trigger=trigger_config("manual"))
        | {"name": "Page the on-call"}
    )
    incident = open_incident()
    sign_in(responder.email)
    panel = client.get(f"/runs/incident/{incident.id}").text
    assert "Page the on-call" in panel
    response = client.post(
        f"/runs/incident/{incident.id}/start",
        data={"csrf_token": csrf_token_from(panel), "workflow_id": manual.id},
    )
    assert response.status_code == 303
    (run,) = runs_of(manual)
    drain(worker)
    db.session.rollback()
    assert runs_of(manual)[0].status == "COMPLETED"
    assert run.triggered_by_user_id == responder.id


def test_other_teams_runs_are_not_found(
    app, client, sign_in, clock, worker, make_user, make_team, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(branching(30))
    incident = open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    outsider = make_user("outsider@example.com", teams=[make_team("Elsewhere")])
    sign_in(outsider.email)
    csrf = csrf_token_from(client.get("/incidents").text)
    assert client.get(f"/runs/{run.id}").status_code == 404
    assert client.post(f"/runs/{run.id}/cancel", data={"csrf_token": csrf}).status_code == 404
    assert client.get(f"/runs/incident/{incident.id}").status_code == 404
    assert client.get(f"/runs?incident={incident.id}").status_code == 404
    assert runs_of(workflow)[0].status == "RUNNING"
