"""The run limit (once per incident, once per incident per N minutes) in the editor's
workflow settings form, checked by the schema, and shown in the version diff."""

from __future__ import annotations

import re

from app.extensions import db
from app.workflows.models import Workflow
from tests.page_support import Editor, draft_of

SETTINGS = {
    "selected": "",
    "settings-name": "Notify on P1",
    "settings-description": "Posts to a webhook.",
    "settings-timeout": "5min",
}


def test_the_form_shows_and_keeps_the_run_limit(editor: Editor, mia, workflow) -> None:  # noqa: F811
    page = editor.page().text
    assert 'id="settings-run_limit"' in page and "Once per incident per N minutes" in page

    response = editor.post(
        "/settings",
        {**SETTINGS, "settings-run_limit": "window", "settings-run_limit_minutes": "30"},
    )
    assert response.status_code == 200
    settings = draft_of(mia, workflow).definition["settings"]
    assert settings["oncePerIncidentMinutes"] == 30 and "oncePerIncident" not in settings
    page = editor.page().text
    assert re.search(r'<option selected value="window">|<option value="window" selected', page)
    assert 'value="30"' in page

    editor.post("/settings", {**SETTINGS, "settings-run_limit": "once"})
    settings = draft_of(mia, workflow).definition["settings"]
    assert settings["oncePerIncident"] is True and "oncePerIncidentMinutes" not in settings

    editor.post("/settings", {**SETTINGS, "settings-run_limit": ""})
    settings = draft_of(mia, workflow).definition["settings"]
    assert not {"oncePerIncident", "oncePerIncidentMinutes"} & set(settings)


def test_a_bad_number_of_minutes_is_shown_next_to_its_field(editor: Editor, mia, workflow) -> None:  # noqa: F811
    editor.page()
    for typed, words in (("", "whole number"), ("0", "1"), ("ten", "whole number")):
        response = editor.post(
            "/settings",
            {**SETTINGS, "settings-run_limit": "window", "settings-run_limit_minutes": typed},
        )
        assert response.status_code == 422, typed
        error = re.search(r'id="settings-run_limit_minutes-error">(.*?)</div>', response.text, re.S)
        assert error and words in error.group(1).lower(), (typed, error and error.group(1))


def test_the_version_diff_shows_a_run_limit_change(editor: Editor, mia, workflow, app) -> None:  # noqa: F811
    editor.page()
    editor.post("/settings", {**SETTINGS, "settings-run_limit": "once"})
    saved = editor.save("Once per incident")
    assert saved.status_code in (200, 204, 303), saved.text[:500]
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id).version == 2
    page = editor.client.get(f"/workflows/{workflow.id}/diff?from=1&to=2").text
    assert "settings.oncePerIncident" in page


def test_the_trigger_form_sets_up_a_failure_workflow(editor: Editor, mia, workflow) -> None:  # noqa: F811
    editor.page()
    response = editor.apply_node(
        "trigger", {"name": "A run failed", "trigger_type": "workflow_failed"}, op="refresh"
    )
    assert 'id="node-workflow_ids"' in response.text and 'id="node-min_failures"' in response.text
    assert 'id="node-age_threshold_minutes"' not in response.text
    editor.apply_node(
        "trigger",
        {
            "name": "A run failed",
            "trigger_type": "workflow_failed",
            "workflow_ids": " wf_one, wf-two ,",
            "min_failures": "3",
        },
    )
    trigger = draft_of(mia, workflow).definition["trigger"]
    assert trigger == {
        "type": "workflow_failed",
        "conditions": [],
        "workflowIds": ["wf_one", "wf-two"],
        "minFailures": 3,
    }
    bad = editor.apply_node(
        "trigger",
        {"name": "A run failed", "trigger_type": "workflow_failed", "min_failures": "0"},
    )
    assert bad.status_code == 422
    assert re.search(r'id="node-min_failures-error">', bad.text)
