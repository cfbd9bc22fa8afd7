"""Incident pages: list, detail with timeline, create, change.

Every change goes through ``app.incidents.service``; these views only parse the
request, call it, commit and choose the response.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request
from pydantic import ValidationError
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from app.auth.models import Team, TeamMembership, User
from app.auth.permissions import team_visible_clause
from app.errors import ServiceError
from app.extensions import db
from app.forms_support import attach_errors
from app.htmx import is_htmx, page_or_part
from app.incidents import service
from app.incidents.blueprint import bp
from app.incidents.enums import ChangeSource, IncidentPriority, IncidentStatus
from app.incidents.forms import IncidentFilterForm, IncidentForm
from app.incidents.models import Incident, IncidentEvent
from app.incidents.schemas import IncidentCreate, IncidentUpdate

PER_PAGE = 25
ACTION_LABELS = {
    "acknowledge": "Acknowledge",
    "resolve": "Resolve",
    "reopen": "Reopen",
    "escalate": "Escalate",
}


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every incident page needs a signed-in user."""


def _actor() -> service.Actor:
    return service.Actor(current_user, ChangeSource.WEB)


def _visible_teams() -> list[Team]:
    query = sa.select(Team).where(team_visible_clause(current_user, Team.id)).order_by(Team.name)
    return list(db.session.scalars(query))


def _load(incident_id: str, *, for_update: bool = False) -> Incident:
    return service.get_incident(current_user, incident_id, for_update=for_update)


E = TypeVar("E", bound=StrEnum)


def _enum_or_none(enum: type[E], value: str | None) -> E | None:
    try:
        return enum(value) if value else None
    except ValueError:
        return None  # an unknown filter value filters nothing, like an empty one


@bp.get("")
def index() -> str:
    form = IncidentFilterForm(request.args)
    teams = _visible_teams()
    form.team.choices = [
        SelectChoice("", "All teams" if current_user.is_admin else "All my teams"),
        *(SelectChoice(t.id, t.name) for t in teams),
    ]
    query = service.search_incidents(
        current_user,
        team=form.team.data or None,
        status=_enum_or_none(IncidentStatus, form.status.data),
        priority=_enum_or_none(IncidentPriority, form.priority.data),
        service=form.service.data or None,
        q=form.q.data,
    )
    page = db.paginate(
        query,
        per_page=PER_PAGE,
        error_out=False,
    )
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    context = {"form": form, "page": page, "filters": filters}
    return page_or_part(
        "incidents/index.html", "incidents/_list.html", context, target="incident-list"
    )


def _team_and_assignee_choices(form: IncidentForm, team_id: str | None = None) -> None:
    teams = _visible_teams()
    form.team_id.choices = [SelectChoice(t.id, t.name) for t in teams]
    team_ids = [team_id] if team_id else [t.id for t in teams]
    members = db.session.execute(
        sa.select(User, Team.name)
        .join(TeamMembership, TeamMembership.user_id == User.id)
        .join(Team, Team.id == TeamMembership.team_id)
        .where(TeamMembership.team_id.in_(team_ids), User.is_active.is_(True))
        .order_by(Team.name, User.first_name)
    ).all()
    seen: set[str] = set()
    choices = [SelectChoice("", "Unassigned")]
    for user, team_name in members:
        if user.id not in seen:
            seen.add(user.id)
            label = user.full_name if team_id else f"{user.full_name} ({team_name})"
            choices.append(SelectChoice(user.id, label))
    form.assignee_id.choices = choices


@bp.route("/new", methods=["GET", "POST"])
def create() -> str | Response | tuple[str, int]:
    form = IncidentForm()
    # The assignee list holds the chosen team's members only: the team posted, else the
    # one in the query (the team select refreshes the list through htmx), else the first.
    _team_and_assignee_choices(form)
    team_ids = [choice.value for choice in form.team_id.choices]
    wanted = request.form.get("team_id") or request.args.get("team_id") or ""
    team_id = wanted if wanted in team_ids else (team_ids[0] if team_ids else None)
    if team_id:
        form.team_id.data = form.team_id.data if form.team_id.data in team_ids else team_id
        _team_and_assignee_choices(form, team_id)
    if not form.team_id.choices:
        flash("You need to be in a team to open incidents. Ask an admin to add you to one.")
        return redirect(url_for("incidents.index"))
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            incident = service.create_incident(
                _actor(), IncidentCreate.model_validate(form.payload())
            )
        except (ValidationError, ServiceError) as error:
            db.session.rollback()
            problems = attach_errors(form, error)
        else:
            db.session.commit()
            flash("Incident opened.")
            return redirect(url_for("incidents.show", incident_id=incident.id), code=303)
    status = 422 if form.errors or problems else 200
    return render_template("incidents/new.html", form=form, problems=problems), status


def _timeline(incident: Incident) -> list[IncidentEvent]:
    return list(
        db.session.scalars(
            sa.select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id)
            .options(sa.orm.joinedload(IncidentEvent.actor))
            .order_by(IncidentEvent.id.desc())
        )
    )


def _entries(incident: Incident) -> list[tuple[str, Any]]:
    """The timeline, newest first: incident events and what workflows did on the incident."""
    from app.runs.service import incident_activity

    events = _timeline(incident)  # newest first
    activity = incident_activity(current_user, incident)  # oldest first, per run
    # Sorted by time, then by place: equal times keep each list's own order.
    entries: list[tuple[Any, int, str, Any]] = [
        (e.created_at, -n, "event", e) for n, e in enumerate(events)
    ]
    entries += [(a.at, n, "run", a) for n, a in enumerate(activity)]
    entries.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [(kind, item) for _, _, kind, item in entries]


def _edit_form(incident: Incident, formdata: Any = None) -> IncidentForm:
    import json

    form = IncidentForm(
        formdata=formdata,
        obj=None,
        data={
            "title": incident.title,
            "description": incident.description,
            "priority": incident.priority.value,
            "service": incident.service or "",
            "assignee_id": incident.assignee_id or "",
            "metadata": json.dumps(incident.metadata_, indent=2, sort_keys=True),
        },
    )
    _team_and_assignee_choices(form, incident.team_id)
    del form.team_id  # an incident stays in its team
    return form


def _render_detail(
    incident: Incident,
    *,
    form: IncidentForm | None = None,
    message: str | None = None,
    problems: list[str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    context: dict[str, Any] = {
        "incident": incident,
        "entries": _entries(incident),
        "actions": [(a, ACTION_LABELS[a]) for a in service.allowed_actions(incident)],
        "form": form or _edit_form(incident),
        "message": message,
        "problems": problems or [],
    }
    return page_or_part("incidents/show.html", "incidents/_detail.html", context), status


@bp.get("/<incident_id>")
def show(incident_id: str) -> tuple[str, int]:
    return _render_detail(_load(incident_id))


@bp.post("/<incident_id>/<action>")
def change(incident_id: str, action: str) -> Response | tuple[str, int]:
    if action not in ACTION_LABELS:
        abort(404)
    incident = _load(incident_id, for_update=True)
    try:
        if action == "escalate":
            service.escalate(_actor(), incident)
        else:
            service.change_status(_actor(), incident, action)
    except ServiceError as error:
        db.session.rollback()
        incident = _load(incident_id)
        if is_htmx():
            return _render_detail(incident, message=error.message, status=error.status)
        flash(error.message)
        return redirect(url_for("incidents.show", incident_id=incident_id), code=303)
    if is_htmx():
        page = _render_detail(incident)  # built before the commit: no 500 after a change
        db.session.commit()
        return page
    db.session.commit()
    return redirect(url_for("incidents.show", incident_id=incident_id), code=303)


@bp.post("/<incident_id>/edit")
def edit(incident_id: str) -> Response | tuple[str, int]:
    incident = _load(incident_id, for_update=True)
    form = _edit_form(incident, formdata=request.form)
    problems: list[str] = []
    if form.validate():
        payload = form.payload()
        try:
            service.update_incident(_actor(), incident, IncidentUpdate.model_validate(payload))
        except (ValidationError, ServiceError) as error:
            db.session.rollback()
            problems = attach_errors(form, error)
        else:
            if is_htmx():
                page = _render_detail(incident, message="Saved.")
                db.session.commit()
                return page
            db.session.commit()
            flash("Saved.")
            return redirect(url_for("incidents.show", incident_id=incident_id), code=303)
    incident = _load(incident_id)
    return _render_detail(incident, form=form, problems=problems, status=422)
