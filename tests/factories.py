"""Factory fixtures: ``make_user(...)``, ``make_team(...)``, ``make_incident(...)``, ..."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.auth.models import Team, TeamMembership, User
from app.extensions import db
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.incidents.models import Incident
from app.workflows.enums import ScopeType, TriggeredBy, TriggerEvent
from app.workflows.models import Workflow, WorkflowExecution, WorkflowVersion

PASSWORD = "correct horse battery"
_counter = itertools.count(1)

# A small valid definition: trigger -> webhook.
SIMPLE_DEFINITION: dict[str, Any] = {
    "id": "wf-simple",
    "name": "Notify on P1",
    "description": "Posts to a webhook when a P1 incident is created.",
    "version": 1,
    "nodes": [
        {
            "id": "trigger",
            "type": "trigger",
            "position": {"x": 0, "y": 0},
            "data": {"name": "Incident created"},
        },
        {
            "id": "notify",
            "type": "action",
            "position": {"x": 0, "y": 120},
            "data": {
                "actionType": "webhook",
                "name": "Notify",
                "config": {
                    "url": "https://hooks.example.com/incident",
                    "method": "POST",
                    "headers": {},
                    "body": '{"title": {{ incident.title | tojson }}}',
                    "auth": {"type": "none"},
                },
                "retry": {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000},
            },
        },
    ],
    "edges": [{"id": "e1", "source": "trigger", "target": "notify"}],
    "trigger": {"type": "incident_created", "conditions": [{"field": "priority", "value": "P1"}]},
    "settings": {"timeout": "5min", "enabled": False},
}


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    """Factory: a user (member by default) with the shared test password."""

    def make(
        email: str | None = None,
        *,
        admin: bool = False,
        teams: list[Team] = (),  # type: ignore[assignment]
        password: str = PASSWORD,
        **fields: Any,
    ) -> User:
        n = next(_counter)
        user = User(
            email=email or f"user{n}@example.com",
            first_name=fields.pop("first_name", "Test"),
            last_name=fields.pop("last_name", f"User{n}"),
            is_admin=admin,
            **fields,
        )
        user.set_password(password)
        db.session.add(user)
        db.session.flush()
        for team in teams:
            db.session.add(TeamMembership(team_id=team.id, user_id=user.id))
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_team(app: Flask) -> Callable[..., Team]:
    """Factory: a team."""

    def make(name: str | None = None, **fields: Any) -> Team:
        team = Team(name=name or f"Team {next(_counter)}", **fields)
        db.session.add(team)
        db.session.commit()
        return team

    return make


@pytest.fixture
def make_incident(app: Flask, make_team: Callable[..., Team]) -> Callable[..., Incident]:
    """Factory: an incident (in a new team unless one is given)."""

    def make(team: Team | None = None, **fields: Any) -> Incident:
        incident = Incident(
            title=fields.pop("title", f"Incident {next(_counter)}"),
            priority=fields.pop("priority", IncidentPriority.P2),
            status=fields.pop("status", IncidentStatus.TRIGGERED),
            team_id=(team or make_team()).id,
            **fields,
        )
        db.session.add(incident)
        db.session.commit()
        return incident

    return make


@pytest.fixture
def make_workflow(app: Flask) -> Callable[..., Workflow]:
    """Factory: a workflow with its version 1 row (global unless a team is given).

    Without ``created_by``, every workflow of the test shares one author: an admin
    without a password (no hashing), made on first use.
    """
    shared_author: list[User] = []

    def default_author() -> User:
        if not shared_author:
            author = User(
                email="workflow-author@example.com",
                first_name="Workflow",
                last_name="Author",
                is_admin=True,
            )
            db.session.add(author)
            db.session.flush()
            shared_author.append(author)
        return shared_author[0]

    def make(
        team: Team | None = None,
        created_by: User | None = None,
        definition: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Workflow:
        author = created_by or default_author()
        body = copy.deepcopy(definition or SIMPLE_DEFINITION)
        workflow = Workflow(
            name=fields.pop("name", body["name"]),
            description=fields.pop("description", body["description"]),
            definition=body,
            scope_type=ScopeType.TEAM if team else ScopeType.GLOBAL,
            team_id=team.id if team else None,
            created_by_id=author.id,
            **fields,
        )
        db.session.add(workflow)
        db.session.flush()
        db.session.add(
            WorkflowVersion(
                workflow_id=workflow.id,
                version=workflow.version,
                definition=body,
                changed_by_id=author.id,
            )
        )
        db.session.commit()
        return workflow

    return make


@pytest.fixture
def make_execution(app: Flask) -> Callable[..., WorkflowExecution]:
    """Factory: an execution of a workflow's current version on an incident."""

    def make(workflow: Workflow, incident: Incident, **fields: Any) -> WorkflowExecution:
        execution = WorkflowExecution(
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            definition_snapshot=copy.deepcopy(workflow.definition),
            incident_id=incident.id,
            triggered_by=fields.pop("triggered_by", TriggeredBy.EVENT),
            trigger_event=fields.pop("trigger_event", TriggerEvent.INCIDENT_CREATED),
            **fields,
        )
        db.session.add(execution)
        db.session.commit()
        return execution

    return make
