"""Version history: list, view a version, diff two versions, roll back."""

from __future__ import annotations

import copy
import json
import re

import pytest
import sqlalchemy as sa

from app.definition import parse_definition, referenced_secrets
from app.definition.builders import chain, webhook_node
from app.errors import InvalidInput
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.enums import ExecutionStatus
from app.workflows.models import Workflow, WorkflowExecution, WorkflowVersion
from app.workflows.templates_builtin import install_builtin_templates
from tests.conftest import csrf_token_from


@pytest.fixture
def member(make_user, team, sign_in):
    """A member of ``team``, signed in."""
    user = make_user("member@example.com", teams=[team], first_name="Mia", last_name="Member")
    sign_in(user.email)
    return user


@pytest.fixture
def three_versions(member, team):
    """A team workflow saved three times: v1 webhook to /one, v2 to /two, v3 adds a step."""
    v1 = chain(webhook_node("notify", url="https://hooks.example.com/one"))
    workflow = service.create_workflow(
        member,
        name="Notify",
        description="Posts to a hook.",
        scope="team",
        team_id=team.id,
        definition=v1,
    )
    v2 = copy.deepcopy(workflow.definition)
    v2["nodes"][1]["data"]["config"]["url"] = "https://hooks.example.com/two"
    service.save_version(member, workflow, v2, base_version=1, change_note="Second hook")
    v3 = copy.deepcopy(workflow.definition)
    v3["nodes"].append(webhook_node("audit", url="https://audit.example.com/log"))
    v3["edges"].append({"id": "e-notify-audit", "source": "notify", "target": "audit"})
    service.save_version(member, workflow, v3, base_version=2, change_note="Audit too")
    db.session.commit()
    return workflow


def version_row(workflow_id: str, number: int) -> WorkflowVersion:
    return db.session.scalar(
        sa.select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == number
        )
    )


def test_history_lists_every_version_with_author_time_note_and_marks_the_current(
    client, three_versions
):
    page = client.get(f"/workflows/{three_versions.id}/versions").text
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page.split("<tbody>")[1], re.S)
    assert len(rows) == 3
    assert "v3" in rows[0] and "current" in rows[0] and 'aria-current="true"' in rows[0]
    assert "Audit too" in rows[0] and "Mia Member" in rows[0] and "<time" in rows[0]
    assert "Second hook" in rows[1] and "current" not in rows[1]
    assert "Created" in rows[2]
    assert "Roll back" in rows[1] and "Roll back" not in rows[0]


def test_a_version_page_shows_its_graph_and_json(client, three_versions):
    page = client.get(f"/workflows/{three_versions.id}/versions/1").text
    assert "<svg" in page and "Notify, version 1" in page
    assert "https://hooks.example.com/one" in page and "audit" not in page.split("<svg")[1]
    json_text = re.search(r'<pre class="wf-json"[^>]*><code>(.*?)</code>', page, re.S).group(1)
    stored = version_row(three_versions.id, 1).definition
    assert json.loads(json_text.replace("&#34;", '"').replace("&quot;", '"')) == stored


def test_an_unknown_version_is_404(client, three_versions):
    assert client.get(f"/workflows/{three_versions.id}/versions/9").status_code == 404
    assert client.get(f"/workflows/{three_versions.id}/diff?from=1&to=9").status_code == 404


def test_the_diff_names_changed_fields_and_added_nodes_and_edges(client, three_versions):
    changed = client.get(f"/workflows/{three_versions.id}/diff?from=1&to=2").text
    assert "data.config.url" in changed
    assert "https://hooks.example.com/one" in changed and "https://hooks.example.com/two" in changed

    added = client.get(f"/workflows/{three_versions.id}/diff?from=2&to=3").text
    added_section = added.split('id="d-nodes"')[1]
    assert "Added" in added_section and "audit" in added_section
    assert "e-notify-audit" in added.split('id="d-edges"')[1]


def test_the_diff_defaults_to_the_previous_version_against_the_chosen_one(client, three_versions):
    page = client.get(f"/workflows/{three_versions.id}/diff").text
    assert re.search(r'id="diff-from".*?<option value="2" selected>', page, re.S)
    assert re.search(r'id="diff-to".*?<option value="3" selected>', page, re.S)
    page = client.get(f"/workflows/{three_versions.id}/diff?to=2").text
    assert re.search(r'id="diff-from".*?<option value="1" selected>', page, re.S)


def test_rollback_asks_then_creates_a_new_version_equal_to_the_chosen_one(
    client, member, three_versions, make_incident, make_execution, team
):
    workflow_id = three_versions.id
    in_flight = make_execution(
        three_versions, make_incident(team=team), status=ExecutionStatus.RUNNING
    )
    snapshot = copy.deepcopy(in_flight.definition_snapshot)
    before = {n: copy.deepcopy(version_row(workflow_id, n).definition) for n in (1, 2, 3)}

    page = client.get(f"/workflows/{workflow_id}/versions/1/rollback").text
    assert "Roll back to v1? This creates version v4 equal to v1." in page
    response = client.post(
        f"/workflows/{workflow_id}/versions/1/rollback",
        data={"csrf_token": csrf_token_from(page), "base_version": "3"},
    )
    assert response.status_code == 303
    assert response.location.endswith(f"/workflows/{workflow_id}/versions")

    db.session.rollback()
    workflow = db.session.get(Workflow, workflow_id)
    new = version_row(workflow_id, 4)
    assert workflow.version == 4 and new.change_note == "Rolled back to v1"
    assert new.changed_by_id == member.id
    expected = {**before[1], "version": 4}
    assert new.definition == expected and workflow.definition == expected
    # History is never rewritten, and runs in flight keep their snapshot.
    assert {n: version_row(workflow_id, n).definition for n in (1, 2, 3)} == before
    assert db.session.get(WorkflowExecution, in_flight.id).definition_snapshot == snapshot
    assert "Rolled back to v1" in client.get(f"/workflows/{workflow_id}/versions").text


def test_a_rollback_confirmed_against_an_older_current_version_is_refused(
    client, member, three_versions
):
    page = client.get(f"/workflows/{three_versions.id}/versions/1/rollback").text
    response = client.post(
        f"/workflows/{three_versions.id}/versions/1/rollback",
        data={"csrf_token": csrf_token_from(page), "base_version": "2"},
    )
    assert response.status_code == 409
    assert "Version 3 has been saved since" in response.text
    db.session.rollback()
    assert db.session.get(Workflow, three_versions.id).version == 3


def test_a_member_can_view_but_not_roll_back_a_global_workflow(
    client, member, make_workflow, make_user
):
    workflow = make_workflow(created_by=make_user(admin=True))
    history = client.get(f"/workflows/{workflow.id}/versions").text
    assert "Roll back" not in history
    page = client.get(f"/workflows/{workflow.id}/versions/1/rollback")
    assert page.status_code == 200 and "You can view this workflow but not change it" in page.text
    response = client.post(
        f"/workflows/{workflow.id}/versions/1/rollback",
        data={"csrf_token": csrf_token_from(page.text)},
    )
    assert response.status_code == 403
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id).version == 1


def test_rolling_an_enabled_workflow_back_to_a_version_missing_a_secret_is_refused(
    client, member, team
):
    v1 = chain(webhook_node("notify", auth={"type": "bearer", "token": "{{ secrets.old_token }}"}))
    workflow = service.create_workflow(
        member, name="Hook", description="Posts.", scope="team", team_id=team.id, definition=v1
    )
    v2 = copy.deepcopy(workflow.definition)
    v2["nodes"][1]["data"]["config"]["auth"] = {"type": "none"}
    service.save_version(member, workflow, v2, base_version=1)
    service.set_enabled(member, workflow, True)
    db.session.commit()
    page = client.get(f"/workflows/{workflow.id}/versions/1/rollback").text
    response = client.post(
        f"/workflows/{workflow.id}/versions/1/rollback",
        data={"csrf_token": csrf_token_from(page), "base_version": "2"},
    )
    assert response.status_code == 422
    assert "no secret named &#39;old_token&#39;" in response.text
    assert "nodes[1].data.config.auth.token" in response.text
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id).version == 2


def test_an_enabled_workflow_cannot_roll_back_to_a_version_with_template_blanks(
    app, make_user, make_team
) -> None:
    """Rolling back must keep an enabled workflow runnable: no template blanks come back."""
    install_builtin_templates()
    team = make_team("Blanks")
    user = make_user("blanks@example.com", teams=[team])
    template = next(
        t
        for t in db.session.scalars(sa.select(Workflow).where(Workflow.is_template))
        if "<<fill:" in json.dumps(t.definition)
        and not {"jira", "linear"}
        & {n.get("data", {}).get("actionType") for n in t.definition["nodes"]}
    )
    workflow = service.use_template(user, template, scope="team", team_id=team.id)
    filled = json.loads(
        json.dumps(workflow.definition).replace("<<fill:", "filled-").replace(">>", "")
    )
    service.save_version(user, workflow, filled, base_version=1)
    for name in referenced_secrets(parse_definition(filled)):
        secret_store.set_secret(workflow, name, "value")
    service.set_enabled(user, workflow, True)
    db.session.commit()
    with pytest.raises(InvalidInput, match="blanks"):
        service.rollback(user, workflow, 1)
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id).version == 2
