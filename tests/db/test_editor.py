"""The workflow editor: drafts, nodes and edges, saving versions, conflicts, secrets, access."""

from __future__ import annotations

import copy
import html
import logging
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.drafts.checks import parse_loc
from app.workflows.drafts.edits import MISSING, merge_edits
from app.workflows.forms.nodes import form_class_for
from app.workflows.models import (
    Workflow,
    WorkflowActionSecret,
    WorkflowDraft,
    WorkflowVersion,
)
from tests.builders import database_text, signed_in
from tests.conftest import csrf_token_from
from tests.factories import SIMPLE_DEFINITION
from tests.page_support import Editor, draft_of

Json = dict[str, Any]
HX_CSRF = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')


def nodes_of(definition: Json) -> dict[str, Json]:
    return {node["id"]: node for node in definition["nodes"]}


def edges_of(definition: Json) -> set[tuple[str, str, str | None]]:
    return {(e["source"], e["target"], e.get("sourceHandle")) for e in definition["edges"]}


def fresh(workflow: Workflow) -> Workflow:
    db.session.rollback()
    return db.session.get(Workflow, workflow.id)


WEBHOOK_FIELDS: Json = {
    "name": "Notify",
    "url": "https://hooks.example.com/incident",
    "method": "POST",
    "headers-0-name": "",
    "headers-0-value": "",
    "body": '{"title": {{ incident.title | tojson }}}',
    "auth_type": "none",
    "retry_attempts": "3",
    "retry_initial_delay_ms": "1000",
}


# -- the page ----------------------------------------------------------------------------------


def test_the_page_shows_graph_forms_and_no_draft_until_a_change(editor, mia, workflow) -> None:
    page = editor.page()
    assert page.status_code == 200
    html = page.text
    for part in (
        "graph-panel",
        "node-panel",
        "settings-panel",
        "add-node-panel",
        "edges-panel",
        "problems-panel",
        "save-panel",
        "<svg",
    ):
        assert part in html, part
    assert "Save as version 2" in html
    assert "No unsaved changes" in html
    # Nothing is stored for merely looking.
    assert draft_of(mia, workflow) is None


def test_selecting_a_node_shows_its_form_and_survives_a_reload(editor) -> None:
    page = editor.page(node="notify")
    assert 'id="node-url"' in page.text and "Webhook: Notify" in page.text
    swap = editor.page(node="notify", headers={"HX-Request": "true"})
    assert swap.status_code == 200
    assert 'id="node-panel"' in swap.text and 'hx-swap-oob="true"' in swap.text
    assert swap.headers["HX-Push-Url"].endswith("?node=notify")
    # Without a node, the trigger's form is shown.
    assert "Trigger: Incident created" in editor.page().text


def test_editing_a_node_is_kept_in_the_draft_across_sessions(app, editor, mia, workflow) -> None:
    editor.page(node="notify")
    response = editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Tell the channel"})
    assert response.status_code == 200
    assert 'hx-swap-oob="true"' in response.text
    draft = draft_of(mia, workflow)
    assert draft is not None and draft.base_version == 1
    assert nodes_of(draft.definition)["notify"]["data"]["name"] == "Tell the channel"
    # The saved workflow is untouched until the draft is saved.
    assert nodes_of(fresh(workflow).definition)["notify"]["data"]["name"] == "Notify"

    # A second browser (new session) of the same user sees the same draft ...
    other_tab = Editor(signed_in(app, mia.email), workflow.id)
    assert "Tell the channel" in other_tab.page(node="notify").text
    assert "Unsaved changes, based on v1" in other_tab.page().text


def test_another_user_has_their_own_draft(app, editor, make_user, team, workflow) -> None:
    editor.page()
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Mia's name"})
    sam = make_user("sam@example.com", teams=[team])
    sams = Editor(signed_in(app, sam.email), workflow.id)
    page = sams.page(node="notify").text
    assert "Mia&#39;s name" not in page and "Mia's name" not in page
    assert "No unsaved changes" in page


def test_field_errors_are_shown_next_to_the_field(editor) -> None:
    editor.page(node="notify")
    response = editor.apply_node("notify", {**WEBHOOK_FIELDS, "url": "hooks.example.com"})
    assert response.status_code == 422
    html = response.text
    error = re.search(r'id="node-url-error">(.*?)</div>', html, re.S)
    assert error and "must start with http://" in error.group(1)
    assert re.search(r'aria-describedby="[^"]*node-url-error[^"]*"[^>]*id="node-url"', html)
    # ... and in the problems list, linking to the field.
    assert "?node=notify#node-url" in html
    # A plain (non-htmx) post answers with a redirect; the page shows the same error.
    plain = editor.post(
        "/node",
        {
            "node_id": "notify",
            **{f"node-{k}": v for k, v in WEBHOOK_FIELDS.items()},
            "node-url": "nope",
        },
        htmx=False,
    )
    assert plain.status_code == 303 and plain.headers["Location"].endswith("?node=notify")
    assert 'id="node-url-error"' in editor.page(node="notify").text


def test_an_unknown_variable_is_flagged_before_saving(editor) -> None:
    editor.page(node="notify")
    # Another field is invalid too, so the schema stops before its template rules:
    # the editor's own check still flags the variable.
    response = editor.apply_node(
        "notify",
        {**WEBHOOK_FIELDS, "body": '{"t": "{{ incident.colour }}"}', "retry_attempts": "99"},
    )
    assert response.status_code == 422
    body_error = re.search(r'id="node-body-error">(.*?)</div>', response.text, re.S)
    assert body_error and "no field" in body_error.group(1) and "colour" in body_error.group(1)
    # Once the rest is valid, the schema itself reports it at the same place.
    response = editor.apply_node(
        "notify", {**WEBHOOK_FIELDS, "body": '{"t": "{{ steps.nowhere.result }}"}'}
    )
    body_error = re.search(r'id="node-body-error">(.*?)</div>', response.text, re.S)
    assert body_error and "nowhere" in body_error.group(1)


def test_template_fields_are_checked_as_the_user_types(editor, mia, workflow) -> None:
    editor.page(node="notify")

    def check(text: str) -> str:
        response = editor.client.post(
            f"{editor.url}/check",
            data={"node_id": "notify", "node-body": text},
            headers={
                "HX-Request": "true",
                "HX-Trigger-Name": "node-body",
                "X-CSRFToken": editor.token,
            },
        )
        assert response.status_code == 200
        return html.unescape(response.text)

    assert "no field 'colour'" in check('{"c": "{{ incident.colour }}"}')
    assert "Unknown variable 'incidnet'" in check("{{ incidnet.title }}")
    assert "Unknown variable steps.notify" in check("{{ steps.notify.result }}")
    assert "no secret named 'hook'" in check("{{ secrets.hook }}")
    assert check('{"t": {{ incident.title | tojson }}}').strip() == ""
    assert "syntax" in check("{{ incident.title ").lower()
    assert draft_of(mia, workflow) is None  # checking changes nothing


def test_a_secret_that_does_not_exist_yet_is_a_warning_not_a_block(editor, workflow) -> None:
    editor.page(node="notify")
    response = editor.apply_node(
        "notify",
        {**WEBHOOK_FIELDS, "headers-0-name": "X-Key", "headers-0-value": "{{ secrets.later }}"},
    )
    assert response.status_code == 200
    assert "no secret named &#39;later&#39;" in response.text
    assert "needed before the workflow can be enabled" in response.text
    assert "fix these before enabling" in response.text
    assert editor.save("uses a secret added later").status_code == 204
    assert fresh(workflow).version == 2


def test_variables_offered_are_the_incident_earlier_steps_and_secrets(editor, workflow) -> None:
    secret_store.set_secret(fresh(workflow), "chat_token", "x")
    db.session.commit()
    editor.page()
    response = editor.add_node("webhook", after="notify")
    new_id = response.headers["HX-Push-Url"].rsplit("=", 1)[1]
    html = editor.page(node=new_id).text
    assert "{{ incident.title }}" in html
    assert "{{ steps.notify.result }}" in html
    assert "{{ secrets.chat_token }}" in html
    # Each field of the earlier step's result, from the webhook action's declared shape.
    assert "{{ steps.notify.result.status }}" in html
    assert "{{ steps.notify.result.body }}" in html
    # The first action has no earlier step.
    assert "{{ steps.notify.result }}" not in editor.page(node="notify").text


def test_a_result_field_the_step_does_not_have_is_flagged_as_typed(editor, workflow) -> None:
    editor.page()
    new_id = editor.add_node("webhook", after="notify").headers["HX-Push-Url"].rsplit("=", 1)[1]
    check = editor.client.post(
        f"{editor.url}/check",
        data={
            "csrf_token": editor.token,
            "node_id": new_id,
            "node-body": '{"s": {{ steps.notify.result.statuz }}}',
        },
        headers={"HX-Request": "true", "HX-Trigger-Name": "node-body"},
    )
    assert "steps.notify.result has no field 'statuz'; available: status, body." in (
        html.unescape(check.text)
    )


# -- nodes and edges ---------------------------------------------------------------------------


def test_add_a_condition_with_true_and_false_branches(editor, mia, workflow) -> None:
    editor.page()
    response = editor.add_node("condition", after="notify")
    assert response.status_code == 200
    condition = response.headers["HX-Push-Url"].rsplit("=", 1)[1]
    assert editor.add_node("delay", after=condition, handle="true").status_code == 200
    assert editor.add_node("webhook", after=condition, handle="false").status_code == 200
    definition = draft_of(mia, workflow).definition
    by_type = {n["type"]: n["id"] for n in definition["nodes"]}
    webhooks = [
        n["id"]
        for n in definition["nodes"]
        if n["id"] not in ("trigger", "notify") and n["type"] == "action"
    ]
    assert (condition, by_type["delay"], "true") in edges_of(definition)
    assert (condition, webhooks[0], "false") in edges_of(definition)
    # Positions were laid out: no two nodes share a place.
    places = [(n["position"]["x"], n["position"]["y"]) for n in definition["nodes"]]
    assert len(set(places)) == len(places)
    # The same branch twice is refused with a message next to the branch select.
    again = editor.add_node("delay", after=condition, handle="true")
    assert again.status_code == 422 and "already connected" in again.text


def test_add_edge_from_a_condition_needs_a_branch(editor, mia, workflow) -> None:
    editor.page()
    condition = editor.add_node("condition", after="notify").headers["HX-Push-Url"].split("=")[-1]
    delay = editor.add_node("delay", after="notify").headers["HX-Push-Url"].split("=")[-1]
    # The branch select is offered only when the source is a condition.
    form = editor.client.get(f"{editor.url}/add-edge-form", query_string={"edge-source": condition})
    assert 'id="edge-handle"' in form.text
    form = editor.client.get(f"{editor.url}/add-edge-form", query_string={"edge-source": "notify"})
    assert 'id="edge-handle"' not in form.text

    refused = editor.add_edge(condition, delay)
    assert refused.status_code == 422 and "Choose the branch" in refused.text
    assert editor.add_edge(condition, delay, handle="false").status_code == 200
    assert (condition, delay, "false") in edges_of(draft_of(mia, workflow).definition)
    # A loop is refused.
    loop = editor.add_edge(delay, "notify")
    assert loop.status_code == 422 and "loop" in loop.text
    # A handle on an edge from a plain node is ignored.
    editor.add_edge("trigger", delay, handle="true")
    assert ("trigger", delay, None) in edges_of(draft_of(mia, workflow).definition)


def test_an_added_node_is_pushed_as_selected_an_added_edge_keeps_the_selection(
    editor, mia, workflow
) -> None:
    editor.page(node="notify")
    added = editor.post("/nodes", {"add-kind": "delay", "add-after": "notify"}, node="notify")
    assert added.status_code == 200
    (delay,) = set(nodes_of(draft_of(mia, workflow).definition)) - {"trigger", "notify"}
    assert added.headers["HX-Push-Url"].endswith(f"?node={delay}")
    assert "HX-Replace-Url" not in added.headers

    edge = {"edge-source": "trigger", "edge-target": delay}
    connected = editor.post("/edges", edge, node="notify")
    assert connected.status_code == 200
    assert connected.headers["HX-Replace-Url"].endswith("?node=notify")
    assert "HX-Push-Url" not in connected.headers
    assert ("trigger", delay, None) in edges_of(draft_of(mia, workflow).definition)


def test_adding_without_htmx_redirects_back_to_the_editor(editor, mia, workflow) -> None:
    editor.page()
    added = editor.post("/nodes", {"add-kind": "delay", "add-after": "notify"}, htmx=False)
    (delay,) = set(nodes_of(draft_of(mia, workflow).definition)) - {"trigger", "notify"}
    assert added.status_code == 303 and added.location.endswith(f"/edit?node={delay}")

    edge = {"edge-source": "trigger", "edge-target": delay, "selected": "notify"}
    connected = editor.post("/edges", edge, htmx=False)
    assert connected.status_code == 303 and connected.location.endswith("/edit?node=notify")
    assert ("trigger", delay, None) in edges_of(draft_of(mia, workflow).definition)


def test_a_refused_add_keeps_nothing_and_answers_with_its_own_panel(editor, mia, workflow) -> None:
    editor.page()
    condition = editor.add_node("condition", after="notify").headers["HX-Push-Url"].split("=")[-1]
    editor.add_node("delay", after=condition, handle="true")
    before = draft_of(mia, workflow).definition

    refused_node = editor.post(
        "/nodes",
        {
            "add-kind": "delay",
            "add-after": condition,
            "add-handle": "true",
            "add-placement": "branch",
        },
        node=condition,
    )
    assert refused_node.status_code == 422 and "already connected" in refused_node.text
    assert 'id="add-node-panel"' in refused_node.text
    assert 'id="edges-panel"' not in refused_node.text
    assert 'id="graph-panel"' not in refused_node.text
    assert refused_node.headers["HX-Replace-Url"].endswith(f"?node={condition}")

    refused_edge = editor.post(
        "/edges", {"edge-source": condition, "edge-target": "notify"}, node=condition
    )
    assert refused_edge.status_code == 422 and "Choose the branch" in refused_edge.text
    assert 'id="edges-panel"' in refused_edge.text
    assert 'id="add-node-panel"' not in refused_edge.text
    assert 'id="graph-panel"' not in refused_edge.text
    assert refused_edge.headers["HX-Replace-Url"].endswith(f"?node={condition}")

    assert draft_of(mia, workflow).definition == before


def test_removing_a_node_removes_its_edges(editor, mia, workflow) -> None:
    editor.page()
    condition = editor.add_node("condition", after="notify").headers["HX-Push-Url"].split("=")[-1]
    editor.add_node("delay", after=condition, handle="true")
    editor.add_node("delay", after=condition, handle="false")
    before = draft_of(mia, workflow).definition
    assert sum(condition in (s, t) for s, t, _h in edges_of(before)) == 3
    response = editor.post("/nodes/remove", {"node_id": condition, "confirm": "yes"})
    assert response.status_code == 200
    after = draft_of(mia, workflow).definition
    assert condition not in nodes_of(after)
    assert all(condition not in (s, t) for s, t, _h in edges_of(after))
    # The two delays are now unreachable: the schema says so, by node.
    assert "cannot be reached from the trigger" in response.text
    # The trigger cannot be removed.
    refused = editor.post("/nodes/remove", {"node_id": "trigger", "confirm": "yes"})
    assert refused.status_code == 422 and "trigger cannot be removed" in refused.text


def test_removing_an_edge(editor, mia, workflow) -> None:
    editor.page()
    assert editor.post("/edges/remove", {"edge_id": "e1"}).status_code == 200
    assert draft_of(mia, workflow).definition["edges"] == []
    gone = editor.post("/edges/remove", {"edge_id": "e1"})
    assert gone.status_code == 409 and "no longer in your draft" in gone.text


def test_trigger_form_switches_fields_with_the_type(editor, mia, workflow) -> None:
    editor.page()
    response = editor.apply_node(
        "trigger",
        {
            "name": "Old incidents",
            "trigger_type": "age",
            "conditions-0-field": "priority",
            "conditions-0-value": "P1",
        },
        op="refresh",
    )
    assert 'id="node-age_threshold_minutes"' in response.text
    assert 'id="node-state_to"' not in response.text
    editor.apply_node(
        "trigger", {"name": "Old", "trigger_type": "age", "age_threshold_minutes": "60"}
    )
    trigger = draft_of(mia, workflow).definition["trigger"]
    assert trigger == {"type": "age", "conditions": [], "ageThresholdMinutes": 60}
    rows = editor.apply_node(
        "trigger",
        {"name": "Old", "trigger_type": "age", "age_threshold_minutes": "60"},
        op="add:conditions",
    )
    assert 'id="node-conditions-0-field"' in rows.text


@pytest.mark.parametrize("index", ["\u00b2", "9" * 5000, "-1", "x"])
def test_removing_a_row_with_a_strange_index_removes_nothing(editor, mia, workflow, index) -> None:
    editor.page()
    fields = {
        "name": "Old",
        "trigger_type": "age",
        "age_threshold_minutes": "60",
        "conditions-0-field": "priority",
        "conditions-0-value": "P1",
    }
    response = editor.apply_node("trigger", fields, op=f"remove:conditions:{index}")
    assert response.status_code == 200
    assert 'id="node-conditions-0-field"' in response.text


# -- saving ------------------------------------------------------------------------------------


def test_save_as_new_version_clears_the_draft(editor, mia, workflow) -> None:
    editor.page()
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Second"})
    response = editor.save("Renamed the step")
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith(editor.url)
    saved = fresh(workflow)
    assert saved.version == 2
    assert nodes_of(saved.definition)["notify"]["data"]["name"] == "Second"
    version = db.session.scalar(
        sa.select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == 2
        )
    )
    assert version.change_note == "Renamed the step"
    assert draft_of(mia, workflow) is None
    page = editor.page().text
    assert "Saved as v2." in page and "Save as version 3" in page


def test_nothing_to_save_and_invalid_drafts_are_refused(editor, mia, workflow) -> None:
    editor.page()
    nothing = editor.save()
    assert nothing.status_code == 422 and "no changes to save" in nothing.text
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "url": ""})
    invalid = editor.save()
    assert invalid.status_code == 422
    assert "problems" in invalid.text and "node-url" in invalid.text
    assert fresh(workflow).version == 1
    assert draft_of(mia, workflow) is not None


def test_saving_a_draft_of_an_older_version_is_a_conflict_and_keeps_it(
    app, editor, mia, workflow, make_user
) -> None:
    editor.page()
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Mine"})
    # Meanwhile an admin saves v2 elsewhere.
    admin = make_user("admin@example.com", admin=True)
    theirs = copy.deepcopy(fresh(workflow).definition)
    theirs["description"] = "Changed by the admin."
    service.save_version(admin, fresh(workflow), theirs, base_version=1, change_note="theirs")
    db.session.commit()

    response = editor.save("mine")
    assert response.status_code == 409
    assert "based on version 1, but version 2 has been saved since" in response.text
    assert fresh(workflow).version == 2
    draft = draft_of(mia, workflow)
    assert draft is not None and draft.base_version == 1
    assert nodes_of(draft.definition)["notify"]["data"]["name"] == "Mine"
    # The page says so, with what differs and a way forward.
    page = editor.page().text
    assert "Version 2 was saved after your draft started from v1" in page
    assert "Keep my draft, based on v2" in page and "diff?from=1&amp;to=2" in page

    assert editor.post("/rebase", {}).status_code == 204
    assert editor.save("mine, on top of theirs").status_code == 204
    saved = fresh(workflow)
    assert saved.version == 3
    assert nodes_of(saved.definition)["notify"]["data"]["name"] == "Mine"


def test_an_unchanged_draft_of_an_older_version_simply_follows(
    editor, mia, workflow, make_user
) -> None:
    editor.page()
    editor.apply_node("notify", WEBHOOK_FIELDS)  # the same values: a draft, but no edits
    admin = make_user("admin@example.com", admin=True)
    theirs = copy.deepcopy(fresh(workflow).definition)
    theirs["description"] = "Changed by the admin."
    service.save_version(admin, fresh(workflow), theirs, base_version=1)
    db.session.commit()
    page = editor.page().text
    assert "was saved after your draft" not in page and "this is version 2" in page


def test_discarding_the_draft(editor, mia, workflow) -> None:
    editor.page()
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Gone soon"})
    assert editor.post("/discard", {"confirm": "yes"}).status_code == 204
    assert draft_of(mia, workflow) is None
    assert "Gone soon" not in editor.page(node="notify").text


# -- secrets -----------------------------------------------------------------------------------


SECRET_VALUES = {
    "token": "tok-Zq8-never-stored-in-clear",
    "password": "pw-Zq8-never-stored-in-clear",
    "client_secret": "cs-Zq8-never-stored-in-clear",
    "custom": "hdr-Zq8-never-stored-in-clear",
}


def test_credentials_typed_in_become_encrypted_secrets_and_appear_nowhere(
    app, editor, mia, workflow, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    editor.page(node="notify")
    responses = [
        editor.apply_node(
            "notify", {**WEBHOOK_FIELDS, "auth_type": "bearer", "token": SECRET_VALUES["token"]}
        ),
        editor.apply_node(
            "notify",
            {
                **WEBHOOK_FIELDS,
                "auth_type": "basic",
                "username": "bot",
                "password": SECRET_VALUES["password"],
            },
        ),
        editor.apply_node(
            "notify",
            {
                **WEBHOOK_FIELDS,
                "auth_type": "oauth2",
                "client_id": "incidentflow",
                "client_secret": SECRET_VALUES["client_secret"],
                "token_url": "https://auth.example.com/token",
            },
        ),
        editor.apply_node(
            "notify",
            {
                **WEBHOOK_FIELDS,
                "auth_type": "custom",
                "custom_headers-0-name": "X-Api-Key",
                "custom_headers-0-value": SECRET_VALUES["custom"],
            },
        ),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    draft = draft_of(mia, workflow)
    auth = nodes_of(draft.definition)["notify"]["data"]["config"]["auth"]
    assert auth == {
        "type": "custom",
        "customHeaders": {"X-Api-Key": "{{ secrets.notify_x_api_key }}"},
    }
    # Nothing reaches the workflow's secrets (which the running versions use) before a save.
    assert secret_store.secret_names(fresh(workflow)) == []
    pending = ["notify_client_secret", "notify_password", "notify_token", "notify_x_api_key"]
    assert sorted(draft.pending_secrets) == pending
    # Leaving the input empty keeps the secret; the page names it, never shows it.
    page = editor.page(node="notify").text
    assert "stored as the workflow's secret <code>notify_x_api_key</code> when you save" in page
    kept = editor.apply_node(
        "notify",
        {
            **WEBHOOK_FIELDS,
            "auth_type": "custom",
            "custom_headers-0-name": "X-Api-Key",
            "custom_headers-0-ref": "notify_x_api_key",
        },
    )
    assert kept.status_code == 200
    assert editor.save("with auth").status_code == 204
    assert secret_store.secret_names(fresh(workflow)) == pending
    decrypted = secret_store.decrypt_for_request(workflow.id)
    assert decrypted["notify_token"] == SECRET_VALUES["token"]
    assert decrypted["notify_x_api_key"] == SECRET_VALUES["custom"]

    texts = [r.text for r in responses] + [kept.text, page, editor.page(node="notify").text]
    texts.append(database_text())
    texts.append(caplog.text)
    rows = db.session.scalars(sa.select(WorkflowVersion.definition)).all()
    texts.append(repr(rows) + repr(fresh(workflow).definition))
    for value in SECRET_VALUES.values():
        for text in texts:
            assert value not in text
    encrypted = db.session.scalars(sa.select(WorkflowActionSecret.value_hash)).all()
    assert len(encrypted) == 4


def test_a_too_long_credential_is_refused_at_its_field(editor, mia, workflow) -> None:
    editor.page(node="notify")
    huge = "x" * (secret_store.MAX_SECRET_LENGTH + 1)
    response = editor.apply_node("notify", {**WEBHOOK_FIELDS, "auth_type": "bearer", "token": huge})
    assert response.status_code == 422
    assert re.search(r'id="node-token-error">.*at most', response.text, re.S)
    assert huge not in response.text
    assert secret_store.secret_names(fresh(workflow)) == []
    assert draft_of(mia, workflow) is None  # nothing half-saved


# -- fill in -----------------------------------------------------------------------------------


def test_placeholders_are_highlighted_with_a_banner(app, mia, team) -> None:
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    notify = definition["nodes"][1]["data"]["config"]
    notify["url"] = "https://hooks.example.com/<<fill: your webhook path>>"
    definition["trigger"]["conditions"] = [
        {"field": "service", "value": "<<fill: the service to watch>>"}
    ]
    created = service.create_workflow(
        mia,
        name="From a template",
        description="d",
        scope="team",
        team_id=team.id,
        definition=definition,
    )
    db.session.commit()
    tab = Editor(signed_in(app, mia.email), created.id)
    page = tab.page(node="notify").text
    assert "to fill in" in page
    assert "your webhook path" in page and "the service to watch" in page
    assert re.search(r'class="field must-fill">\s*<label for="node-url">', page)
    assert "?node=notify#node-url" in page
    trigger_page = tab.page().text
    assert re.search(
        r'class="field must-fill">\s*<label for="node-conditions-0-value"', trigger_page
    )


def test_every_built_in_template_opens_with_what_to_fill_highlighted(app, mia, team) -> None:
    from app.workflows.templates_builtin import install_builtin_templates, unfilled_placeholders

    install_builtin_templates()
    db.session.commit()
    templates = [t for group in service.templates_by_category().values() for t in group]
    assert templates
    tab_client = signed_in(app, mia.email)
    for template in templates:
        created = service.use_template(mia, template, scope="team", team_id=team.id)
        db.session.commit()
        tab = Editor(tab_client, created.id)
        placeholders = unfilled_placeholders(created.definition)
        trigger = next(n for n in created.definition["nodes"] if n["type"] == "trigger")
        for placeholder in placeholders:
            loc = parse_loc(placeholder.loc)
            node, rel = (
                (created.definition["nodes"][loc[1]], loc[2:])
                if loc[0] == "nodes"
                else (trigger, loc)
            )
            anchor = form_class_for(node).anchor_for(rel)
            page = tab.page(node=node["id"]).text
            highlighted = rf'class="field[^"]*must-fill">\s*<label for="{anchor}"'
            assert re.search(highlighted, page), (template.name, placeholder)
            assert html.escape(placeholder.hint, quote=False) in page, (template.name, placeholder)
        assert tab.page().status_code == 200
        assert ("to fill in" in tab.page().text) == bool(placeholders), template.name


# -- who may -----------------------------------------------------------------------------------


def editor_rules(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/workflows/<workflow_id>/edit"):
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                found.append((method, rule.rule))
    return found


def test_every_editor_route_hides_another_teams_workflow(app, make_user, make_team, mia) -> None:
    stranger = make_user("stranger@example.com", teams=[make_team("Theirs")])
    theirs = service.create_workflow(
        stranger,
        name="Theirs",
        description="d",
        scope="team",
        team_id=stranger.memberships[0].team_id,
    )
    db.session.commit()
    client = signed_in(app, mia.email)
    token = csrf_token_from(client.get("/").text)
    rules = editor_rules(app)
    assert len(rules) >= 10
    for method, rule in rules:
        url = rule.replace("<workflow_id>", theirs.id)
        response = client.open(url, method=method, data={"csrf_token": token, "node_id": "trigger"})
        assert response.status_code == 404, (method, rule)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowDraft)) == 0


def test_a_member_may_look_at_a_global_workflow_but_not_edit_it(app, mia, make_user) -> None:
    admin = make_user("admin@example.com", admin=True)
    global_workflow = service.create_workflow(
        admin,
        name="Everyone's",
        description="d",
        scope="global",
        definition=copy.deepcopy(SIMPLE_DEFINITION),
    )
    db.session.commit()
    client = signed_in(app, mia.email)
    page = client.get(f"/workflows/{global_workflow.id}/edit")
    assert page.status_code == 403
    assert "Only admins can change global workflows" in page.text and "<svg" in page.text
    token = csrf_token_from(client.get("/").text)
    for method, rule in editor_rules(app):
        url = rule.replace("<workflow_id>", global_workflow.id)
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 403, (method, rule)
    # Admins edit it.
    assert (
        signed_in(app, admin.email).get(f"/workflows/{global_workflow.id}/edit").status_code == 200
    )


# -- lean --------------------------------------------------------------------------------------


def long_definition(length: int) -> Json:
    """trigger -> webhook -> delay -> webhook ... (``length`` nodes in all)."""
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    template = definition["nodes"][1]
    nodes = [definition["nodes"][0]]
    for index in range(1, length):
        if index % 2:
            node = copy.deepcopy(template)
            node["id"] = f"call{index}"
            node["data"]["name"] = f"Call {index}"
        else:
            node = {
                "id": f"wait{index}",
                "type": "delay",
                "position": {"x": 0, "y": 0},
                "data": {"durationMinutes": 1, "name": f"Wait {index}"},
            }
        nodes.append(node)
    definition["nodes"] = nodes
    definition["edges"] = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        for i, (a, b) in enumerate(zip(nodes, nodes[1:], strict=False))
    ]
    return definition


def test_the_page_makes_as_many_queries_for_50_nodes_as_for_3(app, mia, team) -> None:
    counts = {}
    for length in (3, 50):
        created = service.create_workflow(
            mia,
            name=f"Long {length}",
            description="d",
            scope="team",
            team_id=team.id,
            definition=long_definition(length),
        )
        db.session.commit()
        tab = Editor(signed_in(app, mia.email), created.id)
        tab.page()  # warm up
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args, found=statements) -> None:
            found.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert tab.page(node="call1").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        counts[length] = len(statements)
    assert counts[50] == counts[3], counts
    assert counts[50] <= 8, counts


# -- draft revisions: two tabs --------------------------------------------------------------


def node_post(rendered: Json, node_id: str, fields: Json) -> Json:
    return {
        "node_id": node_id,
        "op": "apply",
        **rendered,
        **{f"node-{k}": v for k, v in fields.items()},
    }


def test_merge_keeps_both_sides_and_reports_fields_both_changed() -> None:
    base = {"a": 1, "b": {"c": 1, "d": 1}, "gone": 1}
    yours = {"a": 2, "b": {"c": 1, "d": 5}, "gone": 1, "new": 1}
    theirs = {"a": 1, "b": {"c": 3, "d": 7}}
    merged, conflicts = merge_edits(base, yours, theirs)
    assert merged == {"a": 2, "b": {"c": 3, "d": 7}, "new": 1}
    assert [(c.path, c.theirs, c.yours) for c in conflicts] == [(("b", "d"), 7, 5)]
    assert merge_edits(1, 1, 1) == (1, [])
    _, gone = merge_edits({"x": 1}, {"x": 2}, {})
    assert gone[0].theirs is MISSING and gone[0].yours == 2


def test_two_tabs_changing_different_fields_keep_both(editor, mia, workflow) -> None:
    tab_a = editor
    tab_b = Editor(editor.client, workflow.id)
    a_form, b_form = tab_a.rendered("notify"), tab_b.rendered("notify")
    assert a_form["revision"] and a_form == b_form

    renamed = tab_a.post(
        "/node", node_post(a_form, "notify", {**WEBHOOK_FIELDS, "name": "Renamed in A"})
    )
    assert renamed.status_code == 200
    # Tab B still shows the old name and changes only the URL.
    moved = tab_b.post(
        "/node",
        node_post(b_form, "notify", {**WEBHOOK_FIELDS, "url": "https://hooks.example.com/b"}),
    )
    assert moved.status_code == 200
    assert "those changes were kept together with yours" in moved.text
    data = nodes_of(draft_of(mia, workflow).definition)["notify"]["data"]
    assert data["name"] == "Renamed in A"
    assert data["config"]["url"] == "https://hooks.example.com/b"


def test_two_tabs_changing_the_same_field_show_the_conflict_and_lose_nothing(
    editor, mia, workflow
) -> None:
    tab_b = Editor(editor.client, workflow.id)
    a_form, b_form = editor.rendered("notify"), tab_b.rendered("notify")
    editor.post("/node", node_post(a_form, "notify", {**WEBHOOK_FIELDS, "name": "From A"}))

    refused = tab_b.post(
        "/node",
        node_post(
            b_form,
            "notify",
            {**WEBHOOK_FIELDS, "name": "From B", "url": "https://hooks.example.com/b"},
        ),
    )
    assert refused.status_code == 409
    text = html.unescape(refused.text)
    assert "this node was changed elsewhere" in text
    assert '<th scope="row">Name</th><td><code>From A</code></td><td><code>From B</code>' in text
    assert "reload the node" in text
    # Tab B's values are still in its form; the draft keeps A's and nothing of B's.
    assert 'value="From B"' in refused.text
    assert 'value="https://hooks.example.com/b"' in refused.text
    data = nodes_of(draft_of(mia, workflow).definition)["notify"]["data"]
    assert data["name"] == "From A"
    assert data["config"]["url"] == "https://hooks.example.com/incident"

    # The refused form carries the draft's new revision: applying it again keeps B's values.
    again = {
        "revision": _hidden(refused.text, "revision"),
        "origin": html.unescape(_hidden(refused.text, "origin")),
    }
    assert again["revision"] != b_form["revision"]
    kept = tab_b.post(
        "/node",
        node_post(
            again,
            "notify",
            {**WEBHOOK_FIELDS, "name": "From B", "url": "https://hooks.example.com/b"},
        ),
    )
    assert kept.status_code == 200
    data = nodes_of(draft_of(mia, workflow).definition)["notify"]["data"]
    assert (data["name"], data["config"]["url"]) == ("From B", "https://hooks.example.com/b")


def _hidden(text: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', text)
    assert found is not None
    return found.group(1)


def test_a_form_without_its_revision_cannot_overwrite_changed_fields(editor, mia, workflow) -> None:
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Current"})
    blind = editor.post(
        "/node",
        node_post({"revision": "", "origin": ""}, "notify", {**WEBHOOK_FIELDS, "name": "Blind"}),
    )
    assert blind.status_code == 409
    assert nodes_of(draft_of(mia, workflow).definition)["notify"]["data"]["name"] == "Current"


def test_stale_trigger_form_merges_into_the_trigger_settings(editor, mia, workflow) -> None:
    tab_b = Editor(editor.client, workflow.id)
    a_form, b_form = editor.rendered("trigger"), tab_b.rendered("trigger")
    trigger = {
        "name": "Incident created",
        "trigger_type": "incident_created",
        "conditions-0-field": "priority",
        "conditions-0-value": "P1",
    }
    editor.post("/node", node_post(a_form, "trigger", {**trigger, "name": "Renamed"}))
    changed = tab_b.post(
        "/node", node_post(b_form, "trigger", {**trigger, "conditions-0-value": "P2"})
    )
    assert changed.status_code == 200
    definition = draft_of(mia, workflow).definition
    assert nodes_of(definition)["trigger"]["data"]["name"] == "Renamed"
    assert definition["trigger"]["conditions"] == [{"field": "priority", "value": "P2"}]


def test_settings_from_two_tabs_merge_or_conflict(editor, mia, workflow) -> None:
    tab_b = Editor(editor.client, workflow.id)
    page = editor.client.get(editor.url).text
    revision = _settings_hidden(page, "revision")
    origin = html.unescape(_settings_hidden(page, "origin"))
    base = {"settings-name": "Notify on P1", "settings-description": "Posts to a webhook."}
    sent = {"revision": revision, "origin": origin, "settings-timeout": "5min"}
    assert editor.post("/settings", {**sent, **base, "settings-name": "A"}).status_code == 200
    merged = tab_b.post("/settings", {**sent, **base, "settings-timeout": "15min"})
    assert merged.status_code == 200
    definition = draft_of(mia, workflow).definition
    assert (definition["name"], definition["settings"]["timeout"]) == ("A", "15min")

    refused = tab_b.post("/settings", {**sent, **base, "settings-name": "B"})
    assert refused.status_code == 409
    assert "<td><code>A</code></td><td><code>B</code></td>" in refused.text
    assert draft_of(mia, workflow).definition["name"] == "A"


def _settings_hidden(page: str, name: str) -> str:
    return _hidden(page[page.index('id="settings-panel"') :], name)


def test_removing_a_node_changed_in_another_tab_is_refused(editor, mia, workflow) -> None:
    tab_b = Editor(editor.client, workflow.id)
    b_form = tab_b.rendered("notify")
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "url": "https://hooks.example.com/new"})
    refused = tab_b.post("/nodes/remove", {"node_id": "notify", "confirm": "yes", **b_form})
    assert refused.status_code == 409
    assert "Not removed: this node was changed elsewhere" in refused.text
    assert "(URL)" in refused.text
    assert "notify" in nodes_of(draft_of(mia, workflow).definition)
    # A stale form for a node nobody changed still removes it (another node changed).
    b_form = tab_b.rendered("notify")
    editor.apply_node("trigger", {"name": "Renamed", "trigger_type": "manual"})
    assert (
        tab_b.post("/nodes/remove", {"node_id": "notify", "confirm": "yes", **b_form}).status_code
        == 200
    )
    assert "notify" not in nodes_of(draft_of(mia, workflow).definition)


# -- selects change the form, not the draft ---------------------------------------------------


def form_post(editor: Editor, node_id: str, fields: Json, op: str = "refresh") -> Any:
    data = {"node_id": node_id, "op": op, **{f"node-{k}": v for k, v in fields.items()}}
    return editor.post("/node/form", data, node=node_id)


def test_choosing_a_trigger_type_changes_the_form_not_the_draft(editor, mia, workflow) -> None:
    editor.apply_node(
        "trigger",
        {"name": "Resolved!", "trigger_type": "state_changed", "state_to": "RESOLVED"},
    )
    before = draft_of(mia, workflow).definition
    assert before["trigger"]["stateTransition"] == {"to": "RESOLVED"}

    age = form_post(editor, "trigger", {"name": "Resolved!", "trigger_type": "age"})
    assert age.status_code == 200
    assert 'id="node-age_threshold_minutes"' in age.text
    assert 'id="node-state_to"' not in age.text
    assert draft_of(mia, workflow).definition == before

    # Switched back (the age form did not post the state fields): what was there returns.
    back = form_post(editor, "trigger", {"name": "Resolved!", "trigger_type": "state_changed"})
    assert re.search(r'<option selected value="RESOLVED">', back.text)
    assert draft_of(mia, workflow).definition == before


def test_choosing_an_authentication_type_changes_the_form_not_the_draft(
    editor, mia, workflow
) -> None:
    basic = {**WEBHOOK_FIELDS, "auth_type": "basic", "username": "bob"}
    editor.apply_node("notify", basic)
    before = draft_of(mia, workflow).definition
    bearer = {k: v for k, v in basic.items() if k != "username"} | {"auth_type": "bearer"}
    shown = form_post(editor, "notify", bearer)
    assert 'id="node-token"' in shown.text and 'id="node-username"' not in shown.text
    back = form_post(editor, "notify", {**bearer, "auth_type": "basic"})
    assert 'id="node-username"' in back.text and 'value="bob"' in back.text
    assert draft_of(mia, workflow).definition == before


def test_adding_a_row_changes_the_form_not_the_draft(editor, mia, workflow) -> None:
    editor.page()
    rows = form_post(
        editor,
        "trigger",
        {
            "name": "Incident created",
            "trigger_type": "incident_created",
            "conditions-0-field": "priority",
            "conditions-0-value": "P1",
        },
        op="add:conditions",
    )
    assert 'id="node-conditions-1-field"' in rows.text
    assert draft_of(mia, workflow) is None


def test_generated_names_follow_their_settings_until_renamed(editor, mia, workflow) -> None:
    editor.add_node("delay", after="notify")
    assert nodes_of(draft_of(mia, workflow).definition)["delay_1"]["data"]["name"] == (
        "Wait 10 minutes"
    )
    page = editor.page(node="delay_1").text
    assert 'name="node-generated_name" type="hidden" value="Wait 10 minutes"' in page
    editor.apply_node(
        "delay_1",
        {"name": "Wait 10 minutes", "generated_name": "Wait 10 minutes", "duration_minutes": "99"},
    )
    data = nodes_of(draft_of(mia, workflow).definition)["delay_1"]["data"]
    assert data == {"name": "Wait 99 minutes", "durationMinutes": 99}

    # Renamed by the user: the name stays when the setting changes.
    editor.apply_node(
        "delay_1",
        {"name": "Cool down", "generated_name": "Wait 99 minutes", "duration_minutes": "99"},
    )
    assert 'name="node-generated_name" type="hidden" value=""' in editor.page(node="delay_1").text
    editor.apply_node(
        "delay_1", {"name": "Cool down", "generated_name": "", "duration_minutes": "5"}
    )
    data = nodes_of(draft_of(mia, workflow).definition)["delay_1"]["data"]
    assert data == {"name": "Cool down", "durationMinutes": 5}


def test_a_generated_trigger_name_follows_the_type_in_the_form(editor, workflow) -> None:
    editor.page()
    shown = form_post(
        editor,
        "trigger",
        {
            "name": "Incident created",
            "generated_name": "Incident created",
            "trigger_type": "state_changed",
            "state_to": "RESOLVED",
        },
    )
    assert 'value="Incident becomes resolved"' in shown.text


def test_a_secret_typed_in_a_discarded_draft_is_never_stored(editor, mia, workflow) -> None:
    editor.page(node="notify")
    editor.apply_node(
        "notify", {**WEBHOOK_FIELDS, "auth_type": "bearer", "token": SECRET_VALUES["token"]}
    )
    assert sorted(draft_of(mia, workflow).pending_secrets) == ["notify_token"]
    assert editor.post("/discard", {"confirm": "yes"}).status_code == 204
    assert draft_of(mia, workflow) is None
    assert secret_store.secret_names(fresh(workflow)) == []
    assert SECRET_VALUES["token"] not in database_text()


def test_a_new_value_for_an_existing_secret_waits_for_the_save(editor, mia, workflow) -> None:
    secret_store.set_secret(fresh(workflow), "notify_token", "old-value")
    db.session.commit()
    editor.apply_node(
        "notify",
        {**WEBHOOK_FIELDS, "auth_type": "bearer", "token_ref": "notify_token", "token": "new-one"},
    )
    # The running version still uses the old value until the draft is saved.
    assert secret_store.decrypt_for_request(workflow.id) == {"notify_token": "old-value"}
    # Key rotation re-encrypts the pending value too: the stored one and the typed one.
    pending_before = dict(draft_of(mia, workflow).pending_secrets)
    assert secret_store.reencrypt_all() == 2
    db.session.commit()
    assert draft_of(mia, workflow).pending_secrets != pending_before
    assert editor.save("rotate token").status_code == 204
    assert secret_store.decrypt_for_request(workflow.id) == {"notify_token": "new-one"}


# -- readiness -----------------------------------------------------------------------------------


def _not_ready_definition() -> Json:
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    config = definition["nodes"][1]["data"]["config"]
    config["headers"] = {"X-Team": "<<fill: your team's name>>"}
    config["auth"] = {"type": "bearer", "token": "{{ secrets.hook_token }}"}
    config["body"] = '{"title": {{ incident.title }}}'  # not JSON once rendered
    return definition


def test_enabling_lists_every_blocker_at_once(mia, team) -> None:
    workflow = service.create_workflow(
        mia,
        name="Not ready",
        description="Blocked.",
        scope="team",
        team_id=team.id,
        definition=_not_ready_definition(),
    )
    db.session.commit()
    with pytest.raises(service.NotReady) as refused:
        service.set_enabled(mia, workflow, True)
    locs = [p.loc for p in refused.value.problems]
    assert locs == [
        'nodes[1].data.config.headers["X-Team"]',
        "nodes[1].data.config.auth.token",
        "nodes[1].data.config.body",
    ] or sorted(locs) == sorted(
        [
            "nodes[1].data.config.headers.X-Team",
            "nodes[1].data.config.auth.token",
            "nodes[1].data.config.body",
        ]
    )
    assert "3 things to fix" in refused.value.message


def test_the_editor_checklist_and_switch(app, mia, team) -> None:
    workflow = service.create_workflow(
        mia,
        name="Not ready",
        description="Blocked.",
        scope="team",
        team_id=team.id,
        definition=_not_ready_definition(),
    )
    db.session.commit()
    editor = Editor(signed_in(app, mia.email), workflow.id)
    page = html.unescape(editor.page().text)
    checklist = page[page.index('id="problems-panel"') :]
    assert "Readiness checklist (3 to fix)" in checklist
    assert "your team's name" in checklist
    assert "<code>hook_token</code> is not set (used by Notify)" in checklist
    add = f"/workflows/{workflow.id}/secrets?name=hook_token#secret-value"
    assert add in checklist
    assert 'role="switch" aria-checked="false"' in page
    # "Add" opens the secrets page with the name filled in.
    secrets_page = editor.client.get(add.split("#")[0]).text
    assert re.search(r'id="secret-name"[^>]*value="hook_token"', secrets_page)

    refused = editor.post("/enable", {"enabled": "1"})
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "3 things to fix" in text
    for where in ("X-Team", "auth.token", "config.body"):
        assert where in text
    assert not fresh(workflow).is_enabled

    # Once the blockers are gone, the switch enables and disables.
    ready = copy.deepcopy(SIMPLE_DEFINITION)
    service.save_version(mia, fresh(workflow), ready, base_version=1, change_note="ready")
    db.session.commit()
    assert editor.post("/enable", {"enabled": "1"}).status_code == 204
    assert fresh(workflow).is_enabled
    assert 'role="switch" aria-checked="true"' in editor.page().text
    assert editor.post("/enable", {"enabled": "0"}).status_code == 204
    assert not fresh(workflow).is_enabled


# -- internal destinations ---------------------------------------------------------------------


def test_the_admin_page_shows_the_outbound_allow_list_and_where_it_is_set(
    app, make_user, mia
) -> None:
    admin = make_user("ada@example.com", admin=True)
    app.config["OUTBOUND_ALLOW"] = "hooks.internal, *.corp.example 10.1.0.0/16"
    app.config["OUTBOUND_ALLOW_SOURCE"] = "the INCIDENTFLOW_OUTBOUND_ALLOW environment variable"
    page = signed_in(app, admin.email).get("/admin/outbound")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for entry in ("<code>hooks.internal</code>", "<code>*.corp.example</code>", "10.1.0.0/16"):
        assert entry in text
    assert "Set by</strong> the INCIDENTFLOW_OUTBOUND_ALLOW environment variable" in text
    assert "<form" not in text[text.index("<h1>") :]  # read-only
    assert signed_in(app, mia.email).get("/admin/outbound").status_code == 403


def test_the_refusal_names_the_setting_and_the_page() -> None:
    import ipaddress

    from app.engine.outbound import DestinationRefused

    message = str(
        DestinationRefused("10.0.0.5", ipaddress.ip_address("10.0.0.5"), "a private address")
    )
    assert "INCIDENTFLOW_OUTBOUND_ALLOW" in message and "/admin/outbound" in message
    assert "outbound settings" not in message


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://10.0.0.5/hook", "'10.0.0.5' is a private"),
        ("http://localhost:8080/hook", "'localhost' is a name that only resolves inside"),
        ("https://jira.corp.internal/hook", "'jira.corp.internal' is a name"),
        ("http://[::1]/x", "'::1' is a loopback"),
        ("http://2130706433/x", "'127.0.0.1' is a loopback"),
        ("https://hooks.example.com/incident", None),
        ("https://{{ incident.metadata.host }}/x", None),
    ],
)
def test_the_editor_warns_while_editing_when_a_url_is_internal(app, editor, url, warned) -> None:
    response = editor.apply_node("notify", {**WEBHOOK_FIELDS, "url": url})
    text = html.unescape(response.text)
    if warned is None:
        assert "runs will refuse to send there" not in text
        return
    assert response.status_code == 200  # a warning: the draft keeps the URL
    assert warned in text
    assert "runs will refuse to send there" in text
    assert '<a href="/admin/outbound">/admin/outbound</a>' in text  # in the checklist
    # Allowed by the administrator: no warning.
    app.config["OUTBOUND_ALLOW"] = "10.0.0.0/8, localhost, *.corp.internal, ::1, 127.0.0.1"
    assert "runs will refuse to send there" not in editor.page(node="notify").text


def test_the_live_check_renders_a_body_for_a_sample_incident(editor, workflow) -> None:
    editor.page(node="notify")

    def live(body: str) -> str:
        return html.unescape(
            editor.client.post(
                f"{editor.url}/check",
                data={"csrf_token": editor.token, "node_id": "notify", "node-body": body},
                headers={"HX-Request": "true", "HX-Trigger-Name": "node-body"},
            ).text
        )

    flagged = live('{"title": {{ incident.title }}}')
    assert "For a sample incident this body renders as" in flagged
    assert "not JSON" in flagged
    assert "not JSON" not in live('{"title": {{ incident.title | tojson }}}')


# -- test this draft ---------------------------------------------------------------------------


def test_testing_the_draft_without_javascript(editor, workflow, team, make_incident) -> None:
    incident = make_incident(team, title="Disk full")
    other = make_incident(title="Someone else's")
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "url": "https://hooks.example.com/draft"})
    test = f"{editor.url}/test"
    searched = editor.client.get(
        test, query_string={"q": "disk", "incident": incident.id, "search": "1"}
    )
    assert searched.status_code == 200
    assert "Disk full" in searched.text and "nothing was sent" not in searched.text
    ran = editor.client.get(test, query_string={"incident": incident.id}).text
    assert "Your draft on “Disk full”: nothing was sent" in html.unescape(ran)
    assert "https://hooks.example.com/draft" in ran  # the draft's URL, not v1's
    assert editor.client.get(test, query_string={"incident": other.id}).status_code == 404


# -- graph editing -----------------------------------------------------------------------------


def test_add_after_inserts_between_a_node_and_what_follows_it(editor, mia, workflow) -> None:
    editor.page()
    # The form's default: between the trigger and "notify".
    page = editor.page().text
    assert re.search(r'<option selected value="insert">', page)
    delay = editor.add_node("delay", after="trigger", placement="insert")
    delay_id = delay.headers["HX-Push-Url"].rsplit("=", 1)[1]
    definition = draft_of(mia, workflow).definition
    assert edges_of(definition) == {("trigger", delay_id, None), (delay_id, "notify", None)}

    # A condition inserted takes the following node on its true branch.
    condition = editor.add_node("condition", after=delay_id, placement="insert")
    condition_id = condition.headers["HX-Push-Url"].rsplit("=", 1)[1]
    definition = draft_of(mia, workflow).definition
    assert (delay_id, condition_id, None) in edges_of(definition)
    assert (condition_id, "notify", "true") in edges_of(definition)
    # Inserted on a condition's branch: only that branch moves.
    hook = editor.add_node("webhook", after=condition_id, handle="true", placement="insert")
    hook_id = hook.headers["HX-Push-Url"].rsplit("=", 1)[1]
    definition = draft_of(mia, workflow).definition
    assert (condition_id, hook_id, "true") in edges_of(definition)
    assert (hook_id, "notify", None) in edges_of(definition)
    assert (condition_id, "notify", "true") not in edges_of(definition)

    # "As a new branch" keeps the old behaviour: a parallel node after the trigger.
    side = editor.add_node("delay", after="trigger", placement="branch")
    side_id = side.headers["HX-Push-Url"].rsplit("=", 1)[1]
    definition = draft_of(mia, workflow).definition
    assert ("trigger", side_id, None) in edges_of(definition)
    assert ("trigger", delay_id, None) in edges_of(definition)


def test_remove_node_and_discard_ask_first(editor, mia, workflow) -> None:
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Changed"})
    asked = editor.post("/nodes/remove", {"node_id": "notify"}, node="notify")
    assert asked.status_code == 200
    assert "Remove “Changed” and its 1 edge?" in html.unescape(asked.text)
    assert 'name="confirm" value="yes"' in asked.text
    assert "notify" in nodes_of(draft_of(mia, workflow).definition)
    # Without htmx the question is a page of its own (the editor, asking).
    plain = editor.post("/nodes/remove", {"node_id": "notify"}, htmx=False)
    assert plain.status_code == 200 and 'id="remove-confirm"' in plain.text

    asked = editor.post("/discard", {})
    assert asked.status_code == 200 and 'id="discard-confirm"' in asked.text
    assert draft_of(mia, workflow) is not None
    assert editor.post("/discard", {"confirm": "yes"}).status_code == 204
    assert draft_of(mia, workflow) is None


def test_the_add_edge_form_never_defaults_to_an_invalid_edge(editor, mia, workflow) -> None:
    editor.add_node("delay", after="notify")
    page = editor.page(node="notify").text
    form = page[page.index('id="add-edge-form"') :]
    source = re.search(r'id="edge-source".*?<option selected value="([^"]+)"', form, re.S)
    target = re.search(r'id="edge-target".*?<option selected value="([^"]+)"', form, re.S)
    assert source and source.group(1) == "notify"
    # Not itself, not the trigger, not the delay it already leads to: nothing is left.
    assert target is None and 'id="edge-no-target"' in form
    again = editor.client.get(
        f"{editor.url}/add-edge-form",
        query_string={"edge-source": "trigger", "edge-target": "trigger"},
    ).text
    chosen = re.search(r'id="edge-target".*?<option selected value="([^"]+)"', again, re.S)
    assert chosen is not None and chosen.group(1) not in ("trigger", "notify")


@pytest.mark.parametrize("origin", ["[" * 200_000, '{"data": 1}', "null", "not json"])
def test_a_forged_origin_is_treated_as_unknown(editor, mia, workflow, origin) -> None:
    editor.apply_node("notify", {**WEBHOOK_FIELDS, "name": "Current"})
    sent = node_post({"revision": "stale", "origin": origin}, "notify", {**WEBHOOK_FIELDS})
    assert editor.post("/node", sent).status_code == 409  # the name differs: a conflict
    settings = {"revision": "stale", "origin": origin, "settings-name": "X"}
    assert editor.post("/settings", settings).status_code == 409
    assert nodes_of(draft_of(mia, workflow).definition)["notify"]["data"]["name"] == "Current"
