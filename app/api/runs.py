"""Workflow runs over the API: start one by hand, read its timeline, cancel it.

The same services as the run pages (``app.runs.service``); runs are visible to
whoever may see their incident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from werkzeug.wrappers import Response

from app.api.auth import api_user
from app.api.idempotency import finish
from app.api.parsing import parse_body
from app.api.responses import json_response
from app.api.routes import IDEMPOTENT, routes
from app.engine.clock import Clock, SystemClock
from app.extensions import db
from app.incidents import service as incidents
from app.runs import service
from app.workflows import service as workflows
from app.workflows.enums import ExecutionStatus, TriggeredBy, TriggerEvent
from app.workflows.models import ExecutionAttempt, WorkflowExecution

RUNS = "Runs"
LIST_LIMIT = 100


class _Output(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RunStart(BaseModel):
    """Which workflow to run on the incident (it must have a manual trigger)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)

    workflow_id: str = Field(min_length=1, max_length=64)


class AttemptOut(_Output):
    node_id: str
    number: int
    ok: bool
    status_code: int | None
    error: str | None
    started_at: datetime
    duration_ms: int
    retry_at: datetime | None
    request: dict[str, Any] | None = Field(description="What was sent, secrets redacted.")
    response: dict[str, Any] | None = Field(
        description="A bounded copy of the answer, scrubbed; null when none came "
        "(refused, timed out, connection error)."
    )


class RunOut(_Output):
    id: str
    workflow_id: str
    workflow_version: int
    incident_id: str
    triggered_by: TriggeredBy
    trigger_event: TriggerEvent | None
    status: ExecutionStatus
    current_node_id: str | None
    completed_nodes: list[dict[str, Any]] = Field(description="The seed's NodeResult records.")
    error: str | None
    parked_until: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None


class RunDetail(RunOut):
    attempts: list[AttemptOut]


class RunList(_Output):
    """Runs, newest first (at most 100)."""

    items: list[RunOut]


def _clock() -> Clock:
    clock: Clock = current_app.config.get("ENGINE_CLOCK") or SystemClock()
    return clock


def _run_out(run: WorkflowExecution) -> RunOut:
    return RunOut(
        id=run.id,
        workflow_id=run.workflow_id,
        workflow_version=run.workflow_version,
        incident_id=run.incident_id,
        triggered_by=run.triggered_by,
        trigger_event=run.trigger_event,
        status=run.status,
        current_node_id=run.current_node_id,
        completed_nodes=run.completed_nodes,
        error=run.error,
        parked_until=run.parked_until,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        failed_at=run.failed_at,
    )


def _run_detail(run_id: str, status: int = 200, **headers: str) -> Response:
    run = service.get_run(api_user(), run_id)
    attempts = db.session.scalars(
        sa.select(ExecutionAttempt)
        .where(ExecutionAttempt.execution_id == run.id)
        .order_by(ExecutionAttempt.id)
    )
    detail = RunDetail(
        **_run_out(run).model_dump(),
        attempts=[
            AttemptOut(
                node_id=a.node_id,
                number=a.number,
                ok=a.ok,
                status_code=a.status_code,
                error=a.error,
                started_at=a.started_at,
                duration_ms=a.duration_ms,
                retry_at=a.retry_at,
                request=a.request,
                response=a.response,
            )
            for a in attempts
        ],
    )
    return json_response(detail, status, headers)


def _list(query: sa.Select[WorkflowExecution]) -> Response:
    runs = db.session.scalars(query.limit(LIST_LIMIT)).all()
    body = RunList(items=[_run_out(run) for run in runs])
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "POST",
    "/incidents/<id>/runs",
    summary="Run a workflow on an incident by hand",
    description="The workflow must be enabled, have a manual trigger, apply to the "
    "incident's team and its trigger conditions must hold." + IDEMPOTENT,
    tag=RUNS,
    body_model=RunStart,
    response_model=RunDetail,
    success_status=201,
    success_description="The run, started (PENDING until a worker takes it).",
    success_headers={"Location": "The run's URL."},
    idempotent=True,
)
def start_run(id: str) -> Response:
    incidents.get_incident(api_user(), id)  # 404 before anything is read from the body
    data = parse_body(RunStart)
    run = service.start_by_hand(api_user(), data.workflow_id, id, _clock())
    return finish(_run_detail(run.id, 201, Location=url_for("api.get_run", id=run.id)))


@routes.operation(
    "GET",
    "/incidents/<id>/runs",
    summary="An incident's workflow runs",
    tag=RUNS,
    response_model=RunList,
)
def list_incident_runs(id: str) -> Response:
    incident = incidents.get_incident(api_user(), id)
    return _list(
        service.visible_runs(api_user()).where(WorkflowExecution.incident_id == incident.id)
    )


@routes.operation(
    "GET",
    "/workflows/<id>/runs",
    summary="A workflow's runs",
    description="Runs on incidents you may see.",
    tag=RUNS,
    response_model=RunList,
)
def list_workflow_runs(id: str) -> Response:
    workflow = workflows.get_workflow(api_user(), id)
    return _list(
        service.visible_runs(api_user()).where(WorkflowExecution.workflow_id == workflow.id)
    )


@routes.operation(
    "GET",
    "/runs/<id>",
    summary="A run: every node's outcome and each attempt",
    tag=RUNS,
    response_model=RunDetail,
)
def get_run(id: str) -> Response:
    response = _run_detail(id)
    db.session.commit()  # the token's last_used_at
    return response


@routes.operation(
    "POST",
    "/runs/<id>/cancel",
    summary="Cancel a run",
    description="Pending, running or waiting runs only; an ended run answers 409.",
    tag=RUNS,
    response_model=RunDetail,
    extra_errors=(409,),
)
def cancel_run(id: str) -> Response:
    run = service.get_run(api_user(), id)
    service.cancel_run(api_user(), run, _clock())
    return finish(_run_detail(id))
