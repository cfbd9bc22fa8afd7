"""An htmx action that meets an error shows the error page in the main area: the click
never seems to do nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.auth.models import Team, User
from app.definition.builders import chain, webhook_node
from app.extensions import db
from app.workflows import service
from app.workflows.enums import ScopeType
from app.workflows.models import Workflow
from tests.fixtures.browser import sign_in_as


def _workflow_of_mia(app: Flask) -> str:
    with app.app_context():
        mia = db.session.scalar(sa.select(User).where(User.email == "mia@example.com"))
        team = db.session.scalar(sa.select(Team).where(Team.name == "Payments"))
        assert mia is not None and team is not None
        workflow = service.create_workflow(
            mia,
            name="Page the payments lead",
            description="Pages the payments lead",
            scope=ScopeType.TEAM,
            team_id=team.id,
            definition=chain(webhook_node("notify")),
        )
        db.session.commit()
        workflow_id = workflow.id
        db.session.remove()
    return workflow_id


def _delete(app: Flask, workflow_id: str) -> None:
    with app.app_context():
        mia = db.session.scalar(sa.select(User).where(User.email == "mia@example.com"))
        workflow = db.session.get(Workflow, workflow_id)
        assert mia is not None and workflow is not None
        service.delete_workflow(mia, workflow)
        db.session.commit()
        db.session.remove()


def test_a_switch_for_a_workflow_deleted_meanwhile_shows_not_found(
    page: Any, live_app: Flask
) -> None:
    workflow_id = _workflow_of_mia(live_app)
    sign_in_as(page, "mia@example.com")
    page.goto("/workflows")
    switch = page.get_by_role("switch", name="Enabled: Page the payments lead")
    expect(switch).to_be_visible()
    _delete(live_app, workflow_id)  # in another tab, by someone else

    switch.click()

    main = page.locator("#main")
    expect(main.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("#wf-" + workflow_id)).to_have_count(0)
