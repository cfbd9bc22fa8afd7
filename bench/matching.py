"""The cost of matching one incident event against 1,000 enabled workflows."""

from __future__ import annotations

import random
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench import catalog, env
from bench.options import Options
from bench.results import Figure, figure, not_measured, percentile

NAME = "matching"
TITLE = "Matching an event against enabled workflows"
METHOD = """\
1,000 enabled workflows are inserted in bulk (valid definitions, checked by the
schema): 45 % `incident_created`, 35 % `state_changed` (random target and,
half the time, source status), 15 % `escalation`, 5 % `age`; 90 % carry a priority
condition, 60 % a service condition (one of 50), 10 % a metadata condition; 20 %
are global, 80 % belong to one of 50 teams. Incidents are opened and half of them
acknowledged through the incident service, so their events are a mix of
`incident_created` and `state_changed`. In the harness process, with no worker
running, `triggers.consume_events(clock, limit=1)` plus the commit is timed for
one event at a time — everything the consumer does for one event: claim it,
load the enabled workflows, match, create the matching runs (the JSON gives how
many per event), mark it processed. Separately: loading the enabled workflows
(`enabled_workflows`), and matching alone (`event_matches` over the loaded
candidates, in memory). p50/p99 over the events of a repetition, median over
repetitions."""


def run(options: Options) -> list[Figure]:
    figures: list[Figure] = []
    for kind in ("sqlite", "postgresql"):
        try:
            figures += measure(options, kind)
        except Exception as error:  # one database failing must not lose the other
            reason = f"failed: {type(error).__name__}: {error}"[:300]
            options.log(f"  {reason}")
            figures += [
                not_measured(key, NAME, label, kind, "ms", reason, None)
                for key, label in _keys_and_labels(kind, options)
            ]
    return figures


def _labels(kind: str) -> list[tuple[str, str]]:
    return [
        (f"{NAME}.consume.p50.{kind}", "Consume one event (1,000 workflows), p50"),
        (f"{NAME}.consume.p99.{kind}", "Consume one event (1,000 workflows), p99"),
        (f"{NAME}.load.p50.{kind}", "Load 1,000 enabled workflows, p50"),
        (f"{NAME}.match.p50.{kind}", "Match one event in memory (1,000 workflows), p50"),
    ]


def _keys_and_labels(kind: str, options: Options) -> list[tuple[str, str]]:
    return _labels(kind)


def measure(options: Options, kind: str) -> list[Figure]:
    setup = ("SQLite" if kind == "sqlite" else "PostgreSQL") + ", in-process"
    count = options.workflows_for_matching
    labels = _labels(kind)
    if kind == "postgresql" and (reason := env.postgres_available()):
        return [not_measured(k, NAME, label, setup, "ms", reason, None) for k, label in labels]
    options.log(f"matching: {setup}")
    samples: dict[str, list[float]] = {k: [] for k, _ in labels}
    runs_started: list[float] = []
    with env.database(kind) as database:
        app = env.make_app(database)
        seed = env.seed(app)
        teams = catalog.make_teams(app, 50)
        catalog.insert_workflows(
            app,
            seed,
            count,
            teams=teams,
            team_share=0.8,
            make=lambda n, rng: catalog.small_definition(
                f"Matching {n:04d}", catalog.varied_trigger(rng)
            ),
        )
        for _ in range(options.repeats):
            make_events(app, seed, teams, options.matching_events)
            consume, started = time_consume(app, options.matching_events)
            load, match = time_parts(app)
            for (key, _), values in zip(labels, [consume, consume, load, match], strict=True):
                pct = 99 if ".p99." in key else 50
                samples[key].append(percentile(values, pct) * 1000)
            runs_started.extend(started)
            options.log(
                f"  consume p50 {samples[labels[0][0]][-1]:.2f} ms, "
                f"p99 {samples[labels[1][0]][-1]:.2f} ms; load p50 "
                f"{samples[labels[2][0]][-1]:.2f} ms; match p50 {samples[labels[3][0]][-1]:.3f} ms"
            )
    extra = {
        "workflows": count,
        "runs_started_per_event_mean": round(sum(runs_started) / max(len(runs_started), 1), 1),
        "events_per_repetition": options.matching_events,
    }
    return [
        figure(key, NAME, label, setup, "ms", samples[key], extra=extra) for key, label in labels
    ]


def make_events(app: Flask, seed: env.Seed, teams: list[str], count: int) -> None:
    """Open ``count // 2`` incidents and acknowledge each: ``count`` events."""
    from app.auth.models import User
    from app.extensions import db
    from app.incidents import service as incidents
    from app.incidents.enums import ChangeSource
    from app.incidents.schemas import IncidentCreate

    rng = random.Random(11)
    with app.app_context():
        admin = db.session.get(User, seed.admin_id)
        actor = incidents.Actor(admin, ChangeSource.API)
        opened = []
        for n in range(max(1, count // 2)):
            data: dict[str, Any] = {
                "title": f"Matching incident {n}",
                "priority": rng.choice(catalog.PRIORITIES),
                "service": rng.choice(catalog.SERVICES),
                "team_id": rng.choice(teams),
                "metadata": {"region": rng.choice(["eu", "us"])},
            }
            opened.append(incidents.create_incident(actor, IncidentCreate(**data)))
        db.session.commit()
        for incident in opened:
            incidents.change_status(actor, incident, "acknowledge")
        db.session.commit()
        db.session.remove()


def time_consume(app: Flask, count: int) -> tuple[list[float], list[float]]:
    """Seconds to consume each waiting event, and how many runs each started."""
    from app.engine import triggers
    from app.engine.clock import SystemClock
    from app.extensions import db
    from app.workflows.models import WorkflowExecution

    clock = SystemClock()
    times, started = [], []
    with app.app_context():
        for _ in range(count + 5):
            before = db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowExecution))
            db.session.rollback()
            begin = time.perf_counter()
            done = triggers.consume_events(clock, 1)
            db.session.commit()
            elapsed = time.perf_counter() - begin
            if not done:
                break
            times.append(elapsed)
            after = db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowExecution))
            db.session.rollback()
            started.append(float((after or 0) - (before or 0)))
        db.session.remove()
    return times, started


def time_parts(app: Flask, repeat: int = 30) -> tuple[list[float], list[float]]:
    """Seconds to load the enabled workflows, and to match one event in memory."""
    from app.engine import triggers
    from app.extensions import db
    from app.incidents.models import Incident, IncidentEvent

    load, match = [], []
    with app.app_context():
        events = list(
            db.session.scalars(sa.select(IncidentEvent).order_by(IncidentEvent.id.desc()).limit(10))
        )
        incidents = {
            i.id: i
            for i in db.session.scalars(
                sa.select(Incident).where(Incident.id.in_({e.incident_id for e in events}))
            )
        }
        for incident in incidents.values():
            _ = incident.team  # loaded once, as the consumer does with selectinload
        types = set(triggers.EVENT_TRIGGERS.values())
        for n in range(repeat):
            begin = time.perf_counter()
            candidates = triggers.enabled_workflows(types)
            load.append(time.perf_counter() - begin)
            event = events[n % len(events)]
            incident = incidents[event.incident_id]
            begin = time.perf_counter()
            for candidate in candidates:
                triggers.event_matches(candidate, incident, event)
            match.append(time.perf_counter() - begin)
        db.session.remove()
    return load, match
