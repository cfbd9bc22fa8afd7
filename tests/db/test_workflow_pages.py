"""Workflow list, enable toggle, create, import/export, duplicate, delete, and access by team."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.definition.builders import chain, webhook_node
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows.enums import ExecutionStatus, ScopeType, TemplateCategory
from app.workflows.models import Workflow, WorkflowExecution, WorkflowVersion
from tests.conftest import csrf_token_from
from tests.page_support import row_of

HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin(make_user, sign_in):
    """An admin, signed in."""
    user = make_user("admin@example.com", admin=True, first_name="Ada")
    sign_in(user.email)
    return user


def csrf(client, path: str = "/workflows") -> str:
    return csrf_token_from(client.get(path).text)


def secret_definition(name: str = "hook_token") -> dict:
    """trigger -> webhook with bearer auth from the secret ``name``."""
    return chain(
        webhook_node("notify", auth={"type": "bearer", "token": "{{ secrets." + name + " }}"})
    )


# --- list ---------------------------------------------------------------------------


def test_list_shows_my_teams_and_global_workflows_with_their_last_run(
    client, member, team, make_team, make_workflow, make_incident, make_execution
):
    mine = make_workflow(team=team, name="Page the payments team")
    shared = make_workflow(name="Company-wide notice")
    make_workflow(team=make_team("Other"), name="Not for you")
    incident = make_incident(team=team)
    old = make_execution(mine, incident, status=ExecutionStatus.COMPLETED)
    old.created_at = utcnow() - timedelta(hours=2)
    make_execution(mine, incident, status=ExecutionStatus.FAILED)
    db.session.commit()

    page = client.get("/workflows").text
    assert "Page the payments team" in page and "Company-wide notice" in page
    assert "Not for you" not in page
    mine_row = row_of(page, mine)
    assert "Failed" in mine_row and "Completed" not in mine_row
    assert "Payments" in mine_row and "v1" in mine_row
    assert 'role="switch"' in mine_row and 'aria-checked="false"' in mine_row
    shared_row = row_of(page, shared)
    assert "Global" in shared_row and "Never run" in shared_row
    assert 'role="switch"' not in shared_row, "members cannot change global workflows"


def test_list_filters_by_scope_team_state_category_and_name(
    client, admin, make_team, make_workflow
):
    payments, platform = make_team("Payments"), make_team("Platform")
    a = make_workflow(team=payments, name="Alpha ticket", is_enabled=True)
    b = make_workflow(
        team=platform, name="Beta notice", template_category=TemplateCategory.COMMUNICATION
    )
    c = make_workflow(name="Gamma 100% global")

    def names(query: str) -> set[str]:
        html = client.get(f"/workflows?{query}").text
        return {w.name for w in (a, b, c) if f'id="wf-{w.id}"' in html}

    assert names("") == {"Alpha ticket", "Beta notice", "Gamma 100% global"}
    assert names("scope=global") == {"Gamma 100% global"}
    assert names("scope=team") == {"Alpha ticket", "Beta notice"}
    assert names(f"team={platform.id}") == {"Beta notice"}
    assert names("enabled=yes") == {"Alpha ticket"}
    assert names("enabled=no") == {"Beta notice", "Gamma 100% global"}
    assert names("category=Communication") == {"Beta notice"}
    assert names("q=TICK") == {"Alpha ticket"}
    assert names("q=100%25") == {"Gamma 100% global"}
    assert names("q=%25_") == set()


def test_htmx_filtering_returns_only_the_list(client, member, team, make_workflow):
    make_workflow(team=team, name="Disk alerts")
    response = client.get("/workflows?q=disk", headers={**HTMX, "HX-Target": "workflow-list"})
    assert "Disk alerts" in response.text and "<html" not in response.text


def test_list_is_paginated(client, member, team, make_workflow, make_user):
    author = make_user(admin=True)
    for n in range(30):
        make_workflow(team=team, created_by=author, name=f"Workflow {n:02d}")
    first = client.get("/workflows").text
    assert "Page 1 of 2" in first and "Workflow 00" in first and "Workflow 29" not in first
    second = client.get("/workflows?page=2").text
    assert "Workflow 29" in second and "Workflow 00" not in second


def listed_rows(html: str) -> list[tuple[str, str | None, datetime | None]]:
    """Each row of a list page, in order: workflow id, last-run status and time as shown."""
    rows = []
    for workflow_id, cells in re.findall(r'<tr id="wf-([^"]+)">(.*?)</tr>', html, re.S):
        status = re.search(r'class="badge wf-run-[a-z]+">([^<]+)</span>', cells)
        at = re.search(r'<time datetime="([^"]+)"', cells)
        assert (status is None) == (at is None) == ("Never run" in cells), cells
        rows.append(
            (
                workflow_id,
                status.group(1) if status else None,
                datetime.fromisoformat(at.group(1)) if at else None,
            )
        )
    return rows


def test_list_pages_show_each_workflows_latest_run_by_creation_time_in_name_order(
    client, member, team, make_team, make_workflow, make_incident, make_execution, make_user
):
    author = make_user(admin=True)
    names = [f"Workflow {n:02d}" for n in range(30)]
    names[25] = "Workflow 24"  # a tie on the name across pages 1 and 2: the id decides
    # Made in reverse, so neither creation nor id order is the list's order.
    workflows = {
        n: make_workflow(team=None if n == 10 else team, created_by=author, name=names[n])
        for n in reversed(range(30))
    }
    hidden = make_workflow(team=make_team("Other"), created_by=author, name="Workflow 00")
    incident = make_incident(team=team)
    base = utcnow().replace(microsecond=0) - timedelta(days=1)
    # Each workflow's runs in the order they are made, as (status, minutes after base):
    # the latest by creation time is never the one made last (ids grow with time).
    S = ExecutionStatus
    histories = {
        hidden: [(S.RUNNING, 500)],
        workflows[0]: [(S.FAILED, 50), (S.COMPLETED, 10), (S.RUNNING, 30)],
        workflows[3]: [(S.COMPLETED, 40), (S.CANCELLED, 5)],
        workflows[10]: [(S.CANCELLED, 45), (S.COMPLETED, 44)],
        workflows[24]: [(S.RUNNING, 70), (S.FAILED, 60), (S.COMPLETED, 65)],
        workflows[27]: [(S.CANCELLED, 20), (S.COMPLETED, 20), (S.FAILED, 19)],  # tie: id
        workflows[29]: [(S.PENDING, 90), (S.FAILED, 80), (S.COMPLETED, 85)],
    }
    latest = {}
    for workflow, runs in histories.items():
        made = []
        for status, minutes in runs:
            execution = make_execution(workflow, incident, status=status)
            execution.created_at = base + timedelta(minutes=minutes)
            made.append((execution.created_at, execution.id, status))
        latest[workflow.id] = max(made)
    db.session.commit()

    ordered = sorted(workflows.values(), key=lambda w: (w.name, w.id))
    expected = [
        (w.id, latest[w.id][2].value.title(), latest[w.id][0])
        if w.id in latest
        else (w.id, None, None)
        for w in ordered
    ]
    first, second = client.get("/workflows").text, client.get("/workflows?page=2").text
    assert listed_rows(first) == expected[:25]
    assert listed_rows(second) == expected[25:]
    assert "Page 1 of 2 (30 workflows)" in first and "Page 2 of 2 (30 workflows)" in second
    past_the_end = client.get("/workflows?page=3")
    assert past_the_end.status_code == 200 and listed_rows(past_the_end.text) == []
    assert "(30 workflows)" in past_the_end.text


def test_list_total_counts_the_visible_workflows_the_filters_match(
    client, member, team, make_team, make_workflow, make_incident, make_execution, make_user
):
    author = make_user(admin=True)
    incident = make_incident(team=team)
    other = make_team("Other")
    for n in range(27):
        workflow = make_workflow(team=team, created_by=author, name=f"Disk {n:02d}")
        for _ in range(n % 3):  # several runs each must not multiply the count
            make_execution(workflow, incident)
    make_workflow(created_by=author, name="Disk global")
    for n in range(5):
        make_workflow(team=other, created_by=author, name=f"Disk other {n}")
    for n in range(3):
        make_workflow(team=team, created_by=author, name=f"Cpu {n}")

    assert "Page 1 of 2 (31 workflows)" in client.get("/workflows").text
    assert "Page 1 of 2 (28 workflows)" in client.get("/workflows?q=disk").text
    assert "Page 1 of 2 (27 workflows)" in client.get("/workflows?q=disk&scope=team").text
    assert "Page 1 of 2 (30 workflows)" in client.get(f"/workflows?team={team.id}").text


def test_list_query_count_does_not_grow_with_rows(
    app, client, member, team, make_workflow, make_incident, make_execution, make_user
):
    author = make_user(admin=True)
    incident = make_incident(team=team)

    def statements_for_list() -> int:
        seen: list[str] = []

        def count(*_args) -> None:
            seen.append("q")

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get("/workflows").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    workflow = make_workflow(team=team, created_by=author)
    make_execution(workflow, incident)
    few = statements_for_list()
    for _ in range(8):
        workflow = make_workflow(team=team, created_by=author)
        make_execution(workflow, incident)
    make_workflow(name="A global one", created_by=author)
    assert statements_for_list() == few


# --- enable toggle ------------------------------------------------------------------


def test_toggle_enables_and_disables_in_place(client, member, team, make_workflow):
    workflow = make_workflow(team=team)
    token = csrf(client)
    response = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": token, "enabled": "1"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="wf-{workflow.id}">')
    assert 'aria-checked="true"' in response.text
    db.session.rollback()
    db.session.refresh(workflow)
    assert workflow.is_enabled and workflow.definition["settings"]["enabled"] is True

    response = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": token, "enabled": "0"},
        headers=HTMX,
    )
    assert 'aria-checked="false"' in response.text
    db.session.rollback()
    db.session.refresh(workflow)
    assert not workflow.is_enabled


def test_toggle_without_htmx_redirects_back_to_the_list(client, member, team, make_workflow):
    workflow = make_workflow(team=team)
    response = client.post(
        f"/workflows/{workflow.id}/toggle", data={"csrf_token": csrf(client), "enabled": "1"}
    )
    assert response.status_code == 303 and response.location.endswith("/workflows")
    assert "is enabled" in client.get("/workflows").text


def test_enabling_an_invalid_definition_is_refused_in_place_with_the_reasons(
    client, member, team, make_workflow
):
    broken = chain(webhook_node("notify"))
    broken["nodes"].append(webhook_node("orphan"))  # reachable from nowhere
    workflow = make_workflow(team=team, definition=broken)
    response = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": csrf(client), "enabled": "1"},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert "<html" not in response.text and f'id="wf-{workflow.id}"' in response.text
    assert 'role="alert"' in response.text and 'aria-checked="false"' in response.text
    assert "cannot be reached from the trigger" in response.text
    assert "nodes[2]" in response.text  # the location of the problem
    db.session.rollback()
    db.session.refresh(workflow)
    assert not workflow.is_enabled


def test_a_refused_toggle_without_htmx_flashes_each_reason_on_the_list(
    client, member, team, make_workflow
):
    two_problems = secret_definition("hook_token")
    two_problems["nodes"].append(webhook_node("orphan"))  # and reachable from nowhere
    workflow = make_workflow(team=team, definition=two_problems)
    # Without "enabled", the toggle flips the state: here, it tries to enable.
    response = client.post(f"/workflows/{workflow.id}/toggle", data={"csrf_token": csrf(client)})
    assert response.status_code == 303 and response.location.endswith("/workflows")
    flashed = re.search(r'<div class="flash".*?</div>', client.get("/workflows").text, re.S)
    assert flashed, "the reasons are flashed on the list"
    lines = re.findall(r"<p>(.*?)</p>", flashed.group(0))
    assert len(lines) == 2, lines
    assert any("no secret named &#39;hook_token&#39;" in line for line in lines)
    assert any("cannot be reached from the trigger" in line for line in lines)
    db.session.rollback()
    db.session.refresh(workflow)
    assert not workflow.is_enabled


def test_enabling_is_refused_for_a_missing_secret_then_allowed_once_it_is_added(
    client, member, team, make_workflow
):
    workflow = make_workflow(team=team, definition=secret_definition("hook_token"))
    token = csrf(client)
    refused = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": token, "enabled": "1"},
        headers=HTMX,
    )
    assert refused.status_code == 422
    assert "no secret named &#39;hook_token&#39;" in refused.text
    db.session.rollback()
    db.session.refresh(workflow)
    assert not workflow.is_enabled

    added = client.post(
        f"/workflows/{workflow.id}/secrets",
        data={"csrf_token": token, "name": "hook_token", "value": "s3cr3t-value"},
    )
    assert added.status_code == 303
    allowed = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": token, "enabled": "1"},
        headers=HTMX,
    )
    assert allowed.status_code == 200 and 'aria-checked="true"' in allowed.text
    db.session.rollback()
    db.session.refresh(workflow)
    assert workflow.is_enabled


def test_enabling_is_refused_while_template_blanks_are_unfilled(
    client, member, team, make_workflow
):
    definition = chain(webhook_node("notify", url="https://hooks.example.com/<<fill: path>>"))
    workflow = make_workflow(team=team, definition=definition)
    response = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": csrf(client), "enabled": "1"},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert "Fill in path. (at nodes[1].data.config.url)" in response.text
    db.session.rollback()
    db.session.refresh(workflow)
    assert not workflow.is_enabled


def test_a_member_cannot_toggle_a_global_workflow(client, member, make_workflow):
    workflow = make_workflow()
    response = client.post(
        f"/workflows/{workflow.id}/toggle",
        data={"csrf_token": csrf(client), "enabled": "1"},
        headers=HTMX,
    )
    assert response.status_code == 403
    assert "Only admins" in response.text
    db.session.rollback()
    db.session.refresh(workflow)
    assert not workflow.is_enabled


# --- create -------------------------------------------------------------------------


def test_create_a_workflow_opens_the_editor(client, member, team):
    response = client.post(
        "/workflows/new",
        data={
            "csrf_token": csrf(client, "/workflows/new"),
            "name": "Ticket for P1s",
            "description": "Opens a ticket.",
            "owner": team.id,
            "category": "Ticketing",
        },
    )
    assert response.status_code == 303
    workflow = db.session.scalar(sa.select(Workflow))
    assert response.location.endswith(f"/workflows/{workflow.id}/edit")
    assert (workflow.name, workflow.scope_type, workflow.team_id) == (
        "Ticket for P1s",
        ScopeType.TEAM,
        team.id,
    )
    assert not workflow.is_enabled and workflow.version == 1
    assert workflow.template_category == TemplateCategory.TICKETING


def test_create_form_offers_global_only_to_admins(client, member, team):
    page = client.get("/workflows/new").text
    assert 'value="global"' not in page and f'value="{team.id}"' in page


def test_a_member_cannot_create_a_global_workflow(client, member):
    response = client.post(
        "/workflows/new",
        data={
            "csrf_token": csrf(client, "/workflows/new"),
            "name": "Everyone",
            "description": "For all.",
            "owner": "global",
        },
    )
    assert response.status_code == 403
    assert "Only admins can create global workflows" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Workflow)) == 0


def test_create_with_a_blank_description_is_refused_next_to_the_field(client, member, team):
    response = client.post(
        "/workflows/new",
        data={
            "csrf_token": csrf(client, "/workflows/new"),
            "name": "Nameless",
            "description": "  ",
            "owner": team.id,
        },
    )
    assert response.status_code == 422
    assert re.search(r'id="description-error"><p>[^<]+', response.text)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Workflow)) == 0


# --- export and import --------------------------------------------------------------


def test_export_downloads_the_definition_without_secret_values(client, member, team, make_workflow):
    workflow = make_workflow(team=team, name="Ping: the (ops) hook", definition=secret_definition())
    secret_store.set_secret(workflow, "hook_token", "very-secret-token-value")
    db.session.commit()
    response = client.get(f"/workflows/{workflow.id}/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="ping-the-ops-hook-v1.json"'
    )
    assert json.loads(response.text) == workflow.definition
    assert "very-secret-token-value" not in response.text
    assert "{{ secrets.hook_token }}" in response.text


def test_exported_json_imports_as_a_new_disabled_workflow(client, admin, make_team, make_workflow):
    source_team, target_team = make_team("Source"), make_team("Target")
    original = make_workflow(team=source_team, is_enabled=True)
    exported = client.get(f"/workflows/{original.id}/export").data
    response = client.post(
        "/workflows/import",
        data={
            "csrf_token": csrf(client, "/workflows/import"),
            "file": (io.BytesIO(exported), "export.json"),
            "owner": target_team.id,
            "category": "Communication",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    imported = db.session.scalar(sa.select(Workflow).where(Workflow.id != original.id))
    assert response.location.endswith(f"/workflows/{imported.id}/edit")
    assert imported.team_id == target_team.id and not imported.is_enabled
    assert imported.definition["nodes"] == original.definition["nodes"]
    assert imported.definition["id"] == imported.id
    assert imported.template_category == TemplateCategory.COMMUNICATION
    version = db.session.scalar(
        sa.select(WorkflowVersion).where(WorkflowVersion.workflow_id == imported.id)
    )
    assert version.change_note == "Imported from JSON (exported as v1)"


def test_pasted_json_imports_too(client, member, team):
    text = json.dumps(chain(webhook_node("notify")))
    response = client.post(
        "/workflows/import",
        data={"csrf_token": csrf(client, "/workflows/import"), "text": text, "owner": team.id},
    )
    assert response.status_code == 303
    assert db.session.scalar(sa.select(Workflow.name)) == "Open a ticket"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON: key must be a string at line 1 column 2"),
        (
            json.dumps(chain(webhook_node("notify", headers={"Authorization": "Bearer abc"}))),
            "nodes[1].data.config.headers",
        ),
        (
            json.dumps(chain(webhook_node("notify", auth={"type": "bearer", "token": "abc"}))),
            "nodes[1].data.config.auth.token",
        ),
        (json.dumps({**chain(webhook_node("n")), "edges": []}), "nodes[1]"),
    ],
    ids=["not-json", "authorization-header", "literal-token", "unreachable"],
)
def test_invalid_imports_list_each_problem_where_it_is_and_create_nothing(
    client, member, team, text, expected
):
    response = client.post(
        "/workflows/import",
        data={"csrf_token": csrf(client, "/workflows/import"), "text": text, "owner": team.id},
    )
    assert response.status_code == 422
    assert "nothing was imported" in response.text and expected in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Workflow)) == 0


def test_import_needs_a_file_or_text(client, member, team):
    response = client.post(
        "/workflows/import",
        data={"csrf_token": csrf(client, "/workflows/import"), "text": "", "owner": team.id},
    )
    assert response.status_code == 422 and "Choose a JSON file or paste" in response.text


# --- duplicate ----------------------------------------------------------------------


def test_duplicate_a_global_workflow_into_my_team_without_its_secrets(
    client, member, team, make_workflow
):
    original = make_workflow(
        definition=secret_definition(), template_category=TemplateCategory.TICKETING
    )
    secret_store.set_secret(original, "hook_token", "abc")
    db.session.commit()
    page = client.get(f"/workflows/{original.id}/duplicate").text
    assert f"Copy of {original.name}" in page
    response = client.post(
        f"/workflows/{original.id}/duplicate",
        data={
            "csrf_token": csrf_token_from(page),
            "name": "My copy",
            "owner": team.id,
        },
    )
    assert response.status_code == 303
    copy = db.session.scalar(sa.select(Workflow).where(Workflow.name == "My copy"))
    assert copy.team_id == team.id and not copy.is_enabled and copy.version == 1
    assert copy.template_category == TemplateCategory.TICKETING
    assert copy.definition["nodes"] == original.definition["nodes"]
    assert secret_store.secret_names(copy) == []


# --- delete -------------------------------------------------------------------------


def test_delete_asks_first_then_deletes(client, member, team, make_workflow):
    workflow_id = make_workflow(team=team, name="Old workflow").id
    page = client.get(f"/workflows/{workflow_id}/delete").text
    assert "Delete Old workflow?" in page
    response = client.post(
        f"/workflows/{workflow_id}/delete", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Workflow, workflow_id) is None


def test_delete_is_refused_while_runs_are_in_flight(
    client, member, team, make_workflow, make_incident, make_execution
):
    workflow = make_workflow(team=team)
    workflow_id = workflow.id
    execution = make_execution(workflow, make_incident(team=team), status=ExecutionStatus.RUNNING)
    page = client.get(f"/workflows/{workflow.id}/delete").text
    assert "1 run is still in flight" in page
    response = client.post(
        f"/workflows/{workflow.id}/delete", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 409
    assert "cancel them, then delete" in response.text
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id) is not None

    execution = db.session.get(WorkflowExecution, execution.id)
    execution.status = ExecutionStatus.CANCELLED
    db.session.commit()
    response = client.post(
        f"/workflows/{workflow_id}/delete", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Workflow, workflow_id) is None


def test_a_member_cannot_delete_a_global_workflow(client, member, make_workflow):
    workflow = make_workflow()
    response = client.post(f"/workflows/{workflow.id}/delete", data={"csrf_token": csrf(client)})
    assert response.status_code == 403
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id) is not None


# --- access -------------------------------------------------------------------------


def test_every_workflow_route_hides_other_teams_workflows(
    app, client, member, make_team, make_workflow
):
    theirs = make_workflow(team=make_team("Theirs"), name="Their workflow")
    token = csrf(client)
    checked = 0
    for rule in app.url_map.iter_rules():
        if "workflow_id" not in rule.arguments:
            continue
        url = rule.rule.replace("<workflow_id>", theirs.id).replace("<int:number>", "1")
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            response = client.open(
                url, method=method, data={"csrf_token": token, "name": "x", "enabled": "1"}
            )
            assert response.status_code == 404, (method, rule.rule, response.status_code)
            checked += 1
    assert checked >= 20
    db.session.rollback()
    workflow = db.session.get(Workflow, theirs.id)
    assert (workflow.name, workflow.is_enabled, workflow.version) == ("Their workflow", False, 1)


def test_pages_need_a_signed_in_user(client, make_workflow):
    assert client.get("/workflows").status_code == 302
    assert client.get("/workflows/templates").status_code == 302
