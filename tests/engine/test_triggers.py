"""Every trigger type fires exactly the matching workflows, once per event."""

from __future__ import annotations

import sqlalchemy as sa

from app.definition.builders import chain, condition_node, edge, trigger_config
from app.engine import triggers
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.models import IncidentEvent
from app.incidents.schemas import IncidentUpdate
from app.workflows.enums import TriggeredBy, TriggerEvent
from app.workflows.models import WorkflowExecution
from tests.support import runs_of


def only_trigger(trigger: dict, name: str = "wf") -> dict:
    return chain(condition_node("check", "priority", "P1"), trigger=trigger) | {"name": name}


def consume(clock) -> int:
    count = triggers.consume_events(clock)
    db.session.commit()
    return count


def test_incident_created_fires_matching_workflows_only(
    app, clock, responder, make_team, make_enabled_workflow, open_incident
) -> None:
    p1 = make_enabled_workflow(
        only_trigger(
            trigger_config("incident_created", conditions=[{"field": "priority", "value": "P1"}])
        )
    )
    any_priority = make_enabled_workflow(only_trigger(trigger_config("incident_created")))
    other_team = make_enabled_workflow(
        only_trigger(trigger_config("incident_created")), team=make_team("Elsewhere")
    )
    my_team = make_enabled_workflow(
        only_trigger(trigger_config("incident_created")), team=responder.team
    )
    escalation = make_enabled_workflow(only_trigger(trigger_config("escalation")))
    open_incident(priority="P2")
    assert consume(clock) == 1
    assert (
        len(runs_of(p1)),
        len(runs_of(any_priority)),
        len(runs_of(other_team)),
        len(runs_of(my_team)),
        len(runs_of(escalation)),
    ) == (0, 1, 0, 1, 0)
    run = runs_of(any_priority)[0]
    assert (
        run.triggered_by == TriggeredBy.EVENT and run.trigger_event == TriggerEvent.INCIDENT_CREATED
    )
    assert run.definition_snapshot == any_priority.definition
    assert run.workflow_version == 1  # enabling does not make a new version
    assert run.status == "PENDING" and run.due_at == clock.now()


def test_all_conditions_must_match_including_metadata_and_team(
    app, clock, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        only_trigger(
            trigger_config(
                "incident_created",
                conditions=[
                    {"field": "service", "value": "checkout"},
                    {"field": "team", "value": "Payments"},
                    {"field": "metadata.region", "value": "eu"},
                ],
            )
        )
    )
    open_incident(service="checkout", metadata={"region": "us"})
    open_incident(service="checkout", metadata={"region": "eu"})
    open_incident(service="search", metadata={"region": "eu"})
    consume(clock)
    assert len(runs_of(workflow)) == 1


def test_state_changed_needs_the_transition(
    app, clock, responder, make_enabled_workflow, open_incident
) -> None:
    to_resolved = make_enabled_workflow(
        only_trigger(trigger_config("state_changed", stateTransition={"to": "RESOLVED"}))
    )
    ack_to_resolved = make_enabled_workflow(
        only_trigger(
            trigger_config(
                "state_changed", stateTransition={"from": "ACKNOWLEDGED", "to": "RESOLVED"}
            )
        )
    )
    actor = incidents.Actor(responder, ChangeSource.WEB)
    first, second = open_incident(), open_incident()
    incidents.change_status(actor, first, "resolve")  # TRIGGERED -> RESOLVED
    incidents.change_status(actor, second, "acknowledge")
    incidents.change_status(actor, second, "resolve")  # ACKNOWLEDGED -> RESOLVED
    db.session.commit()
    consume(clock)
    assert len(runs_of(to_resolved)) == 2
    assert [r.incident_id for r in runs_of(ack_to_resolved)] == [second.id]


def test_escalation_fires_on_escalate(
    app, clock, responder, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(only_trigger(trigger_config("escalation")))
    incident = open_incident()
    incidents.escalate(incidents.Actor(responder, ChangeSource.WEB), incident)
    incidents.update_incident(
        incidents.Actor(responder, ChangeSource.WEB), incident, IncidentUpdate(priority="P1")
    )
    db.session.commit()
    consume(clock)
    (run,) = runs_of(workflow)
    assert run.trigger_event == TriggerEvent.ESCALATION


def test_replaying_events_starts_nothing_twice(
    app, clock, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(only_trigger(trigger_config("incident_created")))
    open_incident()
    consume(clock)
    # A crash-and-replay: the events look unprocessed again.
    db.session.execute(sa.update(IncidentEvent).values(processed_at=None))
    db.session.commit()
    assert consume(clock) == 1
    assert len(runs_of(workflow)) == 1


def test_a_failed_consumer_transaction_leaves_events_for_the_next_pass(
    app, clock, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(only_trigger(trigger_config("incident_created")))
    open_incident()
    triggers.consume_events(clock)
    db.session.rollback()  # the process died before committing
    assert runs_of(workflow) == []
    assert consume(clock) == 1
    assert len(runs_of(workflow)) == 1


def test_disabled_workflows_and_templates_never_fire(
    app, clock, admin, make_enabled_workflow, open_incident
) -> None:
    from app.workflows import service as workflows

    workflow = make_enabled_workflow(only_trigger(trigger_config("incident_created")))
    workflows.set_enabled(admin, workflow, False)
    db.session.commit()
    open_incident()
    consume(clock)
    assert runs_of(workflow) == []


def test_age_fires_once_per_incident_after_the_threshold(
    app, clock, make_enabled_workflow, open_incident
) -> None:
    from datetime import timedelta

    workflow = make_enabled_workflow(only_trigger(trigger_config("age", ageThresholdMinutes=30)))
    old = open_incident(title="old")
    old.created_at = clock.now() - timedelta(minutes=31)
    young = open_incident(title="young")
    young.created_at = clock.now() - timedelta(minutes=5)
    resolved = open_incident(title="resolved but old")
    resolved.created_at = clock.now() - timedelta(hours=2)
    resolved.status = "RESOLVED"
    db.session.commit()
    assert triggers.scan_age(clock) == 1
    db.session.commit()
    assert triggers.scan_age(clock) == 0
    db.session.commit()
    (run,) = runs_of(workflow)
    assert run.incident_id == old.id and run.trigger_event == TriggerEvent.AGE


def test_manual_runs_only_for_manual_workflows_in_scope(
    app, clock, responder, make_team, make_enabled_workflow, open_incident
) -> None:
    import pytest

    from app.errors import InvalidInput

    manual = make_enabled_workflow(only_trigger(trigger_config("manual")))
    automatic = make_enabled_workflow(only_trigger(trigger_config("incident_created")))
    theirs = make_enabled_workflow(
        only_trigger(trigger_config("manual")), team=make_team("Elsewhere")
    )
    incident = open_incident()
    assert [w.id for w in triggers.manual_candidates(incident)] == [manual.id]
    run = triggers.start_manual(responder, manual, incident, clock)
    assert run.triggered_by == TriggeredBy.MANUAL and run.triggered_by_user_id == responder.id
    for workflow in (automatic, theirs):
        with pytest.raises(InvalidInput):
            triggers.start_manual(responder, workflow, incident, clock)


def test_matching_uses_the_definition_edges_untouched(
    app, clock, make_enabled_workflow, open_incident
) -> None:
    # A branching definition is snapshotted whole.
    definition = chain(condition_node("check"), trigger=trigger_config("incident_created"))
    definition["edges"][-1] = edge("start", "check")
    workflow = make_enabled_workflow(definition)
    open_incident()
    consume(clock)
    snapshot = db.session.scalar(sa.select(WorkflowExecution.definition_snapshot))
    assert snapshot["edges"] == workflow.definition["edges"]
