"""In the editor, the variable list loads the earlier runs' steps (incident.previous) when
it is opened."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from app.auth.models import Team, User
from app.definition.builders import chain, webhook_node
from app.extensions import db
from app.workflows import service
from tests.fixtures.browser import sign_in_as


def test_opening_the_variables_lists_the_steps_of_earlier_runs(page, live_app) -> None:
    with live_app.app_context():
        mia = db.session.scalar(sa.select(User).where(User.email == "mia@example.com"))
        team = db.session.scalar(sa.select(Team).where(Team.name == "Payments"))
        ids = []
        for name, node_id in (("Open a ticket", "open_ticket"), ("Close it", "close")):
            workflow = service.create_workflow(
                mia,
                name=name,
                description="d",
                scope="team",
                team_id=team.id,
                definition=chain(webhook_node(node_id)),
            )
            ids.append(workflow.id)
        db.session.commit()
        db.session.remove()
    sign_in_as(page, "mia@example.com")
    page.goto(f"/workflows/{ids[1]}/edit?node=close")
    listed = page.get_by_test_id("previous-steps")
    expect(listed).not_to_contain_text("Open a ticket")  # not loaded until opened
    page.get_by_text("Variables you can use in this node's templates").click()
    expect(listed).to_contain_text(
        """{{ incident.previous["Open a ticket"]["open_ticket"].result }}"""
    )
