"""Run pages: lists per workflow and per incident, the run timeline, cancel, re-run, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request
from pydantic import ValidationError
from werkzeug.wrappers import Response

from app.auth.models import Team
from app.auth.permissions import member_team_ids
from app.engine.clock import Clock, SystemClock
from app.engine.runner import TERMINAL, plan_for
from app.engine.triggers import manual_candidates
from app.errors import InvalidInput, NotFound, ServiceError
from app.extensions import db
from app.htmx import is_htmx, page_or_part, see_other
from app.incidents import service as incidents
from app.runs import display, replay, service
from app.runs.blueprint import bp
from app.workflows import service as workflows
from app.workflows.enums import ExecutionStatus, ScopeType
from app.workflows.models import ExecutionAttempt, Workflow, WorkflowExecution

PER_PAGE = 25


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every run page needs a signed-in user."""


def engine_clock() -> Clock:
    clock: Clock = current_app.config.get("ENGINE_CLOCK") or SystemClock()
    return clock


@bp.app_template_global()
def run_duration(run: WorkflowExecution) -> str:
    """The run's one duration (see ``display.DURATION_MEANING``), as text."""
    return display.human_duration(display.run_duration(run, engine_clock().now()))


@bp.app_template_global()
def time_ago(moment: Any) -> str:
    return display.relative(moment, engine_clock().now())


@bp.app_context_processor
def _run_words() -> dict[str, Any]:
    return {"DURATION_MEANING": display.DURATION_MEANING}


bp.add_app_template_filter(display.pretty_body, "pretty_body")
bp.add_app_template_filter(display.human_duration, "human_duration")


def _run_or_404(execution_id: str) -> WorkflowExecution:
    return service.get_run(current_user, execution_id)


@bp.get("")
def index() -> str:
    query = service.visible_runs(current_user)
    workflow = incident = None
    if workflow_id := request.args.get("workflow"):
        workflow = workflows.get_workflow(current_user, workflow_id)
        query = query.where(WorkflowExecution.workflow_id == workflow.id)
    if incident_id := request.args.get("incident"):
        incident = incidents.get_incident(current_user, incident_id)
        query = query.where(WorkflowExecution.incident_id == incident.id)
    status = request.args.get("status", "")
    if status in ExecutionStatus.__members__:
        query = query.where(WorkflowExecution.status == ExecutionStatus(status))
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "runs/index.html",
        page=page,
        workflow=workflow,
        incident=incident,
        status=status,
        statuses=list(ExecutionStatus),
        filters=filters,
    )


def _timeline(execution: WorkflowExecution) -> list[dict[str, Any]]:
    """Every node of the run's snapshot, in order, with its outcome and attempts."""
    plan = plan_for(execution)
    results = {r["nodeId"]: r for r in execution.completed_nodes}
    attempts: dict[str, list[ExecutionAttempt]] = {}
    for attempt in db.session.scalars(
        sa.select(ExecutionAttempt)
        .where(ExecutionAttempt.execution_id == execution.id)
        .order_by(ExecutionAttempt.id)
    ):
        attempts.setdefault(attempt.node_id, []).append(attempt)
    notes = display.branch_notes(plan, results)
    rows = []
    for node_id in plan.order:
        node = plan.nodes[node_id]
        result = results.get(node_id)
        if result is not None:
            state = result["status"]
        elif execution.current_node_id == node_id and execution.parked_until:
            state = "waiting"
        elif execution.current_node_id == node_id and execution.status not in TERMINAL:
            state = "retrying" if attempts.get(node_id) else "running"
        else:
            state = "not reached" if execution.status in TERMINAL else "pending"
        rows.append(
            {
                "node": node,
                "state": state,
                "result": result,
                "attempts": attempts.get(node_id, []),
                "took": display.step_duration(result),
                "note": notes.get(node_id),
            }
        )
    return rows


def _render_run(
    execution: WorkflowExecution, *, message: str | None = None, status: int = 200
) -> tuple[str, int]:
    context = {
        "run": execution,
        "rows": _timeline(execution),
        "active": execution.status not in TERMINAL,
        "message": message,
        "replay_of": replay.replay_origin(current_user, execution),
        "replays": replay.replays_of(current_user, execution),
        "can_replay": execution.status in replay.REPLAYABLE
        and workflows.can_edit(current_user, execution.workflow),
    }
    return page_or_part("runs/show.html", "runs/_run.html", context), status


@bp.get("/<execution_id>")
def show(execution_id: str) -> tuple[str, int]:
    return _render_run(_run_or_404(execution_id))


@bp.post("/<execution_id>/cancel")
def cancel(execution_id: str) -> Response | tuple[str, int]:
    execution = _run_or_404(execution_id)
    try:
        service.cancel_run(current_user, execution, engine_clock())
    except ServiceError as error:
        db.session.rollback()
        return _render_run(_run_or_404(execution_id), message=error.message, status=error.status)
    if is_htmx():
        page = _render_run(execution, message="Run cancelled.")  # built before the commit
        db.session.commit()
        return page
    db.session.commit()
    flash("Run cancelled.")
    return redirect(url_for("runs.show", execution_id=execution_id), code=303)


@bp.post("/<execution_id>/rerun")
def rerun(execution_id: str) -> Response | tuple[str, int]:
    execution = _run_or_404(execution_id)
    try:
        new = service.rerun(current_user, execution, engine_clock())
    except ServiceError as error:
        db.session.rollback()
        return _render_run(_run_or_404(execution_id), message=error.message, status=error.status)
    db.session.commit()
    target = url_for("runs.show", execution_id=new.id)
    return see_other(target)


def _incident_panel(incident_id: str, message: str | None = None) -> str:
    incident = incidents.get_incident(current_user, incident_id)
    runs = db.session.scalars(
        service.visible_runs(current_user)
        .where(WorkflowExecution.incident_id == incident.id)
        .limit(10)
    ).all()
    return render_template(
        "runs/_incident_runs.html",
        incident=incident,
        runs=runs,
        manual=manual_candidates(incident),
        message=message,
    )


@bp.get("/incident/<incident_id>")
def for_incident(incident_id: str) -> str:
    """The incident page's runs panel: recent runs and running a workflow by hand."""
    return _incident_panel(incident_id)


@bp.post("/incident/<incident_id>/start")
def start(incident_id: str) -> Response | tuple[str, int]:
    workflow_id = request.form.get("workflow_id", "")
    try:
        execution = service.start_by_hand(current_user, workflow_id, incident_id, engine_clock())
    except NotFound:
        raise  # the app-wide 404 page, not a problem in the panel
    except ServiceError as error:
        db.session.rollback()
        return _incident_panel(incident_id, error.message), 422
    db.session.commit()
    target = url_for("runs.show", execution_id=execution.id)
    return see_other(target)


@bp.get("/dry-run")
def dry_run() -> tuple[str, int]:
    """Run a workflow against an incident without side effects (a GET: nothing changes)."""
    from app.engine.dry_run import dry_run as walk
    from app.workflows.service import visible_workflows

    workflow_id = request.args.get("workflow", "")
    incident_id = request.args.get("incident", "")
    workflows_ = db.session.scalars(
        visible_workflows(current_user).order_by(Workflow.name).limit(500)
    ).all()
    incidents_ = db.session.scalars(incidents.search_incidents(current_user).limit(50)).all()
    workflow = incident = None
    steps = None
    message = None
    status = 200
    if workflow_id:
        workflow = workflows.get_workflow(current_user, workflow_id)
    if incident_id:
        incident = incidents.get_incident(current_user, incident_id)
    if workflow is not None and incident is not None:
        if workflow.scope_type == ScopeType.TEAM and workflow.team_id != incident.team_id:
            message = "This workflow belongs to another team than the incident; it would not run."
            status = 422
        else:
            try:
                steps = walk(workflow, incident)
            except ValidationError:
                message = "The workflow's definition has problems; fix them in the editor first."
                status = 422
    return render_template(
        "runs/dry_run.html",
        workflows=workflows_,
        incidents=incidents_,
        workflow=workflow,
        incident=incident,
        steps=steps,
        message=message,
    ), status


# --- replay -----------------------------------------------------------------------


def _replay_page(
    execution: WorkflowExecution, *, problem: str | None = None, status: int = 200
) -> tuple[str, int]:
    try:
        mode = replay.parse_mode(request.values.get("mode"))
        on = replay.parse_version(request.values.get("version"))
    except ServiceError as error:
        mode, on = replay.ReplayMode.NODE, replay.ReplayVersion.OWN
        problem, status = error.message, 422
    plan = replay.plan_replay(current_user, execution, mode, on)
    return render_template(
        "runs/replay.html", run=execution, plan=plan, problem=problem or plan.problem
    ), status


@bp.get("/<execution_id>/replay")
def replay_preview(execution_id: str) -> tuple[str, int]:
    """What a replay would run, carry over and change, before it is started."""
    return _replay_page(_run_or_404(execution_id))


@bp.post("/<execution_id>/replay")
def replay_run(execution_id: str) -> Response | tuple[str, int]:
    execution = _run_or_404(execution_id)
    try:
        mode = replay.parse_mode(request.form.get("mode"))
        on = replay.parse_version(request.form.get("version"))
        new = replay.replay(current_user, execution, mode, on, engine_clock())
    except ServiceError as error:
        db.session.rollback()
        return _replay_page(_run_or_404(execution_id), problem=error.message, status=error.status)
    db.session.commit()
    flash(f"Replay of #{execution.id[-8:]} started.")
    target = url_for("runs.show", execution_id=new.id)
    return see_other(target)


# --- bulk replay ------------------------------------------------------------------


def _when_arg(name: str, default: datetime) -> datetime:
    """A ``datetime-local`` field (read as UTC) or an ISO time with its offset."""
    raw = (request.values.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as error:
        raise InvalidInput.at(name, "Give a date and time, e.g. 2026-12-04T09:30.") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _team_choices() -> list[Team]:
    query = sa.select(Team).order_by(Team.name)
    if not current_user.is_admin:
        query = query.where(Team.id.in_(member_team_ids(current_user)))
    return list(db.session.scalars(query))


@bp.route("/replay-failed", methods=["GET", "POST"])
def bulk_replay() -> Response | tuple[str, int]:
    """Replay every failed run of a workflow, or of a team's workflows, in a window:
    a GET counts them (the confirmation), a POST starts the replays."""
    now = engine_clock().now()
    workflow_id = request.values.get("workflow") or None
    team_id = request.values.get("team") or None
    context: dict[str, Any] = {
        "workflow": None,
        "team_id": team_id,
        "teams": _team_choices(),
        "bulk": None,
        "problem": None,
        "since": now - timedelta(hours=24),
        "until": now,
    }
    status = 200
    try:
        mode = replay.parse_mode(request.values.get("mode"))
        on = replay.parse_version(request.values.get("version"))
        context["since"] = since = _when_arg("since", context["since"])
        context["until"] = until = _when_arg("until", context["until"])
        if workflow_id:
            context["workflow"] = workflows.get_workflow(current_user, workflow_id)
        if workflow_id or team_id or request.method == "POST":
            targets = replay.bulk_workflows(current_user, workflow_id=workflow_id, team_id=team_id)
            context["bulk"] = bulk = replay.plan_bulk(current_user, targets, since, until, mode, on)
            if request.method == "POST":
                started = replay.bulk_replay(current_user, bulk, engine_clock())
                db.session.commit()
                flash(
                    f"{len(started)} replay{'' if len(started) == 1 else 's'} started, "
                    "staggered so the destinations are not flooded."
                )
                query = {"workflow": workflow_id} if workflow_id else {}
                return redirect(url_for("runs.index", **query), code=303)
    except NotFound:
        raise  # the app-wide 404 page, not a problem in the form
    except ServiceError as error:
        db.session.rollback()
        context["problem"], status = error.message, error.status
        context["bulk"] = None
    except sa.exc.IntegrityError:
        # Another bulk action replayed some of these runs at the same moment.
        db.session.rollback()
        context["problem"] = "Another replay of these runs was just started; look again."
        context["bulk"], status = None, 409
    context["mode"], context["on"] = (
        request.values.get("mode", "node"),
        request.values.get("version", "own"),
    )
    return render_template("runs/replay_failed.html", **context), status
