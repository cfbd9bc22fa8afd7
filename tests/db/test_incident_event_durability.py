"""An incident change and its event are committed together or not at all.

Failures are injected at each step of the transaction, and a real process is
SIGKILLed just before and just after its commit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.extensions import db
from app.incidents import service
from app.incidents.enums import ChangeSource, IncidentStatus
from app.incidents.models import Incident, IncidentEvent
from app.incidents.schemas import IncidentCreate, IncidentUpdate


class Boom(Exception):
    """The failure injected on purpose."""


@pytest.fixture
def member(make_user, make_team):
    """A member of a team, with that team as ``member.team``."""
    team = make_team("Ops")
    user = make_user("ops@example.com", teams=[team])
    user.team = team
    return user


CHANGES: dict[str, Callable[..., None]] = {
    "create": lambda actor, incident, team: service.create_incident(
        actor, IncidentCreate(title="new one", team_id=team.id)
    ),
    "acknowledge": lambda actor, incident, team: service.change_status(
        actor, incident, "acknowledge"
    ),
    "escalate": lambda actor, incident, team: service.escalate(actor, incident),
    "update": lambda actor, incident, team: service.update_incident(
        actor, incident, IncidentUpdate(priority="P1", metadata={"x": 1})
    ),
}


def snapshot() -> tuple:
    db.session.expire_all()
    incidents = db.session.execute(
        sa.select(
            Incident.id,
            Incident.status,
            Incident.escalation_level,
            Incident.priority,
            Incident.row_version,
        ).order_by(Incident.id)
    ).all()
    events = db.session.scalar(sa.select(sa.func.count()).select_from(IncidentEvent))
    return tuple(incidents), events


def inject(hook: str) -> Callable[[], None]:
    def fail(*_args: object) -> None:
        raise Boom(hook)

    sa.event.listen(Session, hook, fail)
    return lambda: sa.event.remove(Session, hook, fail)


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize(
    "hook", ["before_flush", "after_flush", "after_flush_postexec", "before_commit"]
)
def test_a_failure_anywhere_before_commit_leaves_neither(
    member, make_incident, change, hook
) -> None:
    incident = make_incident(team=member.team)
    before = snapshot()
    incident = db.session.get(Incident, incident.id)
    remove = inject(hook)
    try:
        with pytest.raises(Boom):
            CHANGES[change](service.Actor(member, ChangeSource.WEB), incident, member.team)
            db.session.commit()
    finally:
        remove()
    db.session.rollback()
    assert snapshot() == before


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_failure_after_commit_leaves_both(member, make_incident, change) -> None:
    incident = make_incident(team=member.team)
    before_incidents, before_events = snapshot()
    incident = db.session.get(Incident, incident.id)
    remove = inject("after_commit")
    try:
        with pytest.raises(Boom):
            CHANGES[change](service.Actor(member, ChangeSource.WEB), incident, member.team)
            db.session.commit()
    finally:
        remove()
    db.session.remove()  # the session stopped in its "committed" state
    after_incidents, after_events = snapshot()
    assert after_incidents != before_incidents
    assert after_events > before_events


def test_an_event_the_database_refuses_takes_the_change_with_it(member, make_incident) -> None:
    incident = make_incident(team=member.team)
    before = snapshot()
    incident = db.session.get(Incident, incident.id)
    original = service._record

    def record_bad_event(actor, incident, type_, changes):  # noqa: ANN001
        event = original(actor, incident, type_, changes)
        event.actor_id = "no-such-user"  # violates the foreign key at flush
        return event

    service._record = record_bad_event
    try:
        with pytest.raises(sa.exc.IntegrityError):
            service.change_status(service.Actor(member, ChangeSource.WEB), incident, "resolve")
            db.session.commit()
    finally:
        service._record = original
    db.session.rollback()
    assert snapshot() == before


CHILD = textwrap.dedent("""
    import sys
    from app import create_app
    from app.extensions import db
    from app.auth.models import User
    from app.incidents import service
    from app.incidents.enums import ChangeSource
    url, instance, incident_id, user_id, when = sys.argv[1:]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance,
                      "SECRET_KEY": "child"})
    with app.app_context():
        user = db.session.get(User, user_id)
        incident = service.get_incident(user, incident_id, for_update=True)
        service.change_status(service.Actor(user, ChangeSource.API), incident, "acknowledge")
        if when == "after":
            db.session.commit()
        print("READY", flush=True)
        sys.stdin.readline()  # wait here until killed
""")


@pytest.mark.slow
@pytest.mark.parametrize(("when", "expect_change"), [("before", False), ("after", True)])
def test_killing_the_process_around_the_commit(
    app, member, make_incident, tmp_path, when, expect_change
) -> None:
    incident_id, member_id = make_incident(team=member.team).id, member.id
    db.session.remove()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            app.config["SQLALCHEMY_DATABASE_URI"],
            str(tmp_path / "child"),
            incident_id,
            member_id,
            when,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        assert child.stdout.readline().strip() == "READY"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    db.engine.dispose()  # the killed process's connection is gone; start afresh
    reloaded = db.session.get(Incident, incident_id)
    events = db.session.scalars(
        sa.select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
    ).all()
    assert (reloaded.status == IncidentStatus.ACKNOWLEDGED) is expect_change
    assert len(events) == (1 if expect_change else 0)
