"""A team member replays a failed run from its page: preview, choose, replay, follow links."""

from __future__ import annotations

from flask import Flask
from playwright.sync_api import expect

from app.auth.models import User
from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.engine.clock import SystemClock
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentCreate
from app.workflows import service as workflows
from app.workflows.enums import ScopeType
from app.workflows.models import WorkflowExecution
from tests.builders import webhook
from tests.fakes.servers import WebhookReceiver, json_reply
from tests.fixtures.browser import sign_in_as


def failed_run(app: Flask, receiver: WebhookReceiver) -> str:
    """A team workflow whose second call failed (503), run by a real worker."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    with app.app_context():
        admin = db.session.query(User).filter_by(email="ada@example.com").one()
        member = db.session.query(User).filter_by(email="mia@example.com").one()
        team_id = member.memberships[0].team_id
        workflow = workflows.create_workflow(
            admin,
            name="Notify twice",
            description="Two calls.",
            scope=ScopeType.TEAM,
            team_id=team_id,
            definition=definition(
                [
                    trigger_node(),
                    webhook("one", receiver.url + "/one", attempts=1),
                    webhook("two", receiver.url + "/two", attempts=1),
                ],
                [edge("start", "one"), edge("one", "two")],
                trigger_config("incident_created"),
            ),
        )
        workflows.set_enabled(admin, workflow, True)
        incidents.create_incident(
            incidents.Actor(member, ChangeSource.API),
            IncidentCreate(title="Payments down", team_id=team_id),
        )
        db.session.commit()
        db.session.remove()
    receiver.reply(json_reply(200, {"ok": True}), json_reply(503, {"error": "down"}))
    drain(app)
    with app.app_context():
        run = db.session.query(WorkflowExecution).one()
        assert run.status == "FAILED"
        run_id = run.id
        db.session.remove()
    return run_id


def drain(app: Flask) -> None:
    worker = Worker(app, clock=SystemClock(), settings=WorkerSettings(age_scan_seconds=0))
    with app.app_context():
        for _ in range(20):
            if worker.run_once() == 0:
                break
        db.session.remove()


def test_replay_a_failed_run_from_its_page(page, live_app) -> None:
    receiver = WebhookReceiver().start()
    try:
        run_id = failed_run(live_app, receiver)
        receiver.requests.clear()
        sign_in_as(page, "mia@example.com")
        page.goto(f"/runs/{run_id}")
        page.get_by_role("link", name="Replay…").click()
        preview = page.get_by_test_id("replay-preview")
        expect(preview).to_contain_text("Starts at Call two")
        expect(preview).to_contain_text("Carried over from this run")

        page.get_by_label("from the start").check()
        page.get_by_role("button", name="Preview").click()
        expect(preview).not_to_contain_text("Carried over from this run")
        expect(preview.locator("ol.replay-steps li")).to_have_count(3)

        page.get_by_label("from the failed step").check()
        page.get_by_role("button", name="Preview").click()
        page.get_by_role("button", name="Replay", exact=True).click()
        expect(page.get_by_test_id("replay-of")).to_contain_text(f"#{run_id[-8:]}")
        drain(live_app)
        page.reload()
        expect(page.get_by_test_id("run-status")).to_have_text("Completed")
        assert [r.path for r in receiver.requests] == ["/two"]

        page.get_by_test_id("replay-of").get_by_role("link").click()
        expect(page.get_by_test_id("replayed-as")).to_be_visible()
    finally:
        receiver.stop()
