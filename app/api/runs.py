"""Workflow runs over the API: start one by hand, read its timeline, cancel it.

The same services as the run pages (``app.runs.service``); runs are visible to
whoever may see their incident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from werkzeug.wrappers import Response

from app.api.auth import api_user
from app.api.blueprint import IDEMPOTENT, routes
from app.api.idempotency import finish
from app.api.parsing import parse_body, parse_query
from app.api.responses import json_response
from app.engine.clock import Clock, SystemClock
from app.errors import Conflict
from app.extensions import db
from app.incidents import service as incidents
from app.runs import replay, service
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
    replay_of_id: str | None = Field(description="The run this one replays.")
    replay_mode: str | None = Field(
        description="'node' (from the failed step) or 'start', for a replay."
    )


class RunDetail(RunOut):
    attempts: list[AttemptOut]
    replayed_as: list[str] = Field(description="Runs that replay this one, oldest first.")


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
        replay_of_id=run.replay_of_id,
        replay_mode=run.replay_mode,
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
        replayed_as=[r.id for r in replay.replays_of(api_user(), run)],
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


# --- replay -----------------------------------------------------------------------


class ReplayChoice(BaseModel):
    """How to replay: from the failed step or the start, on the run's own version or the
    workflow's current one."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)

    mode: replay.ReplayMode = Field(
        default=replay.ReplayMode.NODE,
        description="'node': from the failed step, completed steps' results carried over; "
        "'start': from the start.",
    )
    version: replay.ReplayVersion = Field(
        default=replay.ReplayVersion.OWN,
        description="'own': the run's own version; 'current': the workflow's current version.",
    )


class StepOut(_Output):
    id: str
    name: str


class VersionChanges(_Output):
    """The run's own version against the workflow's current one."""

    from_version: int
    to_version: int
    summary: str
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_changed: list[str]


class ReplayPreview(_Output):
    """What a replay would do; nothing is started."""

    run_id: str
    mode: replay.ReplayMode
    version: replay.ReplayVersion
    workflow_version: int = Field(description="The version the replay would run.")
    from_node: StepOut | None = Field(description="Where a replay from the failed step starts.")
    carried_over: list[StepOut] = Field(description="Steps whose results are carried over.")
    will_run: list[StepOut] = Field(
        description="Steps that run, in order (a condition may still skip some)."
    )
    version_changes: VersionChanges | None = Field(
        description="Null when the run's version is the current one."
    )
    problem: str | None = Field(description="Why this replay cannot be made (null: it can).")


class BulkReplayQuery(BaseModel):
    """Which failed runs: of a workflow, or of every workflow of a team, in a window."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)

    workflow_id: str | None = Field(default=None, min_length=1, max_length=64)
    team_id: str | None = Field(default=None, min_length=1, max_length=64)
    since: AwareDatetime = Field(description="Runs that failed at or after this time.")
    until: AwareDatetime = Field(description="... and before this time.")
    mode: replay.ReplayMode = replay.ReplayMode.NODE
    version: replay.ReplayVersion = replay.ReplayVersion.OWN


class BulkReplayStart(BulkReplayQuery):
    pass


class RefusedReplay(_Output):
    run_id: str
    problem: str


class BulkReplayOut(_Output):
    """A bulk replay: how many failed runs it replays (GET: would replay), and what it
    leaves out."""

    count: int
    already_replayed: int = Field(description="Failed runs in the window replayed before.")
    more: bool = Field(description="More failed runs than one bulk replay takes (500).")
    refused: list[RefusedReplay]
    run_ids: list[str] = Field(
        description="The runs to replay (GET), or the replays started (POST)."
    )


def _preview_out(plan: replay.ReplayPlan) -> ReplayPreview:
    changes = None
    if plan.diff is not None:
        changes = VersionChanges(
            from_version=plan.origin.workflow_version,
            to_version=plan.workflow.version,
            summary=plan.diff.summary,
            nodes_added=[n.id for n in plan.diff.nodes_added],
            nodes_removed=[n.id for n in plan.diff.nodes_removed],
            nodes_changed=[n.id for n in plan.diff.nodes_changed],
        )
    return ReplayPreview(
        run_id=plan.origin.id,
        mode=plan.mode,
        version=plan.on,
        workflow_version=plan.version,
        from_node=StepOut(id=plan.from_node.id, name=plan.from_node.name)
        if plan.from_node
        else None,
        carried_over=[StepOut(id=s.id, name=s.name) for s in plan.carried_steps],
        will_run=[StepOut(id=s.id, name=s.name) for s in plan.will_run],
        version_changes=changes,
        problem=plan.problem,
    )


@routes.operation(
    "GET",
    "/runs/<id>/replay",
    summary="Preview a replay of a run",
    description="Which steps would be carried over and run, and what differs between the "
    "run's version and the workflow's current one. Needs edit rights on the workflow.",
    tag=RUNS,
    query_model=ReplayChoice,
    response_model=ReplayPreview,
    extra_errors=(403,),
)
def preview_replay(id: str) -> Response:
    run = service.get_run(api_user(), id)
    choice = parse_query(ReplayChoice)
    plan = replay.plan_replay(api_user(), run, choice.mode, choice.version)
    response = json_response(_preview_out(plan))
    db.session.commit()  # the token's last_used_at
    return response


@routes.operation(
    "POST",
    "/runs/<id>/replay",
    summary="Replay a failed, timed-out or cancelled run",
    description="A new run of the workflow on the same incident, linked to this one "
    "(`replayOfId`). A run that has not failed, a disabled workflow, or a replay from a "
    "step the current version no longer has answers 409." + IDEMPOTENT,
    tag=RUNS,
    body_model=ReplayChoice,
    response_model=RunDetail,
    success_status=201,
    success_description="The replay, started (PENDING until a worker takes it).",
    success_headers={"Location": "The replay's URL."},
    extra_errors=(403, 409),
    idempotent=True,
)
def replay_run(id: str) -> Response:
    run = service.get_run(api_user(), id)
    choice = parse_body(ReplayChoice)
    new = replay.replay(api_user(), run, choice.mode, choice.version, _clock())
    return finish(_run_detail(new.id, 201, Location=url_for("api.get_run", id=new.id)))


def _bulk_plan(data: BulkReplayQuery) -> replay.BulkPlan:
    targets = replay.bulk_workflows(api_user(), workflow_id=data.workflow_id, team_id=data.team_id)
    return replay.plan_bulk(api_user(), targets, data.since, data.until, data.mode, data.version)


def _bulk_out(bulk: replay.BulkPlan, run_ids: list[str]) -> BulkReplayOut:
    return BulkReplayOut(
        count=bulk.count,
        already_replayed=bulk.already_replayed,
        more=bulk.more,
        refused=[RefusedReplay(run_id=p.origin.id, problem=p.problem or "") for p in bulk.refused],
        run_ids=run_ids,
    )


@routes.operation(
    "GET",
    "/replays",
    summary="Count the failed runs a bulk replay would replay",
    description="Failed (and timed-out) runs of a workflow (`workflowId`) or of every "
    "workflow of a team (`teamId`) that failed in the window, minus those replayed before. "
    "Nothing is started.",
    tag=RUNS,
    query_model=BulkReplayQuery,
    response_model=BulkReplayOut,
    extra_errors=(403, 404),
)
def preview_bulk_replay() -> Response:
    bulk = _bulk_plan(parse_query(BulkReplayQuery))
    response = json_response(_bulk_out(bulk, [p.origin.id for p in bulk.plans]))
    db.session.commit()  # the token's last_used_at
    return response


@routes.operation(
    "POST",
    "/replays",
    summary="Replay every failed run of a workflow or a team in a window",
    description="Each failed run is replayed at most once (a second bulk replay over the "
    "same window starts nothing). The replays start staggered, "
    "`INCIDENTFLOW_REPLAY_RUNS_PER_SECOND` a second, so a destination is not flooded." + IDEMPOTENT,
    tag=RUNS,
    body_model=BulkReplayStart,
    response_model=BulkReplayOut,
    success_status=201,
    success_description="The replays, started.",
    extra_errors=(403, 404, 409),
    idempotent=True,
)
def bulk_replay() -> Response:
    bulk = _bulk_plan(parse_body(BulkReplayStart))
    try:
        started = replay.bulk_replay(api_user(), bulk, _clock())
    except sa.exc.IntegrityError:
        # Another bulk replay took some of these runs at the same moment (replay:<run>).
        db.session.rollback()
        raise Conflict("Another replay of these runs was just started; count them again.") from None
    return finish(json_response(_bulk_out(bulk, [r.id for r in started]), 201))
