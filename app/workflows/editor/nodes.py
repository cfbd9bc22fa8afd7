"""The editor's graph changes: apply a node's form (merging edits made elsewhere since it
was rendered), re-render it for a choice, check a template field as it is typed, add and
remove nodes and edges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import render_template
from flask_login import current_user, login_required
from htmx_flask import request
from werkzeug.wrappers import Response

from app.errors import InvalidInput, ServiceError
from app.extensions import db
from app.htmx import is_htmx
from app.workflows import secrets as secret_store
from app.workflows.blueprint import bp
from app.workflows.drafts import checks as draft_checks
from app.workflows.drafts import edits as draft_edits
from app.workflows.drafts import store as draft_store
from app.workflows.drafts import variables as draft_variables
from app.workflows.editor.responses import (
    AFTER_NODE_CHANGE,
    committed,
    done,
    editable_workflow,
    fresh_state,
    posted_origin,
    respond,
    selected_from_request,
    shown_value,
    unknown_base,
)
from app.workflows.editor.view import make_add_edge_form, make_add_node_form, nodes_of, stamp
from app.workflows.forms.base import PREFIX, NodeForm, auto_name
from app.workflows.forms.mapping import as_mapping
from app.workflows.forms.nodes import TriggerForm, form_class_for, node_kind
from app.workflows.forms.panels import AddEdgeForm, AddNodeForm

# --- nodes ----------------------------------------------------------------------------


def _merge_node_form(
    form: NodeForm, cls: type[NodeForm], definition: Mapping[str, Any], node: Mapping[str, Any]
) -> tuple[dict[str, Any], list[draft_edits.EditConflict], bool]:
    """The form's values merged into the node as the draft has it now.

    Returns (values, conflicts, merged): when the form was rendered from the draft's
    current revision its values apply as they are; otherwise each field the user
    changed is merged into the draft's, and a field both sides changed is a conflict.
    """
    yours = form.values()
    if request.form.get("revision") == draft_store.revision_of(definition):
        return yours, [], False
    trigger = definition.get("trigger")
    theirs = cls.from_node(node, trigger=trigger).values()
    origin = posted_origin()
    if origin is None:
        base = unknown_base(theirs)
    else:
        base = cls.from_node(
            {"id": node.get("id"), "data": origin["data"]}, trigger=origin.get("trigger")
        ).values()
    merged, conflicts = draft_edits.merge_edits(base, yours, theirs)
    return merged, conflicts, True


@bp.post("/<workflow_id>/edit/node")
@login_required
def edit_node(workflow_id: str) -> Response:
    """Apply a node's form to the draft. ``op`` may also add or remove a row, or just
    re-render the fields for a new auth or trigger type (the draft is updated either way)."""
    workflow = editable_workflow(workflow_id)
    node_id = request.form.get("node_id", "")
    op = request.form.get("op", "apply")
    draft = draft_store.current_draft(current_user, workflow)
    node = next((n for n in nodes_of(draft.definition) if n.get("id") == node_id), None)
    cls = form_class_for(node) if node else None
    if node is None or cls is None:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow,
            draft,
            panels=AFTER_NODE_CHANGE,
            status=409,
            selected=None,
            node_notes=[
                f"The node '{node_id}' is no longer in your draft (removed in another tab?); "
                "nothing was changed."
            ],
        )
    if op != "apply":
        db.session.rollback()  # nothing changes until "Apply"
        return _render_node_form(workflow_id, node_id, cls, op)
    form = cls.from_formdata(request.form, node_id)
    if form.text_problems:  # shown at their fields; the draft is left as it was
        return respond(
            workflow, draft, panels=("node_form",), status=422, selected=node_id, node_form=form
        )
    draft = draft_store.load_draft(current_user, workflow)
    add_row = None
    values, conflicts, merged = _merge_node_form(form, cls, draft.definition, node)
    generated = (form.generated_name.data or "").strip()
    if generated and values["data"].get("name") == generated:
        values["data"]["name"] = auto_name(cls.kind, values) or generated
    notes = list(form.node_errors)
    if conflicts:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        current = next((n for n in nodes_of(draft.definition) if n.get("id") == node_id), node)
        stamp(form, draft.definition, current)
        form.conflicts = [
            (cls.label_for(c.path), shown_value(c.theirs), shown_value(c.yours)) for c in conflicts
        ]
        return respond(
            workflow, draft, panels=("node_form",), status=409, selected=node_id, node_form=form
        )
    notice = (
        "Applied. This draft was changed elsewhere (another tab?) since you opened this "
        "form; those changes were kept together with yours."
        if merged
        else None
    )
    try:
        draft_store.store_credentials(draft, form.credentials, actor=current_user)
        if isinstance(form, TriggerForm):
            draft_edits.update_trigger(draft, node_id, values["data"], values["trigger"])
        else:
            draft_edits.update_node(draft, node_id, values["data"])
    except InvalidInput as error:
        db.session.rollback()
        for problem in error.problems:
            form.attach(draft_checks.parse_loc(problem.loc), "", problem.message)
        workflow, draft = fresh_state(workflow_id)
        form.form_revision = request.form.get("revision", "")
        form.form_origin = request.form.get("origin", "")
        return respond(
            workflow, draft, panels=("node_form",), status=422, selected=node_id, node_form=form
        )
    if not is_htmx():
        return committed(done(workflow, node_id))
    return committed(
        respond(
            workflow,
            draft,
            panels=AFTER_NODE_CHANGE,
            status=lambda context: 422 if _node_has_errors(context) else 200,
            selected=node_id,
            node_notes=notes,
            node_notice=notice,
            add_row=add_row,
        )
    )


@bp.post("/<workflow_id>/edit/node/form")
@login_required
def edit_node_form(workflow_id: str) -> Response:
    """The node's form again for what is chosen in it (a trigger or authentication type,
    a row added or removed); the draft does not change until "Apply"."""
    node_id = request.form.get("node_id", "")
    workflow = editable_workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    node = next((n for n in nodes_of(draft.definition) if n.get("id") == node_id), None)
    cls = form_class_for(node) if node else None
    if node is None or cls is None:
        return respond(
            workflow,
            draft,
            panels=("node_form",),
            status=409,
            node_notes=[f"The node '{node_id}' is no longer in your draft; reload the page."],
        )
    return _render_node_form(workflow_id, node_id, cls, request.form.get("op", "refresh"))


def _render_node_form(workflow_id: str, node_id: str, cls: type[NodeForm], op: str) -> Response:
    """The node form as the user has filled it in; fields the chosen type hides keep the
    values the form was rendered with, so switching back restores them."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    node = next(n for n in nodes_of(draft.definition) if n.get("id") == node_id)
    origin = posted_origin()
    shown = (
        {"id": node_id, "data": origin["data"]} if origin is not None else node,
        origin.get("trigger") if origin is not None else draft.definition.get("trigger"),
    )
    form = cls(
        formdata=request.form, data=cls.initial(as_mapping(shown[0].get("data")), trigger=shown[1])
    )
    form.node_id = node_id
    for name, rows in form._fields.items():
        posted = f"{PREFIX}{name}-shown" in request.form or any(
            key.startswith(f"{PREFIX}{name}-") for key in request.form
        )
        if hasattr(rows, "entries") and not posted:
            # A list the form did not show: keep the rows it was rendered with.
            rows.entries = []
            rows.last_index = -1
            for row in cls.initial(as_mapping(shown[0].get("data")), trigger=shown[1]).get(
                name, []
            ):
                rows.append_entry(row)
    if op.startswith("remove:"):
        _remove_row(form, op)
    elif op.startswith("add:") and op.removeprefix("add:") in form._fields:
        rows = form[op.removeprefix("add:")]
        if hasattr(rows, "append_entry"):
            rows.append_entry()
            next(iter(rows.entries[-1].form)).render_kw = {"autofocus": True}
    form.follow_settings()
    form.form_revision = request.form.get("revision", "")
    form.form_origin = request.form.get("origin", "")
    return respond(workflow, draft, panels=("node_form",), selected=node_id, node_form=form)


def _node_has_errors(context: dict[str, Any]) -> bool:
    form = context["node_form"]
    checked: draft_checks.Checked = context["checked"]
    return bool(
        (form is not None and form.node_errors)
        or any(not p.warning for p in checked.for_node(context["selected"]))
    )


@bp.post("/<workflow_id>/edit/check")
@login_required
def edit_check_template(workflow_id: str) -> str:
    """As the user types in a template field: the variables in it that do not exist.

    Reads the draft and changes nothing; the answer replaces the field's live-check note.
    """
    workflow = editable_workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    node_id = request.form.get("node_id", "")
    field_name = request.headers.get("HX-Trigger-Name") or ""
    text: str = request.form.get(field_name, "") if field_name.startswith("node-") else ""
    node = next((n for n in nodes_of(draft.definition) if n.get("id") == node_id), None)
    messages: list[tuple[str, bool]] = []
    if node is not None and text:
        variables = draft_variables.variables_for(
            draft.definition,
            node_id,
            [*secret_store.secret_names(workflow), *draft_store.pending_names(draft)],
        )
        messages = draft_variables.unknown_references(text, variables)
        if not messages and field_name == "node-body" and node_kind(node) == "webhook":
            # Rendered for a sample incident: a body that cannot be JSON is said at once.
            from app.engine.sample_render import json_body_problems

            sample = {"nodes": [{"data": {"actionType": "webhook", "config": {"body": text}}}]}
            messages = [(p.message, False) for p in json_body_problems(sample)]
    return render_template("workflows/editor/_live_check.html", messages=messages)


def _remove_row(form: NodeForm, op: str) -> None:
    """``remove:<list>:<index>``: drop that row before the form is read."""
    _, name, index = (op.split(":") + ["", ""])[:3]
    rows = form._fields.get(name)
    # ASCII digits only, and short: "²" is a digit to isdigit() but not to int().
    if rows is None or not hasattr(rows, "entries") or not re.fullmatch(r"[0-9]{1,6}", index):
        return
    if int(index) < len(rows.entries):
        del rows.entries[int(index)]


@bp.post("/<workflow_id>/edit/nodes")
@login_required
def edit_add_node(workflow_id: str) -> Response:
    """Add a node after a chosen one (on a condition's true/false branch)."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    form = make_add_node_form(draft.definition, None, request.form)
    try:
        node_id = draft_edits.add_node(
            draft,
            form.kind.data or "",
            after=form.after.data or "",
            handle=form.handle.data if form.show_handle else None,
            insert=form.placement.data != "branch",
        )
    except InvalidInput as error:
        return _add_refused(workflow_id, error, panel="add_node", add_node_form=form)
    if not is_htmx():
        return committed(done(workflow, node_id))
    return committed(
        respond(
            workflow, draft, panels=AFTER_NODE_CHANGE, selected=node_id, push=True, focus_node=True
        )
    )


@bp.post("/<workflow_id>/edit/nodes/remove")
@login_required
def edit_remove_node(workflow_id: str) -> Response:
    """Remove a node and the edges that touch it."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    node_id = request.form.get("node_id", "")
    changed = _changed_since_rendered(draft.definition, node_id)
    if changed:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow,
            draft,
            panels=("node_form",),
            status=409,
            selected=node_id,
            node_notes=[
                "Not removed: this node was changed elsewhere (another tab?) since you opened "
                f"it ({changed}). Its form now shows the draft as it is; remove it again if "
                "you still want to."
            ],
        )
    if request.form.get("confirm") != "yes":
        # Ask first (a step, not a script): the answer posts again with confirm=yes.
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow, draft, panels=("node_form",), selected=node_id, confirm_remove=True
        )
    try:
        draft_edits.remove_node(draft, node_id)
    except InvalidInput as error:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow,
            draft,
            panels=("node_form",),
            status=422,
            selected=node_id,
            node_notes=[error.message],
        )
    if not is_htmx():
        return committed(done(workflow, None))
    return committed(respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=None, push=True))


def _changed_since_rendered(definition: Mapping[str, Any], node_id: str) -> str:
    """For a stale "remove": the fields of the node changed since the form was rendered."""
    if request.form.get("revision") == draft_store.revision_of(definition):
        return ""
    node = next((n for n in nodes_of(definition) if n.get("id") == node_id), None)
    cls = form_class_for(node) if node is not None else None
    if node is None or cls is None:
        return ""  # remove_node reports a node that is gone
    theirs = cls.from_node(node, trigger=definition.get("trigger")).values()
    origin = posted_origin()
    if origin is None:
        return "the form did not say which version of the node it showed"
    base = cls.from_node(
        {"id": node_id, "data": origin["data"]}, trigger=origin.get("trigger")
    ).values()
    changed = _leaf_differences(base, theirs)
    return ", ".join(sorted({cls.label_for(path) for path in changed}))


def _leaf_differences(a: Any, b: Any, path: tuple[str | int, ...] = ()) -> list[Any]:
    if a == b:
        return []
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return [
            found
            for key in {*a, *b}
            for found in _leaf_differences(
                a.get(key, draft_edits.MISSING), b.get(key, draft_edits.MISSING), (*path, key)
            )
        ]
    return [path]


def _add_refused(
    workflow_id: str, error: InvalidInput, *, panel: str, **form: AddNodeForm | AddEdgeForm
) -> Response:
    """An "Add node" or "Add edge" the draft refused: nothing is kept, and its panel comes
    back (422) with the form as sent and each problem next to its field."""
    db.session.rollback()
    for sent in form.values():
        _attach_simple(sent, error)
    workflow, draft = fresh_state(workflow_id)
    return respond(
        workflow, draft, panels=(panel,), status=422, selected=selected_from_request(), **form
    )


def _attach_simple(form: Any, error: ServiceError) -> None:
    """Put a service error on the small form's field named by its location."""
    for problem in error.problems or []:
        found = form._fields.get(problem.loc)
        if found is not None:
            found.errors = [*found.errors, problem.message]
        else:
            form.form_problems = [*getattr(form, "form_problems", []), problem.message]
    if not error.problems:
        form.form_problems = [error.message]


# --- edges ----------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/edges")
@login_required
def edit_add_edge(workflow_id: str) -> Response:
    """Connect two nodes (from a condition: on its true or false branch)."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    form = make_add_edge_form(draft.definition, None, request.form)
    try:
        draft_edits.add_edge(
            draft,
            form.source.data or "",
            form.target.data or "",
            form.handle.data if form.show_handle else None,
        )
    except InvalidInput as error:
        return _add_refused(workflow_id, error, panel="edges", add_edge_form=form)
    selected = selected_from_request()
    if not is_htmx():
        return committed(done(workflow, selected))
    return committed(respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=selected))


@bp.post("/<workflow_id>/edit/edges/remove")
@login_required
def edit_remove_edge(workflow_id: str) -> Response:
    workflow = editable_workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    try:
        draft_edits.remove_edge(draft, request.form.get("edge_id", ""))
    except InvalidInput as error:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        form = make_add_edge_form(draft.definition, selected_from_request())
        form.form_problems = [error.message]
        return respond(
            workflow,
            draft,
            panels=("edges",),
            status=409,
            selected=selected_from_request(),
            add_edge_form=form,
        )
    selected = selected_from_request()
    if not is_htmx():
        return committed(done(workflow, selected))
    return committed(respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=selected))
