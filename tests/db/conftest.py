"""Fixtures of the page tests: a team, its member Mia, her workflow and her editor tab."""

from __future__ import annotations

import copy

import pytest
from flask import Flask

from app.extensions import db
from app.workflows import service
from app.workflows.models import Workflow
from tests.builders import signed_in
from tests.factories import SIMPLE_DEFINITION
from tests.page_support import Editor


@pytest.fixture
def team(make_team):
    """The Payments team."""
    return make_team("Payments")


@pytest.fixture
def mia(make_user, team):
    """A member of Payments."""
    return make_user("mia@example.com", teams=[team], first_name="Mia")


@pytest.fixture
def workflow(mia, team) -> Workflow:
    """A team workflow at v1: trigger -> webhook 'notify'."""
    created = service.create_workflow(
        mia,
        name="Notify on P1",
        description="Posts to a webhook.",
        scope="team",
        team_id=team.id,
        definition=copy.deepcopy(SIMPLE_DEFINITION),
    )
    db.session.commit()
    return created


@pytest.fixture
def member(make_user, team, sign_in):
    """A member of ``team``, signed in."""
    user = make_user("member@example.com", teams=[team], first_name="Mia")
    sign_in(user.email)
    return user


@pytest.fixture
def editor(app: Flask, mia, workflow) -> Editor:
    """Mia's editor tab on the workflow."""
    return Editor(signed_in(app, mia.email), workflow.id)
