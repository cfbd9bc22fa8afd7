"""Backtests: the runs a definition would have started over stored incident events, the
path each would have taken on the incident as it was, and nothing sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.definition import WorkflowDefinition
from app.definition.builders import condition_node, definition, edge, trigger_config, trigger_node
from app.engine.backtest import backtest
from app.engine.dry_run import dry_run
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.models import IncidentEvent
from app.incidents.schemas import IncidentUpdate
from app.workflows import secrets as secret_store
from app.workflows import service as workflows
from app.workflows.enums import ScopeType
from tests.builders import webhook

TOKEN = "backtest-secret-token-9"


@pytest.fixture(autouse=True)
def allow_loopback(app):
    """Even allowed to reach 127.0.0.1, a backtest must send nothing."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


@pytest.fixture
def p1_or_other(admin, webhook_receiver):
    """A disabled workflow: on a new incident, P1 -> page, otherwise -> log (with a secret)."""
    defn = definition(
        [
            trigger_node(),
            condition_node("is_p1", field="priority", value="P1"),
            webhook(
                "page",
                webhook_receiver.url + "/page",
                body='{"title": {{ incident.title | tojson }}, "level": '
                "{{ incident.escalationLevel }}}",
                headers={"Content-Type": "application/json", "X-Token": "{{ secrets.token }}"},
            ),
            webhook("log", webhook_receiver.url + "/log"),
        ],
        [edge("start", "is_p1"), edge("is_p1", "page", "true"), edge("is_p1", "log", "false")],
        trigger_config("incident_created"),
    )
    workflow = workflows.create_workflow(
        admin,
        name="Page on P1",
        description="d",
        scope=ScopeType.GLOBAL,
        team_id=None,
        definition=defn,
    )
    secret_store.set_secret(workflow, "token", TOKEN)
    db.session.commit()
    return workflow


def _shown(steps):
    return [(s.node_id, s.kind, s.status, s.detail) for s in steps]


def _later():
    return datetime.now(UTC) + timedelta(seconds=1)


def test_backtest_equals_the_dry_run_for_each_incident_and_sends_nothing(
    app, p1_or_other, open_incident, webhook_receiver
) -> None:
    opened = [
        open_incident(title="Checkout down", priority="P1"),
        open_incident(title="Slow search", priority="P3"),
        open_incident(title="Login errors", priority="P1"),
    ]
    definition = WorkflowDefinition.model_validate(p1_or_other.definition)
    result = backtest(p1_or_other, definition, now=_later(), days=7, sample=10)
    assert [run.incident_id for run in result.runs] == [i.id for i in opened]
    assert result.considered == 3 and result.incidents == 3
    for run, incident in zip(result.runs, opened, strict=True):
        assert run.sampled
        assert _shown(run.steps) == _shown(dry_run(p1_or_other, incident))
    page = next(s for s in result.runs[0].steps if s.node_id == "page")
    assert json.loads(page.detail["request"]["body"]) == {"title": "Checkout down", "level": 0}
    assert page.detail["request"]["headers"]["X-Token"] == "[redacted]"
    assert TOKEN not in json.dumps([_shown(run.steps) for run in result.runs], default=str)
    assert [run.path for run in result.runs][1] == ("Incident created", "Is P1?", "Call log")
    assert result.paths()[0][1] == 2
    # Nothing was sent and nothing was started.
    assert webhook_receiver.requests == []
    assert p1_or_other.executions == []


def test_conditions_read_the_incident_as_it_was_at_the_event(
    app, p1_or_other, open_incident, responder
) -> None:
    incident = open_incident(title="Checkout down", priority="P1")
    actor = incidents.Actor(responder, ChangeSource.API)
    incidents.update_incident(actor, incident, IncidentUpdate(priority="P4", title="Checkout slow"))
    incidents.escalate(actor, incident)
    db.session.commit()
    definition = WorkflowDefinition.model_validate(p1_or_other.definition)
    (run,) = backtest(p1_or_other, definition, now=_later()).runs
    condition = next(s for s in run.steps if s.node_id == "is_p1")
    assert condition.detail["actual"] == "P1" and condition.detail["matched"] is True
    assert run.incident_title == "Checkout down"
    page = next(s for s in run.steps if s.node_id == "page")
    assert json.loads(page.detail["request"]["body"]) == {"title": "Checkout down", "level": 0}
    # The dry run, by contrast, sees the incident as it is now.
    now_steps = {s.node_id: s for s in dry_run(p1_or_other, incident)}
    assert now_steps["is_p1"].detail["actual"] == "P4"


def test_only_the_window_and_the_sample_count(app, p1_or_other, open_incident) -> None:
    old = open_incident(title="Last month", priority="P1")
    db.session.execute(
        sa.update(IncidentEvent)
        .where(IncidentEvent.incident_id == old.id)
        .values(created_at=datetime.now(UTC) - timedelta(days=8))
    )
    db.session.commit()
    recent = [open_incident(title=f"Recent {n}", priority="P2") for n in range(3)]
    definition = WorkflowDefinition.model_validate(p1_or_other.definition)
    result = backtest(p1_or_other, definition, now=_later(), days=7, sample=1)
    assert [run.incident_id for run in result.runs] == [i.id for i in recent]
    assert [run.sampled for run in result.runs] == [True, False, False]
    assert "request" in result.runs[0].steps[-1].detail or any(
        "request" in s.detail for s in result.runs[0].steps
    )
    assert all("request" not in s.detail for run in result.runs[1:] for s in run.steps)
    longer = backtest(p1_or_other, definition, now=_later(), days=9)
    assert old.id in {run.incident_id for run in longer.runs}


def test_a_state_trigger_matches_the_transition_and_the_team(
    app, admin, open_incident, responder, make_team, webhook_receiver
) -> None:
    other_team = make_team("Elsewhere")
    defn = definition(
        [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
        [edge("start", "hook")],
        trigger_config("state_changed", stateTransition={"to": "RESOLVED"}),
    )
    workflow = workflows.create_workflow(
        admin,
        name="On resolve",
        description="d",
        scope=ScopeType.TEAM,
        team_id=responder.team.id,
        definition=defn,
    )
    other = workflows.create_workflow(
        admin,
        name="On resolve elsewhere",
        description="d",
        scope=ScopeType.TEAM,
        team_id=other_team.id,
        definition=defn,
    )
    db.session.commit()
    actor = incidents.Actor(responder, ChangeSource.API)
    resolved = open_incident()
    acknowledged = open_incident()
    incidents.change_status(actor, resolved, "resolve")
    incidents.change_status(actor, acknowledged, "acknowledge")
    db.session.commit()
    definition_ = WorkflowDefinition.model_validate(defn)
    (run,) = backtest(workflow, definition_, now=_later()).runs
    assert run.incident_id == resolved.id and run.event_type == "state_changed"
    assert backtest(other, definition_, now=_later()).runs == []
    assert webhook_receiver.requests == []


def test_once_per_incident_holds_back_the_later_matches(
    app, admin, open_incident, responder, webhook_receiver
) -> None:
    defn = definition(
        [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
        [edge("start", "hook")],
        trigger_config("state_changed", stateTransition={"to": "RESOLVED"}),
    )
    defn["settings"]["oncePerIncident"] = True
    workflow = workflows.create_workflow(
        admin, name="Once", description="d", scope=ScopeType.GLOBAL, team_id=None, definition=defn
    )
    db.session.commit()
    actor = incidents.Actor(responder, ChangeSource.API)
    incident = open_incident()
    for action in ("resolve", "reopen", "resolve"):
        incidents.change_status(actor, incident, action)
    db.session.commit()
    parsed = WorkflowDefinition.model_validate(workflow.definition)
    result = backtest(workflow, parsed, now=_later())
    assert len(result.runs) == 1 and result.considered == 3
    assert any("1 more would have been held back" in note for note in result.notes)
    del defn["settings"]["oncePerIncident"]
    assert len(backtest(workflow, WorkflowDefinition.model_validate(defn), now=_later()).runs) == 2
