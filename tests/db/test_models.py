"""Column types, constraints and the seed's cascades, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from app.extensions import db
from app.incidents.models import Incident
from app.workflows.enums import ScopeType
from app.workflows.models import (
    Workflow,
    WorkflowActionSecret,
    WorkflowExecution,
    WorkflowVersion,
)


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_timestamps_come_back_aware_utc(make_incident) -> None:
    paris = timezone(timedelta(hours=1))
    incident = make_incident(acknowledged_at=datetime(2026, 3, 1, 13, 30, tzinfo=paris))
    db.session.expire_all()
    loaded = db.session.get(Incident, incident.id)
    assert loaded.acknowledged_at == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert loaded.acknowledged_at.utcoffset() == timedelta(0)
    assert loaded.created_at.tzinfo is not None


def test_naive_timestamps_are_refused(make_incident) -> None:
    incident = make_incident()
    incident.acknowledged_at = datetime(2026, 3, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_json_columns_round_trip_nested_values(make_incident) -> None:
    metadata = {"region": "eu-west-1", "hosts": ["a", "b"], "limits": {"cpu": 0.9, "ok": True}}
    incident = make_incident(metadata_=metadata)
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).metadata_ == metadata


def test_deleting_a_workflow_cascades_to_versions_and_secrets(make_workflow) -> None:
    workflow = make_workflow()
    db.session.add(
        WorkflowVersion(
            workflow_id=workflow.id,
            version=2,
            definition=workflow.definition,
            changed_by_id=workflow.created_by_id,
        )
    )
    db.session.add(WorkflowActionSecret(workflow_id=workflow.id, name="token", value_hash="x"))
    db.session.commit()
    assert (count(WorkflowVersion), count(WorkflowActionSecret)) == (2, 1)

    # At the database level, not only through the ORM.
    db.session.execute(sa.delete(Workflow).where(Workflow.id == workflow.id))
    db.session.commit()
    assert (count(Workflow), count(WorkflowVersion), count(WorkflowActionSecret)) == (0, 0, 0)


def test_orm_delete_of_a_workflow_also_cascades(make_workflow) -> None:
    workflow = make_workflow()
    db.session.delete(workflow)
    db.session.commit()
    assert (count(Workflow), count(WorkflowVersion)) == (0, 0)


def test_run_history_protects_its_workflow_and_incident(
    make_workflow, make_incident, make_execution
) -> None:
    workflow = make_workflow()
    incident = make_incident()
    make_execution(workflow, incident)

    db.session.delete(workflow)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(Incident, incident.id))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert (count(Workflow), count(WorkflowVersion), count(WorkflowExecution)) == (1, 1, 1)


def test_version_numbers_are_unique_per_workflow(make_workflow) -> None:
    workflow = make_workflow()
    db.session.add(
        WorkflowVersion(
            workflow_id=workflow.id, version=1, definition={}, changed_by_id=workflow.created_by_id
        )
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    other = make_workflow()
    assert other.versions[0].version == 1


def test_secret_names_are_unique_per_workflow(make_workflow) -> None:
    first, second = make_workflow(), make_workflow()
    db.session.add_all(
        [
            WorkflowActionSecret(workflow_id=first.id, name="token", value_hash="a"),
            WorkflowActionSecret(workflow_id=second.id, name="token", value_hash="b"),
        ]
    )
    db.session.commit()
    db.session.add(WorkflowActionSecret(workflow_id=first.id, name="token", value_hash="c"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_scope_and_team_must_agree(make_workflow, make_team) -> None:
    workflow = make_workflow(team=make_team())
    workflow.scope_type = ScopeType.GLOBAL
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_team_with_workflows_cannot_be_deleted(make_workflow, make_team) -> None:
    team = make_team()
    make_workflow(team=team)
    db.session.delete(team)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_enum_columns_refuse_unknown_values(make_incident) -> None:
    incident = make_incident()
    with pytest.raises(IntegrityError):
        db.session.execute(
            sa.text("UPDATE incident SET status = 'SNOOZED' WHERE id = :id"), {"id": incident.id}
        )
        db.session.commit()
    db.session.rollback()


def test_foreign_keys_are_enforced(app) -> None:
    db.session.add(Incident(title="orphan", team_id="no-such-team"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_relations_named_by_the_seed(
    make_workflow, make_team, make_incident, make_execution, make_user
) -> None:
    team = make_team()
    author = make_user(admin=True)
    workflow = make_workflow(team=team, created_by=author)
    incident = make_incident(team=team)
    execution = make_execution(workflow, incident)
    db.session.expire_all()
    assert [w.id for w in team.workflows] == [workflow.id]
    assert [w.id for w in author.workflows_created] == [workflow.id]
    assert [v.workflow_id for v in author.workflow_versions_created] == [workflow.id]
    assert [e.id for e in incident.workflow_executions] == [execution.id]
    assert execution.status == "PENDING" and execution.completed_nodes == []
    assert workflow.version == 1 and workflow.is_enabled is False and workflow.is_template is False
