"""Once per incident and the loop guard, with the real engine: a workflow that resolves
and reopens its own incident through the API (its run as the actor) stops at the chain
depth with the reason on the timeline; two events at once start one once-per-incident run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from pydantic import ValidationError
from werkzeug.serving import make_server

from app.auth.tokens import create_token
from app.definition import WorkflowDefinition
from app.definition.builders import action_node, chain, trigger_config, webhook_config
from app.engine import guards
from app.engine.triggers import consume_events
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource, IncidentEventType
from app.incidents.models import Incident, IncidentEvent
from tests.support import drain, runs_of


@pytest.fixture(autouse=True)
def allow_loopback(app):
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


@pytest.fixture
def served_app(app: Flask) -> Iterator[str]:
    """The app under test served over HTTP on 127.0.0.1 (workflows call its API)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def timeline(incident: Incident, type_: IncidentEventType) -> list[IncidentEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id, IncidentEvent.type == type_)
            .order_by(IncidentEvent.id)
        )
    )


def escalation_workflow(url: str, **settings: Any) -> dict[str, Any]:
    defn = chain(
        action_node("tell", "webhook", webhook_config(url=url)),
        trigger=trigger_config("escalation"),
    )
    defn["settings"] |= settings
    return defn


# --- the settings, validated in the schema --------------------------------


def test_run_limits_are_optional_and_exclusive() -> None:
    plain = escalation_workflow("https://hooks.example.com/x")
    assert WorkflowDefinition.model_validate(plain).to_json()["settings"] == {
        "timeout": "5min",
        "enabled": True,
    }
    once = WorkflowDefinition.model_validate(
        escalation_workflow("https://h.example/x", **{"oncePerIncident": True})
    )
    assert once.settings.once_per_incident is True
    with pytest.raises(ValidationError) as error:
        WorkflowDefinition.model_validate(
            escalation_workflow(
                "https://h.example/x", oncePerIncident=True, oncePerIncidentMinutes=30
            )
        )
    (problem,) = error.value.errors()
    assert problem["loc"] == ("settings", "oncePerIncidentMinutes")
    assert "not both" in problem["msg"]
    for bad in (0, 43_201, "30", 1.5):
        with pytest.raises(ValidationError):
            WorkflowDefinition.model_validate(
                escalation_workflow("https://h.example/x", oncePerIncidentMinutes=bad)
            )


def test_run_markers_are_signed() -> None:
    marker = guards.run_marker("abc123")
    assert guards.run_from_marker(marker) == "abc123"
    assert guards.run_from_marker("abc123." + "0" * 32) is None
    assert guards.run_from_marker(marker.replace("abc123", "abc124")) is None
    assert guards.run_from_marker("abc123") is None


# --- once per incident ------------------------------------------------------


def test_once_per_incident_starts_one_run_and_says_why_not_again(
    app, worker, clock, webhook_receiver, make_enabled_workflow, open_incident, responder
) -> None:
    workflow = make_enabled_workflow(
        escalation_workflow(f"{webhook_receiver.url}/once", oncePerIncident=True)
    )
    incident = open_incident()
    actor = incidents.Actor(responder, ChangeSource.API)
    incidents.escalate(actor, incident)
    incidents.escalate(actor, incident)  # both events are handled in one pass
    db.session.commit()
    drain(worker)
    clock.advance(days=2)
    incidents.escalate(actor, db.session.get(Incident, incident.id))
    db.session.commit()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"
    assert len(webhook_receiver.requests) == 1
    skips = timeline(incident, IncidentEventType.WORKFLOW_SKIPPED)
    assert len(skips) == 2
    reason = skips[0].changes["reason"]["to"]
    assert "at most once per incident" in reason and run.id in reason
    assert skips[0].changes["workflow"]["to"] == workflow.name


def test_once_per_incident_per_window_starts_again_after_the_window(
    app, worker, clock, webhook_receiver, make_enabled_workflow, open_incident, responder
) -> None:
    workflow = make_enabled_workflow(
        escalation_workflow(f"{webhook_receiver.url}/window", oncePerIncidentMinutes=30)
    )
    incident = open_incident()
    actor = incidents.Actor(responder, ChangeSource.API)
    incidents.escalate(actor, incident)
    db.session.commit()
    drain(worker)
    clock.advance(minutes=29)
    incidents.escalate(actor, db.session.get(Incident, incident.id))
    db.session.commit()
    drain(worker)
    assert len(runs_of(workflow)) == 1
    clock.advance(minutes=2)  # 31 minutes after the first run
    incidents.escalate(actor, db.session.get(Incident, incident.id))
    db.session.commit()
    drain(worker)
    assert len(runs_of(workflow)) == 2
    assert len(timeline(incident, IncidentEventType.WORKFLOW_SKIPPED)) == 1
    assert (
        "per 30 minutes"
        in timeline(incident, IncidentEventType.WORKFLOW_SKIPPED)[0].changes["reason"]["to"]
    )


# Several workers consume events at once only on PostgreSQL (SKIP LOCKED); on SQLite one
# worker holds the database (tests/db/test_worker_lock.py).
@pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_events_handled_at_once_by_two_workers_start_one_run(
    app, clock, worker, make_enabled_workflow, open_incident, responder
) -> None:
    incident = open_incident()
    drain(worker)  # the incident_created event
    workflow = make_enabled_workflow(
        escalation_workflow("https://hooks.example.com/never", oncePerIncident=True)
    )
    actor = incidents.Actor(responder, ChangeSource.API)
    incidents.escalate(actor, incident)
    incidents.escalate(actor, incident)
    db.session.commit()

    first_consumed = threading.Event()
    second_started = threading.Event()
    finished: dict[str, float] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with app.app_context():
                assert consume_events(clock, limit=1) == 1
                first_consumed.set()
                second_started.wait(10)
                time.sleep(0.5)  # the second worker is now waiting on the guard row
                finished["first"] = time.monotonic()
                db.session.commit()
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)
            first_consumed.set()

    def second() -> None:
        try:
            first_consumed.wait(10)
            with app.app_context():
                second_started.set()
                assert consume_events(clock, limit=1) == 1
                finished["second"] = time.monotonic()
                db.session.commit()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    # The second worker could only decide once the first had committed its run.
    assert finished["second"] >= finished["first"]
    assert len(runs_of(workflow)) == 1
    assert len(timeline(incident, IncidentEventType.WORKFLOW_SKIPPED)) == 1


# --- the loop guard ---------------------------------------------------------


def test_a_workflow_that_resolves_and_reopens_its_incident_stops_at_the_chain_depth(
    app, client, sign_in, worker, served_app, make_enabled_workflow, open_incident, responder, admin
) -> None:
    app.config["LOOP_GUARD_DEPTH"] = 3
    _, token = create_token(admin, "loop")
    db.session.commit()

    def call(action: str) -> dict[str, Any]:
        return action_node(
            action,
            "webhook",
            webhook_config(
                url=f"{served_app}/api/v1/incidents/{{{{ incident.id }}}}/{action}",
                headers={},
                body="",
                auth={"type": "bearer", "token": "{{ secrets.api_token }}"},
            ),
        )

    defn = chain(
        call("resolve"),
        call("reopen"),
        trigger=trigger_config("state_changed", stateTransition={"to": "TRIGGERED"}),
    )
    defn["name"] = "Health check flip-flop"
    workflow = make_enabled_workflow(defn, secrets={"api_token": token})
    incident = open_incident()
    actor = incidents.Actor(responder, ChangeSource.WEB)
    incidents.change_status(actor, incident, "resolve")
    incidents.change_status(actor, db.session.get(Incident, incident.id), "reopen")
    db.session.commit()
    drain(worker, passes=200)

    runs = runs_of(workflow)
    assert [run.status for run in runs] == ["COMPLETED"] * 3
    # Each run after the first was started by the change the one before made.
    assert [run.caused_by_execution_id for run in runs] == [None, runs[0].id, runs[1].id]
    (skip,) = timeline(incident, IncidentEventType.WORKFLOW_SKIPPED)
    assert skip.changes["workflow"]["to"] == "Health check flip-flop"
    assert "loop guard" in skip.changes["reason"]["to"]
    shown_chain = skip.changes["chain"]["to"]
    assert shown_chain == " → ".join(f"Health check flip-flop (run {run.id})" for run in runs)
    # The API linked the changes to the runs that made them.
    reopened_by_runs = [
        e.execution_id
        for e in timeline(incident, IncidentEventType.STATE_CHANGED)
        if e.changes["status"]["to"] == "TRIGGERED" and e.execution_id
    ]
    assert reopened_by_runs == [run.id for run in runs]
    db.session.rollback()
    assert db.session.get(Incident, incident.id).status == "TRIGGERED"
    # The incident's timeline says why, naming the chain.
    sign_in(responder.email)
    page = client.get(f"/incidents/{incident.id}").text
    assert "Workflow skipped" in page and "Not started by the loop guard" in page
    assert f"Health check flip-flop (run {runs[0].id})" in page


def test_a_forged_run_marker_is_refused_with_a_clear_error(app, client, admin, open_incident):
    _, token = create_token(admin, "forger")
    db.session.commit()
    incident = open_incident()
    response = client.post(
        f"/api/v1/incidents/{incident.id}/acknowledge",
        headers={"Authorization": f"Bearer {token}", guards.RUN_HEADER: "abc." + "0" * 32},
    )
    assert response.status_code == 400
    assert "X-IncidentFlow-Run" in response.get_json()["error"]["message"]
    db.session.rollback()
    assert db.session.get(Incident, incident.id).status == "TRIGGERED"
