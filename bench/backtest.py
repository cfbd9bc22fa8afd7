"""A backtest over 10,000 stored incident events."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import catalog, env
from bench.options import Options
from bench.results import Figure, Target, figure, not_measured

NAME = "backtest"
TITLE = "Backtesting a workflow over stored incident events"
METHOD = """\
2,500 incidents are inserted in bulk over the last 6 days, each with five events
as the incident service writes them: created, acknowledged, resolved, reopened,
resolved again — 12,500 events, 10,000 of them `state_changed`. The workflow
backtested (never enabled) starts on `state_changed` to RESOLVED with a trigger
condition on the team, then branches on the priority (P1 or not) to a 5-minute
delay, a second condition and a webhook. In the harness process,
`backtest.backtest(workflow, definition, days=7, sample=20)` is timed whole: it
reads the 10,000 events of the trigger's type, rebuilds each incident's history
from its events, matches each event, walks the path of every match (conditions
on the incident as it was, after the delay as it was then), and renders the
requests of 20 of them. Median over repetitions."""

INCIDENTS = 2_500
TARGET = Target("<", 5_000, "10,000 events in < 5 s")


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    for kind in ("sqlite", "postgresql"):
        setup = ("SQLite" if kind == "sqlite" else "PostgreSQL") + ", in-process"
        key = f"{NAME}.events10k.{kind}"
        label = "Backtest over 10,000 events (7 days)"
        try:
            figures.append(measure(options, kind, key, label, setup))
        except Exception as error:  # one database failing must not lose the other
            reason = f"failed: {type(error).__name__}: {error}"[:300]
            options.log(f"  {reason}")
            figures.append(not_measured(key, NAME, label, setup, "ms", reason, TARGET))
    return figures


def measure(options: Options, kind: str, key: str, label: str, setup: str) -> Figure:
    if kind == "postgresql" and (reason := env.postgres_available()):
        return not_measured(key, NAME, label, setup, "ms", reason, TARGET)
    options.log(f"backtest: {setup}")
    samples: list[float] = []
    extra: dict[str, Any] = {}
    with env.database(kind) as database:
        app = env.make_app(database)
        seed = env.seed(app)
        insert_history(app, seed, INCIDENTS)
        workflow_id = make_workflow(app, seed)
        for _ in range(options.repeats):
            elapsed, extra = time_backtest(app, workflow_id)
            samples.append(elapsed * 1000)
            options.log(f"  {elapsed * 1000:.0f} ms, {extra}")
    return figure(key, NAME, label, setup, "ms", samples, target=TARGET, extra=extra)


def insert_history(app: Flask, seed: env.Seed, count: int) -> None:
    """``count`` incidents of the seed's team, five events each, in bulk."""
    from app.db import new_id
    from app.extensions import db
    from app.incidents.models import Incident, IncidentEvent

    rng = random.Random(5)
    now = datetime.now(UTC)
    with app.app_context():
        for offset in range(0, count, 500):
            incidents, events = [], []
            for n in range(offset, min(count, offset + 500)):
                opened = now - timedelta(days=6) + timedelta(seconds=n * 200)
                priority = rng.choice(catalog.PRIORITIES)
                incident_id = new_id()
                steps = [
                    (opened, "incident_created", None, "TRIGGERED"),
                    (opened + timedelta(minutes=3), "state_changed", "TRIGGERED", "ACKNOWLEDGED"),
                    (opened + timedelta(minutes=30), "state_changed", "ACKNOWLEDGED", "RESOLVED"),
                    (opened + timedelta(minutes=40), "state_changed", "RESOLVED", "TRIGGERED"),
                    (opened + timedelta(minutes=55), "state_changed", "TRIGGERED", "RESOLVED"),
                ]
                incidents.append(
                    {
                        "id": incident_id,
                        "title": f"Backtest incident {n}",
                        "description": "",
                        "priority": priority,
                        "status": "RESOLVED",
                        "service": rng.choice(catalog.SERVICES),
                        "metadata_": {},
                        "team_id": seed.team_id,
                        "escalation_level": 0,
                        "created_at": opened,
                        "updated_at": steps[-1][0],
                        "resolved_at": steps[-1][0],
                        "acknowledged_at": None,
                    }
                )
                for at, kind, before, after in steps:
                    if kind == "incident_created":
                        changes: dict[str, Any] = {
                            "title": {"from": None, "to": f"Backtest incident {n}"},
                            "priority": {"from": None, "to": priority},
                            "status": {"from": None, "to": "TRIGGERED"},
                        }
                    else:
                        changes = {"status": {"from": before, "to": after}}
                    events.append(
                        {
                            "incident_id": incident_id,
                            "type": kind,
                            "changes": changes,
                            "source": "api",
                            "created_at": at,
                            "processed_at": at,
                        }
                    )
            db.session.execute(sa.insert(Incident), incidents)
            db.session.execute(sa.insert(IncidentEvent), events)
            db.session.commit()
        db.session.remove()


def make_workflow(app: Flask, seed: env.Seed) -> str:
    from app.auth.models import Team, User
    from app.definition.builders import (
        condition_node,
        definition,
        delay_node,
        edge,
        trigger_config,
        trigger_node,
        webhook_node,
    )
    from app.extensions import db
    from app.workflows import service

    with app.app_context():
        admin = db.session.get(User, seed.admin_id)
        team = db.session.get(Team, seed.team_id)
        assert admin is not None and team is not None
        defn = definition(
            [
                trigger_node(),
                condition_node("is_p1", "priority", "P1"),
                delay_node("pause", 5),
                condition_node("still_resolved", "status", "RESOLVED"),
                webhook_node("notify"),
            ],
            [
                edge("start", "is_p1"),
                edge("is_p1", "pause", "true"),
                edge("pause", "still_resolved"),
                edge("still_resolved", "notify", "true"),
            ],
            trigger_config(
                "state_changed",
                stateTransition={"to": "RESOLVED"},
                conditions=[{"field": "team", "value": team.name}],
            ),
            name="Backtested",
        )
        workflow = service.create_workflow(
            admin,
            name="Backtested",
            description="A benchmark workflow.",
            scope="global",
            team_id=None,
            definition=defn,
        )
        db.session.commit()
        workflow_id = workflow.id
        db.session.remove()
    return workflow_id


def time_backtest(app: Flask, workflow_id: str) -> tuple[float, dict[str, Any]]:
    from app.definition import WorkflowDefinition
    from app.engine import backtest
    from app.extensions import db
    from app.workflows.models import Workflow

    with app.app_context():
        workflow = db.session.get(Workflow, workflow_id)
        assert workflow is not None
        definition = WorkflowDefinition.model_validate(workflow.definition)
        db.session.expire_all()
        begin = time.perf_counter()
        result = backtest.backtest(
            workflow, definition, now=datetime.now(UTC), days=7, sample=20, clock=time
        )
        elapsed = time.perf_counter() - begin
        extra = {
            "events_considered": result.considered,
            "runs": len(result.runs),
            "incidents": result.incidents,
            "sampled": sum(1 for run in result.runs if run.sampled),
        }
        db.session.remove()
    return elapsed, extra
