"""Engine fixtures: a fake clock, a worker driven by hand, workflows and incidents made
through the real services (so incident events exist as they would in production)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from app.auth.models import Team, User
from app.engine.clock import FakeClock
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.models import Incident
from app.incidents.schemas import IncidentCreate
from app.workflows import service as workflows
from app.workflows.enums import ScopeType
from app.workflows.models import Workflow, WorkflowExecution


@pytest.fixture
def clock() -> FakeClock:
    """Engine time, moved by the test."""
    return FakeClock()


@pytest.fixture
def worker(app, clock) -> Worker:
    """A worker the test drives with ``run_once`` (no threads)."""
    app.config["ENGINE_CLOCK"] = clock
    return Worker(app, clock=clock, settings=WorkerSettings(age_scan_seconds=0))


@pytest.fixture
def responder(make_team, make_user) -> User:
    """A member of team Payments; ``responder.team`` is that team."""
    team = make_team("Payments")
    user = make_user("responder@example.com", teams=[team])
    user.team = team
    return user


@pytest.fixture
def admin(make_user) -> User:
    """An admin, who may create global workflows."""
    return make_user("boss@example.com", admin=True)


@pytest.fixture
def make_enabled_workflow(admin) -> Callable[..., Workflow]:
    """Factory: a workflow with this definition, enabled (global unless a team is given)."""

    def make(
        definition: dict[str, Any], team: Team | None = None, secrets: dict[str, str] | None = None
    ) -> Workflow:
        from app.workflows import secrets as secret_store

        workflow = workflows.create_workflow(
            admin,
            name=definition["name"],
            description=definition["description"],
            scope=ScopeType.TEAM if team else ScopeType.GLOBAL,
            team_id=team.id if team else None,
            definition=definition,
        )
        for name, value in (secrets or {}).items():
            secret_store.set_secret(workflow, name, value)
        workflows.set_enabled(admin, workflow, True)
        db.session.commit()
        return workflow

    return make


@pytest.fixture
def open_incident(responder) -> Callable[..., Incident]:
    """Factory: an incident opened through the incident service (an event is recorded)."""

    def make(**fields: Any) -> Incident:
        incident = incidents.create_incident(
            incidents.Actor(responder, ChangeSource.API),
            IncidentCreate(
                title=fields.pop("title", "Checkout down"), team_id=responder.team.id, **fields
            ),
        )
        db.session.commit()
        return incident

    return make


def runs_of(workflow: Workflow) -> list[WorkflowExecution]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(WorkflowExecution)
            .where(WorkflowExecution.workflow_id == workflow.id)
            .order_by(WorkflowExecution.created_at, WorkflowExecution.id)
        )
    )


def drain(worker: Worker, passes: int = 50) -> None:
    """Run the worker until it finds nothing to do (bounded)."""
    for _ in range(passes):
        if worker.run_once() == 0:
            return
    raise AssertionError("the worker never went idle")
