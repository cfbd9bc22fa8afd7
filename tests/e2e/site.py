"""A populated site for page-wide browser checks (layout, accessibility).

One workflow with two versions ran once on an incident against a real webhook
receiver on 127.0.0.1 (the engine driven by hand with a fake clock), the
built-in templates installed: every page then has real content to lay out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.auth.models import Team, User
from app.engine.clock import FakeClock
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentCreate
from app.workflows import service as workflows
from app.workflows.enums import ScopeType
from app.workflows.models import Workflow, WorkflowExecution
from app.workflows.templates_builtin import install_builtin_templates
from tests.builders import benchmark_workflow
from tests.fakes.servers import WebhookReceiver, json_reply

# A response body with one long line: it must wrap on the run page, not widen it.
LONG_REPLY: dict[str, Any] = {
    "ok": True,
    "message": "accepted-" + "x" * 300,
    "items": [{"id": n, "channel": "#payments-incidents"} for n in range(3)],
}


@dataclass
class Site:
    """Ids of what was created, and every page a signed-in admin can open."""

    workflow_id: str
    incident_id: str
    run_id: str
    skipping_run_id: str
    template_id: str
    team_id: str
    user_id: str
    pages: dict[str, str] = field(default_factory=dict)


def populate(app: Flask, receiver: WebhookReceiver) -> Site:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    receiver.reply(json_reply(200, LONG_REPLY), json_reply(200, {"ok": True}))
    with app.app_context():
        install_builtin_templates()
        admin = db.session.scalars(sa.select(User).where(User.is_admin.is_(True))).one()
        member = db.session.scalars(sa.select(User).where(User.email == "mia@example.com")).one()
        team = db.session.scalars(sa.select(Team).where(Team.name == "Payments")).one()
        definition = benchmark_workflow(receiver.url)
        definition["name"] = "Notify the payments channel"
        workflow = workflows.create_workflow(
            admin,
            name=definition["name"],
            description="Posts to the channel, waits, posts again.",
            scope=ScopeType.TEAM,
            team_id=team.id,
            definition=definition,
        )
        second = dict(workflow.definition, description="Posts twice, with a pause.")
        workflows.save_version(admin, workflow, second, base_version=1, change_note="Reworded")
        workflows.set_enabled(admin, workflow, True)
        db.session.commit()
        incident = incidents.create_incident(
            incidents.Actor(member, ChangeSource.WEB),
            IncidentCreate(
                title="Checkout returns 502 for card payments in the EU region",
                priority="P1",
                team_id=team.id,
                service="checkout",
                description="Customers see an error page after paying.",
            ),
        )
        # A P2 incident: its run takes the condition's false branch and skips the rest.
        incidents.create_incident(
            incidents.Actor(member, ChangeSource.WEB),
            IncidentCreate(title="Slow refunds", priority="P2", team_id=team.id),
        )
        db.session.commit()
        clock = FakeClock()
        app.config["ENGINE_CLOCK"] = clock
        worker = Worker(app, clock=clock, settings=WorkerSettings(age_scan_seconds=0))
        for _ in range(50):
            if worker.run_once() == 0:
                break
        run, skipping = db.session.scalars(
            sa.select(WorkflowExecution)
            .where(WorkflowExecution.workflow_id == workflow.id)
            .order_by(WorkflowExecution.created_at)
        ).all()
        assert run.status == skipping.status == "COMPLETED", (run.error, skipping.error)
        assert run.incident_id == incident.id
        template = db.session.scalars(
            sa.select(Workflow).where(Workflow.is_template.is_(True)).order_by(Workflow.name)
        ).first()
        assert template is not None
        site = Site(workflow.id, incident.id, run.id, skipping.id, template.id, team.id, member.id)
        db.session.remove()
    w, i = site.workflow_id, site.incident_id
    site.pages = {
        "home": "/",
        "incidents": "/incidents",
        "incident": f"/incidents/{i}",
        "new incident": "/incidents/new",
        "workflows": "/workflows",
        "new workflow": "/workflows/new",
        "import": "/workflows/import",
        "gallery": "/workflows/templates",
        "use template": f"/workflows/templates/{site.template_id}/use",
        "edit template": f"/workflows/templates/{site.template_id}/edit",
        "editor": f"/workflows/{w}/edit",
        "history": f"/workflows/{w}/versions",
        "version": f"/workflows/{w}/versions/1",
        "diff": f"/workflows/{w}/diff",
        "secrets": f"/workflows/{w}/secrets",
        "duplicate": f"/workflows/{w}/duplicate",
        "delete": f"/workflows/{w}/delete",
        "save as template": f"/workflows/{w}/save-as-template",
        "rollback": f"/workflows/{w}/versions/1/rollback",
        "runs": "/runs",
        "run": f"/runs/{site.run_id}",
        "run with skipped steps": f"/runs/{site.skipping_run_id}",
        "dry run": f"/runs/dry-run?workflow={w}&incident={i}",
        "replay": f"/runs/{site.run_id}/replay",
        "bulk replay": f"/runs/replay-failed?workflow={w}",
        "users": "/admin/users",
        "new user": "/admin/users/new",
        "reset password": f"/admin/users/{site.user_id}/reset-password",
        "teams": "/admin/teams",
        "team": f"/admin/teams/{site.team_id}",
        "new team": "/admin/teams/new",
        "audit": "/admin/audit",
        "profile": "/profile",
        "not found": "/incidents/no-such-incident",
    }
    return site
