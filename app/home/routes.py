"""The home page: what the signed-in user can see, counted from the database."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user, login_required

from app.auth.models import TeamMembership
from app.extensions import db
from app.home.blueprint import bp
from app.incidents.enums import IncidentStatus
from app.incidents.models import Incident
from app.workflows.enums import ScopeType
from app.workflows.models import Workflow


@bp.get("/")
@login_required
def index() -> str:
    my_teams = sa.select(TeamMembership.team_id).where(TeamMembership.user_id == current_user.id)
    incidents = sa.select(sa.func.count()).select_from(Incident)
    open_incidents = incidents.where(Incident.status != IncidentStatus.RESOLVED)
    workflows = (
        sa.select(sa.func.count()).select_from(Workflow).where(Workflow.is_template.is_(False))
    )
    if not current_user.is_admin:
        incidents = incidents.where(Incident.team_id.in_(my_teams))
        open_incidents = open_incidents.where(Incident.team_id.in_(my_teams))
        workflows = workflows.where(
            sa.or_(Workflow.scope_type == ScopeType.GLOBAL, Workflow.team_id.in_(my_teams))
        )
    return render_template(
        "home/index.html",
        incident_count=db.session.scalar(incidents),
        open_incident_count=db.session.scalar(open_incidents),
        workflow_count=db.session.scalar(workflows),
        teams=current_user.teams,
    )
