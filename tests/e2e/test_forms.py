"""Form details in the browser: required fields say so next to their label, and the
assignee list follows the team chosen on the new-incident form."""

from __future__ import annotations

from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.auth.models import Team, TeamMembership, User
from app.extensions import db
from tests.fixtures.browser import PASSWORD, sign_in_as

AFTER = "element => getComputedStyle(element, '::after').content"


def test_required_fields_are_marked_next_to_their_label(page: Any) -> None:
    sign_in_as(page, "ada@example.com")
    page.goto("/workflows/new")
    description = page.get_by_label("Description")
    expect(description).to_have_attribute("required", "")
    label = page.locator("label[for='description']")
    assert label.evaluate(AFTER) == '" (required)"'
    # An optional field has no mark.
    page.goto("/incidents/new")
    assert page.locator("label[for='service']").evaluate(AFTER) in ("none", "normal")
    assert page.locator("label[for='title']").evaluate(AFTER) == '" (required)"'


def test_the_assignee_list_follows_the_chosen_team(live_app: Flask, page: Any) -> None:
    with live_app.app_context():
        mia = db.session.query(User).filter_by(email="mia@example.com").one()
        search = Team(name="Search")
        sam = User(email="sam@example.com", first_name="Sam", last_name="Search")
        sam.set_password(PASSWORD)
        db.session.add_all([search, sam])
        db.session.flush()
        db.session.add_all(
            [
                TeamMembership(team_id=search.id, user_id=sam.id),
                TeamMembership(team_id=search.id, user_id=mia.id),
            ]
        )
        db.session.commit()
        db.session.remove()
    sign_in_as(page, "mia@example.com")
    page.goto("/incidents/new")
    assignee = page.get_by_label("Assignee")
    expect(assignee.locator("option", has_text="Sam Search")).to_have_count(0)
    page.get_by_label("Team").select_option(label="Search")
    expect(assignee.locator("option", has_text="Sam Search")).to_have_count(1)
    page.get_by_label("Title").fill("Search is slow")
    page.get_by_label("Assignee").select_option(label="Sam Search")
    page.get_by_role("button", name="Open incident").click()
    expect(page.get_by_role("heading", name="Search is slow")).to_be_visible()
    expect(page.locator(".incident-head")).to_contain_text("Sam Search")
