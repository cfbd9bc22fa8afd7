"""The backtest page: a draft, the current version or an older one, linked from the editor
and the version history; it reads and sends nothing."""

from __future__ import annotations

import copy

import pytest

from app.definition.builders import chain, webhook_node
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentCreate
from app.workflows import service
from app.workflows.drafts import store as draft_store


@pytest.fixture
def on_p1(member, team):
    """A team workflow: v1 on every new incident, v2 only on P1 ones."""
    v1 = chain(webhook_node("notify", url="https://hooks.example.com/one"))
    workflow = service.create_workflow(
        member, name="Notify", description="d", scope="team", team_id=team.id, definition=v1
    )
    v2 = copy.deepcopy(workflow.definition)
    v2["trigger"]["conditions"] = [{"field": "priority", "value": "P1"}]
    service.save_version(member, workflow, v2, base_version=1, change_note="P1 only")
    for title, priority in (("Disk full", "P1"), ("Slow page", "P3")):
        incidents.create_incident(
            incidents.Actor(member, ChangeSource.API),
            IncidentCreate(title=title, priority=priority, team_id=team.id),
        )
    db.session.commit()
    return workflow


def test_each_definition_is_backtested_and_linked(client, member, on_p1) -> None:
    current = client.get(f"/workflows/{on_p1.id}/backtest")
    assert current.status_code == 200
    page = current.get_data(as_text=True)
    assert "Version 2 (current)" in page and "<strong>1</strong> run on" in page
    assert "Disk full" in page and "Slow page" not in page

    older = client.get(f"/workflows/{on_p1.id}/backtest?source=version&version=1")
    text = older.get_data(as_text=True)
    assert "Version 1 over 7 days" in text and "<strong>2</strong> runs on" in text

    draft = draft_store.load_draft(member, on_p1)
    changed = copy.deepcopy(draft.definition)
    changed["trigger"]["conditions"] = [{"field": "priority", "value": "P3"}]
    draft.definition = changed
    db.session.commit()
    mine = client.get(f"/workflows/{on_p1.id}/backtest?source=draft").get_data(as_text=True)
    assert "Your draft over 7 days" in mine and "Slow page" in mine and "Disk full" not in mine

    editor = client.get(f"/workflows/{on_p1.id}/edit").get_data(as_text=True)
    assert f"/workflows/{on_p1.id}/backtest?source=draft" in editor
    history = client.get(f"/workflows/{on_p1.id}/versions").get_data(as_text=True)
    assert f"/workflows/{on_p1.id}/backtest?source=version&amp;version=1" in history


def test_a_draft_with_problems_is_refused_with_a_message(client, member, on_p1) -> None:
    draft = draft_store.load_draft(member, on_p1)
    broken = copy.deepcopy(draft.definition)
    broken["edges"] = []
    draft.definition = broken
    db.session.commit()
    response = client.get(f"/workflows/{on_p1.id}/backtest?source=draft")
    assert response.status_code == 422
    assert "The definition of your draft has problems" in response.get_data(as_text=True)
