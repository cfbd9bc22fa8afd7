"""The editor's variable list offers incident.previous: the steps of the workflows that run
on the same incidents (the team's and global ones), loaded when the list opens."""

from __future__ import annotations

import pytest

from app.definition.builders import chain, webhook_node
from app.extensions import db
from app.workflows import service


@pytest.fixture
def member(make_user, make_team, sign_in):
    """A member of Payments, signed in."""
    team = make_team("Payments")
    user = make_user("member@example.com", teams=[team])
    user.team = team
    sign_in(user.email)
    return user


def test_the_editor_lists_the_steps_earlier_runs_can_offer(client, member, make_team, make_user):
    admin = make_user("boss@example.com", admin=True)
    search = make_team("Search")

    def make(name, node_id, team_id):
        workflow = service.create_workflow(
            admin,
            name=name,
            description="d",
            scope="team" if team_id else "global",
            team_id=team_id,
            definition=chain(webhook_node(node_id)),
        )
        db.session.commit()
        return workflow

    mine = make("Open ticket", "open_ticket", member.team.id)
    make("Page on call", "page", None)
    make("Search only", "elsewhere", search.id)

    editor = client.get(f"/workflows/{mine.id}/edit?node=open_ticket").get_data(as_text=True)
    assert f"/workflows/{mine.id}/edit/previous-steps" in editor
    listed = client.get(f"/workflows/{mine.id}/edit/previous-steps").get_data(as_text=True)
    assert "incident.previous[&#34;Page on call&#34;][&#34;page&#34;].result" in listed
    assert "incident.previous[&#34;Open ticket&#34;][&#34;open_ticket&#34;].result" in listed
    assert "Search only" not in listed
