"""A webhook body that cannot render JSON is found before any run: it blocks enabling,
with the node's body as the place, and the editor flags it while the draft is edited."""

from __future__ import annotations

import copy

import pytest

from app.definition.builders import chain
from app.errors import InvalidInput
from app.extensions import db
from app.workflows import service as workflows
from app.workflows.drafts import checks as draft_checks
from tests.builders import webhook
from tests.factories import SIMPLE_DEFINITION

BROKEN = '{"title": {{ incident.title }}}'  # no tojson: the title lands unquoted


def with_body(body: str) -> dict:
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    definition["nodes"][1]["data"]["config"]["body"] = body
    return definition


def test_a_body_that_cannot_be_json_blocks_enabling_at_its_place(make_workflow) -> None:
    workflow = make_workflow(definition=with_body(BROKEN))
    with pytest.raises(InvalidInput) as refused:
        workflows.set_enabled(workflow.created_by, workflow, True)
    (problem,) = refused.value.problems
    assert problem.loc == "nodes[1].data.config.body"
    assert "not JSON" in problem.message and "tojson" in problem.message
    db.session.rollback()
    assert not workflow.is_enabled


def test_a_body_with_tojson_enables(make_workflow) -> None:
    workflow = make_workflow(definition=with_body('{"title": {{ incident.title | tojson }}}'))
    workflows.set_enabled(workflow.created_by, workflow, True)
    assert workflow.is_enabled


def test_a_body_that_needs_an_earlier_step_is_left_to_the_run(make_workflow) -> None:
    # The sample has no step results: the body does not render, so it is not judged.
    url = "https://hooks.example.com/in"
    workflow = make_workflow(
        definition=chain(
            webhook("first", url),
            webhook("second", url, body='{"status": {{ steps.first.result.status }}}'),
        )
    )
    workflows.set_enabled(workflow.created_by, workflow, True)
    assert workflow.is_enabled


def test_the_editor_flags_the_body_and_the_draft_can_still_be_saved(app) -> None:
    checked = draft_checks.check(with_body(BROKEN), secret_names=())
    assert checked.valid  # saving a draft is allowed ...
    (problem,) = checked.problems
    assert problem.warning  # ... enabling is not
    assert (problem.loc, problem.node_id, problem.rel) == (
        "nodes[1].data.config.body",
        "notify",
        ("data", "config", "body"),
    )
    assert not draft_checks.check(with_body('{"ok": true}'), secret_names=()).problems
