"""Many workflows at once: varied, valid definitions inserted in bulk with SQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import env

STATUSES = ("TRIGGERED", "ACKNOWLEDGED", "RESOLVED")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
SERVICES = tuple(f"svc-{n}" for n in range(50))


def make_teams(app: Flask, count: int) -> list[str]:
    from app.auth.models import Team
    from app.extensions import db

    with app.app_context():
        teams = [Team(name=f"Team {n:02d}") for n in range(count)]
        db.session.add_all(teams)
        db.session.commit()
        ids = [t.id for t in teams]
        db.session.remove()
    return ids


def varied_trigger(rng: random.Random) -> dict[str, Any]:
    """An event trigger of a kind, transition and conditions drawn at random."""
    roll = rng.random()
    conditions: list[dict[str, str]] = []
    if rng.random() < 0.9:
        conditions.append({"field": "priority", "value": rng.choice(PRIORITIES)})
    if rng.random() < 0.6:
        conditions.append({"field": "service", "value": rng.choice(SERVICES)})
    if rng.random() < 0.1:
        conditions.append({"field": "metadata.region", "value": rng.choice(["eu", "us"])})
    if roll < 0.45:
        return {"type": "incident_created", "conditions": conditions}
    if roll < 0.8:
        to = rng.choice(STATUSES[1:])
        transition: dict[str, str] = {"to": to}
        if rng.random() < 0.5:
            transition["from"] = rng.choice([s for s in STATUSES if s != to])
        return {"type": "state_changed", "conditions": conditions, "stateTransition": transition}
    if roll < 0.95:
        return {"type": "escalation", "conditions": conditions}
    return {"type": "age", "conditions": conditions, "ageThresholdMinutes": rng.choice([30, 60])}


def small_definition(name: str, trigger: dict[str, Any]) -> dict[str, Any]:
    """trigger → webhook (never called: these workflows only need to exist)."""
    from app.definition.builders import definition, edge, trigger_node, webhook_node

    return definition(
        [trigger_node(), webhook_node("notify")],
        [edge("start", "notify")],
        trigger,
        name=name,
        description="A benchmark workflow.",
    )


def insert_workflows(
    app: Flask,
    seed: env.Seed,
    count: int,
    *,
    teams: list[str],
    make: Callable[[int, random.Random], dict[str, Any]],
    enabled: bool = True,
    team_share: float = 0.5,
    rng_seed: int = 7,
) -> list[str]:
    """Insert ``count`` workflows (and their version 1) in bulk; returns their ids.

    Every definition is validated by the schema before it is stored.
    """
    from app.db import new_id
    from app.definition import parse_definition
    from app.extensions import db
    from app.workflows.models import Workflow, WorkflowVersion

    rng = random.Random(rng_seed)
    now = datetime.now(UTC)
    ids: list[str] = []
    with app.app_context():
        chunk = 1000
        for offset in range(0, count, chunk):
            workflows, versions = [], []
            for n in range(offset, min(count, offset + chunk)):
                data = make(n, rng)
                data["settings"]["enabled"] = enabled
                canonical = parse_definition(data).to_json()
                team = rng.choice(teams) if teams and rng.random() < team_share else None
                workflow_id = new_id()
                ids.append(workflow_id)
                created = now - timedelta(seconds=count - n)
                workflows.append(
                    {
                        "id": workflow_id,
                        "name": canonical["name"],
                        "description": canonical["description"],
                        "version": 1,
                        "definition": canonical,
                        "scope_type": "team" if team else "global",
                        "team_id": team,
                        "is_enabled": enabled,
                        "is_template": False,
                        "created_by_id": seed.admin_id,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                versions.append(
                    {
                        "id": new_id(),
                        "workflow_id": workflow_id,
                        "version": 1,
                        "definition": canonical,
                        "changed_by_id": seed.admin_id,
                        "created_at": created,
                    }
                )
            db.session.execute(sa.insert(Workflow.__table__), workflows)
            db.session.execute(sa.insert(WorkflowVersion.__table__), versions)
            db.session.commit()
        db.session.remove()
    return ids
