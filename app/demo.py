"""Demo data: an admin, two teams with members, a handful of incidents. Safe to run twice."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.auth.models import Team, TeamMembership, User
from app.db import utcnow
from app.extensions import db
from app.incidents.enums import ChangeSource, IncidentPriority, IncidentStatus
from app.incidents.models import Incident, IncidentEvent
from app.incidents.schemas import IncidentCreate
from app.incidents.service import Actor, change_status, create_incident

ADMIN_EMAIL = "admin@example.com"

TEAMS: list[dict[str, Any]] = [
    {
        "name": "Payments",
        "chat_channel": "#payments-oncall",
        "members": [
            ("alice@example.com", "Alice", "Nguyen", "+44 20 7946 0001"),
            ("bob@example.com", "Bob", "Okafor", None),
        ],
    },
    {
        "name": "Platform",
        "chat_channel": "#platform-oncall",
        "members": [
            ("carol@example.com", "Carol", "Schmidt", "+1 415 555 0134"),
            ("dave@example.com", "Dave", "Rossi", None),
        ],
    },
]

INCIDENTS: list[dict[str, Any]] = [
    {
        "team": "Payments",
        "title": "Card authorisations failing in eu-west-1",
        "priority": IncidentPriority.P1,
        "status": IncidentStatus.TRIGGERED,
        "service": "payments-api",
        "metadata": {"region": "eu-west-1", "source": "prometheus"},
        "minutes_ago": 12,
        "assignee": "alice@example.com",
    },
    {
        "team": "Payments",
        "title": "Refund queue backlog above 5,000",
        "priority": IncidentPriority.P3,
        "status": IncidentStatus.ACKNOWLEDGED,
        "service": "refunds-worker",
        "metadata": {"queue": "refunds"},
        "minutes_ago": 95,
        "assignee": "bob@example.com",
    },
    {
        "team": "Payments",
        "title": "Checkout latency p99 over 2 s",
        "priority": IncidentPriority.P2,
        "status": IncidentStatus.RESOLVED,
        "service": "checkout-web",
        "metadata": {},
        "minutes_ago": 60 * 26,
        "assignee": "alice@example.com",
    },
    {
        "team": "Platform",
        "title": "Kubernetes node pool at 95% memory",
        "priority": IncidentPriority.P2,
        "status": IncidentStatus.TRIGGERED,
        "service": "k8s-prod",
        "metadata": {"cluster": "prod-1"},
        "minutes_ago": 30,
        "assignee": None,
    },
    {
        "team": "Platform",
        "title": "TLS certificate for api.example.com expires in 7 days",
        "priority": IncidentPriority.P4,
        "status": IncidentStatus.ACKNOWLEDGED,
        "service": "edge",
        "metadata": {"domain": "api.example.com"},
        "minutes_ago": 60 * 5,
        "assignee": "carol@example.com",
    },
    {
        "team": "Platform",
        "title": "Nightly backup job failed",
        "priority": IncidentPriority.P3,
        "status": IncidentStatus.RESOLVED,
        "service": "backups",
        "metadata": {"job": "pg-nightly"},
        "minutes_ago": 60 * 40,
        "assignee": "dave@example.com",
    },
]


@dataclass
class DemoResult:
    password: str | None = None
    created: list[str] = field(default_factory=list)


def _get_or_create_user(
    email: str,
    first: str,
    last: str,
    phone: str | None,
    password: str,
    *,
    admin: bool,
    result: DemoResult,
) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = User(email=email, first_name=first, last_name=last, phone=phone, is_admin=admin)
        user.set_password(password)
        db.session.add(user)
        db.session.flush()
        result.created.append(f"user {email}")
    return user


def _backdate(incident: Incident, created_at: datetime) -> None:
    """Spread a demo incident's history over the past, as if it had really happened."""
    steps = [created_at, created_at + timedelta(minutes=3), created_at + timedelta(minutes=50)]
    events = db.session.scalars(
        sa.select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id)
        .order_by(IncidentEvent.id)
    )
    for event, when in zip(events, steps, strict=False):
        event.created_at = when
    incident.created_at = created_at
    if incident.acknowledged_at:
        incident.acknowledged_at = steps[1]
    if incident.resolved_at:
        incident.resolved_at = steps[2]


def load_demo_data(password: str | None = None) -> DemoResult:
    """Create what is missing; never change what exists (passwords included).

    Returns the demo password only when this call created users with it, so the
    caller can show it once.
    """
    result = DemoResult()
    chosen = password or secrets.token_urlsafe(12)
    admin = _get_or_create_user(
        ADMIN_EMAIL, "Ada", "Admin", None, chosen, admin=True, result=result
    )
    users = {ADMIN_EMAIL: admin}
    teams: dict[str, Team] = {}
    for spec in TEAMS:
        team = db.session.scalar(sa.select(Team).where(Team.name == spec["name"]))
        if team is None:
            team = Team(name=spec["name"], chat_channel=spec["chat_channel"])
            db.session.add(team)
            db.session.flush()
            result.created.append(f"team {team.name}")
        teams[team.name] = team
        for email, first, last, phone in spec["members"]:
            user = _get_or_create_user(
                email, first, last, phone, chosen, admin=False, result=result
            )
            users[email] = user
            if db.session.get(TeamMembership, (team.id, user.id)) is None:
                db.session.add(TeamMembership(team_id=team.id, user_id=user.id))
    db.session.flush()

    now = utcnow()
    for spec in INCIDENTS:
        team = teams[spec["team"]]
        exists = db.session.scalar(
            sa.select(Incident.id).where(
                Incident.team_id == team.id, Incident.title == spec["title"]
            )
        )
        if exists:
            continue
        created_at = now - timedelta(minutes=spec["minutes_ago"])
        reporter = users[spec["assignee"]] if spec["assignee"] else admin
        actor = Actor(reporter, ChangeSource.WEB)
        incident = create_incident(
            actor,
            IncidentCreate(
                title=spec["title"],
                description=f"Demo incident for the {team.name} team.",
                priority=spec["priority"],
                service=spec["service"],
                metadata=spec["metadata"],
                team_id=team.id,
                assignee_id=users[spec["assignee"]].id if spec["assignee"] else None,
            ),
        )
        if spec["status"] != IncidentStatus.TRIGGERED:
            change_status(actor, incident, "acknowledge")
        if spec["status"] == IncidentStatus.RESOLVED:
            change_status(actor, incident, "resolve")
        _backdate(incident, created_at)
        result.created.append(f"incident {spec['title']!r}")
    db.session.flush()
    if any(item.startswith("user ") for item in result.created):
        result.password = chosen
    return result
