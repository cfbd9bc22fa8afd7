"""The workflow editor: graph picture, node forms, edges, drafts, save as new version.

One page, ``workflows.edit``. Every change is a POST that updates the user's
draft (``app.workflows.drafts``) at once and answers htmx with out-of-band
swaps of the panels it affects; without htmx it answers with a 303 back to the
page, so the editor also works with plain forms. Selecting a node is a GET of
the page with ``?node=<id>`` (pushed to the history, so it survives a reload).

Who: a workflow the user cannot see is a 404 on every route; one they can see
but not change (a global workflow or template for a member) answers 403 with a
read-only picture of the workflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from flask import abort, current_app, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from app.engine.outbound import AllowList
from app.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.extensions import db
from app.htmx import see_other
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.blueprint import bp
from app.workflows.drafts import checks as draft_checks
from app.workflows.drafts import edits as draft_edits
from app.workflows.drafts import store as draft_store
from app.workflows.drafts import variables as draft_variables
from app.workflows.enums import NodeType
from app.workflows.forms import (
    PREFIX,
    AddEdgeForm,
    AddNodeForm,
    NodeForm,
    SaveForm,
    SettingsForm,
    TriggerForm,
    auto_name,
    form_class_for,
    node_kind,
)
from app.workflows.graph.svg import render_svg
from app.workflows.models import Workflow, WorkflowDraft

__all__ = ["bp"]

#: The page's panels, in page order; each partial is ``_<panel>.html`` with that id.
PANELS = ("banner", "graph", "node_form", "add_node", "edges", "settings", "problems", "save")
AFTER_NODE_CHANGE = ("banner", "graph", "node_form", "add_node", "edges", "problems", "save")
KIND_TITLES = {
    "trigger": "Trigger",
    "webhook": "Webhook",
    "jira": "Jira issue",
    "linear": "Linear issue",
    "condition": "Condition",
    "delay": "Delay",
}


# --- loading ------------------------------------------------------------------------


def _workflow(workflow_id: str, *, for_update: bool = False) -> Workflow:
    """The workflow, if the user may edit it: 404 if they cannot see it, 403 if only see."""
    try:
        workflow = service.get_workflow(current_user, workflow_id, for_update=for_update)
    except NotFound:
        abort(404)
    if not service.can_edit(current_user, workflow):
        try:
            service.require_edit(current_user, workflow)
        except ServiceError as error:
            reason = error.message
        page = render_template(
            "workflows/editor/forbidden.html",
            workflow=workflow,
            reason=reason,
            picture=render_svg(workflow.definition, title=workflow.name, compact=True),
        )
        abort(make_response(page, 403))
    return workflow


def _selected_from_request() -> str | None:
    """The selected node: ``?node=`` (or a plain form's ``selected``), else htmx's current URL."""
    explicit: str | None = request.args.get("node") or request.form.get("selected")
    if explicit:
        return explicit
    current: str | None = request.headers.get("HX-Current-URL")
    if current:
        found = parse_qs(urlsplit(current).query).get("node")
        if found:
            return found[0]
    return None


def _edit_url(workflow: Workflow, node_id: str | None) -> str:
    return url_for("workflows.edit", workflow_id=workflow.id, node=node_id or None)


# --- the page's context -----------------------------------------------------------------


def _nodes(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = definition.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def _label(node: Mapping[str, Any]) -> str:
    data = node.get("data")
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) and name.strip() else str(node.get("id"))


def _node_form(
    definition: Mapping[str, Any],
    node: Mapping[str, Any],
    checked: draft_checks.Checked,
    fill: list[draft_checks.FillItem],
) -> NodeForm | None:
    cls = form_class_for(node)
    if cls is None:
        return None
    form = cls.from_node(node, trigger=definition.get("trigger"))
    form.follow_settings()
    _stamp(form, definition, node)
    _decorate(form, checked, fill)
    return form


def _origin_text(definition: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The node as the form shows it (JSON), posted back so edits can be merged later."""
    origin: dict[str, Any] = {"data": node.get("data")}
    if node.get("type") == NodeType.TRIGGER.value:
        origin["trigger"] = definition.get("trigger")
    return json.dumps(origin, separators=(",", ":"), sort_keys=True)


def _stamp(form: Any, definition: Mapping[str, Any], node: Mapping[str, Any] | None) -> None:
    """Mark a form with the draft revision (and node content) it is rendered from."""
    form.form_revision = draft_store.revision_of(definition)
    if node is not None:
        form.form_origin = _origin_text(definition, node)


def _posted_json(name: str) -> Any:
    """A form field holding JSON the page rendered; None when it is not (or too deep)."""
    try:
        return json.loads(request.form.get(name, ""))
    except (ValueError, RecursionError):
        return None


def _posted_origin() -> dict[str, Any] | None:
    origin = _posted_json("origin")
    return origin if isinstance(origin, dict) and isinstance(origin.get("data"), dict) else None


def _unknown_base(value: Any) -> Any:
    """A base that equals nothing: without the form's origin every differing field conflicts."""
    if isinstance(value, Mapping):
        return {key: _unknown_base(item) for key, item in value.items()}
    return object()


def _shown(value: Any) -> str:
    if value is draft_edits.MISSING or value is None:
        return "(not set)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


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
    origin = _posted_origin()
    if origin is None:
        base = _unknown_base(theirs)
    else:
        base = cls.from_node(
            {"id": node.get("id"), "data": origin["data"]}, trigger=origin.get("trigger")
        ).values()
    merged, conflicts = draft_edits.merge_edits(base, yours, theirs)
    return merged, conflicts, True


def _decorate(
    form: NodeForm, checked: draft_checks.Checked, fill: list[draft_checks.FillItem]
) -> None:
    """Errors next to their fields, and the fields still to fill in highlighted."""
    for problem in checked.for_node(form.node_id):
        enabling = problem.warning and problem.code != "internal_host"
        suffix = " (needed before the workflow can be enabled)" if enabling else ""
        form.attach(problem.rel, problem.code, problem.message + suffix)
    for item in fill:
        if item.node_id == form.node_id:
            form.mark(item.rel, item.hint)


def _choose_node(definition: Mapping[str, Any], wanted: str | None) -> dict[str, Any] | None:
    nodes = _nodes(definition)
    for node in nodes:
        if node.get("id") == wanted:
            return node
    trigger = next((n for n in nodes if n.get("type") == NodeType.TRIGGER.value), None)
    return trigger or (nodes[0] if nodes else None)


def _is_condition(definition: Mapping[str, Any], node_id: str | None) -> bool:
    return any(
        n.get("id") == node_id and n.get("type") == NodeType.CONDITION.value
        for n in _nodes(definition)
    )


def _add_node_form(
    definition: Mapping[str, Any], selected: str | None, formdata: Any = None
) -> AddNodeForm:
    form = AddNodeForm(formdata=formdata)
    form.after.choices = [SelectChoice(str(n.get("id")), _label(n)) for n in _nodes(definition)]
    if formdata is None or not form.after.data:
        form.after.data = selected
    form.show_handle = _is_condition(definition, form.after.data)
    return form


def _add_edge_form(
    definition: Mapping[str, Any],
    selected: str | None,
    formdata: Any = None,
    *,
    choose_target: bool = False,
) -> AddEdgeForm:
    form = AddEdgeForm(formdata=formdata)
    nodes = _nodes(definition)
    form.source.choices = [SelectChoice(str(n.get("id")), _label(n)) for n in nodes]
    form.target.choices = [
        SelectChoice(str(n.get("id")), _label(n))
        for n in nodes
        if n.get("type") != NodeType.TRIGGER.value
    ]
    if formdata is None or not form.source.data:
        form.source.data = selected
    valid = draft_edits.edge_targets(definition, form.source.data or "")
    if (formdata is None or choose_target) and form.target.data not in valid:
        # Never offer an edge the draft would refuse (a self-loop, a loop, a duplicate).
        form.target.data = valid[0] if valid else None
    form.no_target = not valid
    if not valid and (formdata is None or choose_target):
        # Nothing valid to preselect: an empty choice, so the select shows no invalid edge.
        form.target.choices = [SelectChoice("", "(choose a node)"), *form.target.choices]
        form.target.data = ""
    form.show_handle = _is_condition(definition, form.source.data)
    return form


def _problem_links(
    workflow: Workflow, definition: Mapping[str, Any], checked: draft_checks.Checked
) -> list[dict[str, Any]]:
    by_id = {str(n.get("id")): n for n in _nodes(definition)}
    base = url_for("workflows.edit", workflow_id=workflow.id)
    links = []
    for problem in checked.problems:
        href: str | None = None
        where = "The workflow"
        if problem.section == "node" and problem.node_id in by_id:
            node = by_id[problem.node_id]
            cls = form_class_for(node)
            anchor = (cls.anchor_for(problem.rel, problem.code) if cls else None) or "node-panel"
            href = f"{base}?node={quote(problem.node_id)}#{anchor}"
            where = f"{KIND_TITLES.get(node_kind(node), 'Node')} “{_label(node)}”"
        elif problem.section == "edge" and problem.edge_index is not None:
            href = f"#edge-{problem.edge_index}"
            where = f"Edge {problem.edge_index + 1}"
        elif problem.section == "settings":
            href = "#settings-panel"
            where = "Workflow settings"
        links.append({"problem": problem, "href": href, "where": where})
    return links


def _fill_links(
    workflow: Workflow,
    definition: Mapping[str, Any],
    checked: draft_checks.Checked,
    fill: list[draft_checks.FillItem],
) -> list[dict[str, Any]]:
    """What the banner lists: placeholders left, then nodes the schema rejects."""
    by_id = {str(n.get("id")): n for n in _nodes(definition)}
    base = url_for("workflows.edit", workflow_id=workflow.id)
    links = []
    listed: set[str] = set()
    for item in fill:
        node = by_id.get(item.node_id or "")
        if node is not None:
            cls = form_class_for(node)
            anchor = (cls.anchor_for(item.rel) if cls else None) or "node-panel"
            href = f"{base}?node={quote(str(node['id']))}#{anchor}"
            where = f"{KIND_TITLES.get(node_kind(node), 'Node')} “{_label(node)}”"
            listed.add(str(node["id"]))
        else:
            href, where = "#settings-panel", "Workflow settings"
        links.append({"href": href, "where": where, "what": item.hint})
    for node_id, message in checked.node_messages().items():
        node = by_id.get(node_id)
        if node is None or node_id in listed:
            continue
        links.append(
            {
                "href": f"{base}?node={quote(node_id)}#node-panel",
                "where": f"{KIND_TITLES.get(node_kind(node), 'Node')} “{_label(node)}”",
                "what": message,
            }
        )
    return links


def _context(
    workflow: Workflow,
    draft: WorkflowDraft,
    *,
    selected: str | None,
    node_form: NodeForm | None = None,
    node_notes: list[str] | None = None,
    node_notice: str | None = None,
    settings_form: SettingsForm | None = None,
    add_node_form: AddNodeForm | None = None,
    add_edge_form: AddEdgeForm | None = None,
    save_form: SaveForm | None = None,
    save_error: str | None = None,
    conflict: str | None = None,
    add_row: str | None = None,
    enable_error: ServiceError | None = None,
    confirm_remove: bool = False,
    confirm_discard: bool = False,
    focus_node: bool = False,
) -> dict[str, Any]:
    definition = draft.definition
    pending = draft_store.pending_names(draft)
    secret_names = sorted({*secret_store.secret_names(workflow), *pending})
    checked = draft_checks.check(
        definition, secret_names, AllowList.from_config(current_app.config)
    )
    fill = draft_checks.must_fill(definition)
    node = _choose_node(definition, selected)
    node_id = str(node["id"]) if node else None
    if node is not None and node_form is None:
        node_form = _node_form(definition, node, checked, fill)
        if node_form is not None and add_row in node_form._fields:
            node_form[add_row].append_entry()
            first_input = next(iter(node_form[add_row].entries[-1].form))
            first_input.render_kw = {"autofocus": True}
    if node_form is not None and focus_node:
        # A node was added: the keyboard continues in its form (htmx focuses autofocus).
        node_form.name.render_kw = {**(node_form.name.render_kw or {}), "autofocus": True}
    if node_form is not None and node_notes:
        node_form.node_errors = [*node_notes, *node_form.node_errors]
    if node_form is not None and node_notice:
        node_form.notice = node_notice
    variables = (
        draft_variables.variables_for(definition, node_id, secret_names) if node_id else None
    )

    if settings_form is None:
        settings_form = SettingsForm.from_definition(definition)
        _stamp_settings(settings_form, definition)
        for problem in checked.settings:
            settings_form.attach(problem.rel, problem.message)
        for item in fill:
            found = settings_form.field_for(item.rel) if item.section == "settings" else None
            if found is not None:
                found.must_fill = item.hint

    edit_base = url_for("workflows.edit", workflow_id=workflow.id)

    def href(nid: str) -> str:
        return f"{edit_base}?node={quote(nid)}"

    def attrs(nid: str) -> Mapping[str, str]:
        return {"hx-get": href(nid), "hx-swap": "none", "hx-push-url": "true"}

    by_id = {str(n.get("id")): n for n in _nodes(definition)}
    edges = []
    raw_edges = definition.get("edges")
    for index, edge in enumerate(raw_edges if isinstance(raw_edges, list) else []):
        if not isinstance(edge, dict):
            continue
        source, target = by_id.get(str(edge.get("source"))), by_id.get(str(edge.get("target")))
        edges.append(
            {
                "index": index,
                "id": edge.get("id"),
                "source": _label(source) if source else str(edge.get("source")),
                "target": _label(target) if target else str(edge.get("target")),
                "handle": edge.get("sourceHandle"),
                "problems": checked.for_edge(index),
            }
        )
    stale = draft_store.is_stale(draft, workflow)
    return {
        "workflow": workflow,
        "draft": draft,
        "definition": definition,
        "stored": draft_store.is_stored(draft),
        "changed": draft_store.has_changes(draft, workflow)
        or (stale and draft_store.is_stored(draft)),
        "stale": stale,
        "differences": (
            draft_store.differences(definition, workflow.definition, workflow.version)
            if stale
            else []
        ),
        "conflict": conflict,
        "checked": checked,
        "problem_links": _problem_links(workflow, definition, checked),
        "fill_links": _fill_links(workflow, definition, checked, fill),
        "selected": node_id,
        "node": node,
        "node_kind": node_kind(node) if node else None,
        "kind_titles": KIND_TITLES,
        "node_form": node_form,
        "variables": variables,
        "secret_names": secret_names,
        "pending_secrets": pending,
        "missing_secrets": draft_checks.missing_secrets(definition, secret_names),
        "enable_error": enable_error,
        "confirm_remove": confirm_remove,
        "confirm_discard": confirm_discard,
        "picture": render_svg(
            definition,
            selected=node_id,
            node_href=href,
            node_attrs=attrs,
            problems=checked.node_messages(),
            title=f"{definition.get('name') or workflow.name} (draft)",
            dom_id="editor-graph",
        ),
        "edges": edges,
        "settings_form": settings_form,
        "add_node_form": add_node_form or _add_node_form(definition, node_id),
        "add_edge_form": add_edge_form or _add_edge_form(definition, node_id),
        "save_form": save_form or SaveForm(),
        "save_error": save_error,
        "next_version": workflow.version + 1,
        "revision": draft_store.revision_of(definition),
        "node_origin": _origin_text(definition, node) if node is not None else "",
    }


def _respond(
    workflow: Workflow,
    draft: WorkflowDraft,
    *,
    panels: tuple[str, ...] = PANELS,
    status: int | Callable[[dict[str, Any]], int] = 200,
    selected: str | None = None,
    push: bool = False,
    **forms: Any,
) -> Response:
    """The whole page, or for htmx the named panels as out-of-band swaps."""
    context = _context(workflow, draft, selected=selected, **forms)
    if callable(status):
        status = status(context)
    if request.htmx:
        response = make_response(
            render_template("workflows/editor/_update.html", panels=panels, oob=True, **context),
            status,
        )
        header = "HX-Push-Url" if push else "HX-Replace-Url"
        response.headers[header] = _edit_url(workflow, context["selected"])
        return response
    return make_response(render_template("workflows/editor/edit.html", **context), status)


def _committed(response: Response) -> Response:
    """Commit once the response is built: a page or fragment that fails to render
    then answers 500 having changed nothing (the error handler rolls back)."""
    db.session.commit()
    return response


def _done(workflow: Workflow, selected: str | None) -> Response:
    """After a plain (non-htmx) form post: back to the page."""
    return redirect(_edit_url(workflow, selected), code=303)


def _reload(workflow: Workflow, selected: str | None) -> Response:
    """Everything changed (saved, discarded): htmx reloads the page, a plain form redirects."""
    return see_other(_edit_url(workflow, selected))


def _fresh_state(workflow_id: str) -> tuple[Workflow, WorkflowDraft]:
    """After a rollback: the workflow and draft as stored."""
    workflow = _workflow(workflow_id)
    return workflow, draft_store.current_draft(current_user, workflow)


# --- the page -------------------------------------------------------------------------


@bp.get("/<workflow_id>/edit")
@login_required
def edit(workflow_id: str) -> Response:
    """The editor page; with htmx, selecting a node (``?node=``) swaps its form in."""
    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    selected = request.args.get("node")
    if request.htmx:
        response = _respond(
            workflow,
            draft,
            selected=selected,
            panels=("graph", "node_form", "add_node", "edges"),
            push=True,
        )
    else:
        response = _respond(workflow, draft, selected=selected)
    db.session.commit()  # an unchanged draft of an older version may have been dropped
    return response


@bp.get("/<workflow_id>/edit/previous-steps")
@login_required
def edit_previous_steps(workflow_id: str) -> str:
    """The steps whose results ``incident.previous`` offers: loaded when the variable list
    opens, so the editor page itself costs no query for them."""
    workflow = _workflow(workflow_id)
    return render_template(
        "workflows/editor/_previous_steps.html",
        sources=draft_variables.previous_sources(workflow),
        expression=draft_variables.Variables.previous_expression,
    )


@bp.get("/<workflow_id>/edit/add-node-form")
@login_required
def edit_add_node_form(workflow_id: str) -> str:
    """The "Add node" form again, offering the branch when the chosen node is a condition."""
    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    form = _add_node_form(draft.definition, None, request.args)
    return render_template(
        "workflows/editor/_add_node.html", workflow=workflow, add_node_form=form, oob=False
    )


@bp.get("/<workflow_id>/edit/add-edge-form")
@login_required
def edit_add_edge_form(workflow_id: str) -> str:
    """The "Add edge" form again, offering the branch when the source is a condition."""
    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    form = _add_edge_form(draft.definition, None, request.args, choose_target=True)
    return render_template(
        "workflows/editor/_add_edge.html", workflow=workflow, add_edge_form=form, oob=False
    )


# --- nodes ----------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/node")
@login_required
def edit_node(workflow_id: str) -> Response:
    """Apply a node's form to the draft. ``op`` may also add or remove a row, or just
    re-render the fields for a new auth or trigger type (the draft is updated either way)."""
    workflow = _workflow(workflow_id)
    node_id = request.form.get("node_id", "")
    op = request.form.get("op", "apply")
    draft = draft_store.current_draft(current_user, workflow)
    node = next((n for n in _nodes(draft.definition) if n.get("id") == node_id), None)
    cls = form_class_for(node) if node else None
    if node is None or cls is None:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
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
        return _respond(
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
        workflow, draft = _fresh_state(workflow_id)
        current = next((n for n in _nodes(draft.definition) if n.get("id") == node_id), node)
        _stamp(form, draft.definition, current)
        form.conflicts = [
            (cls.label_for(c.path), _shown(c.theirs), _shown(c.yours)) for c in conflicts
        ]
        return _respond(
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
        workflow, draft = _fresh_state(workflow_id)
        form.form_revision = request.form.get("revision", "")
        form.form_origin = request.form.get("origin", "")
        return _respond(
            workflow, draft, panels=("node_form",), status=422, selected=node_id, node_form=form
        )
    if not request.htmx:
        return _committed(_done(workflow, node_id))
    return _committed(
        _respond(
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
    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    node = next((n for n in _nodes(draft.definition) if n.get("id") == node_id), None)
    cls = form_class_for(node) if node else None
    if node is None or cls is None:
        return _respond(
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
    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    node = next(n for n in _nodes(draft.definition) if n.get("id") == node_id)
    origin = _posted_origin()
    shown = (
        {"id": node_id, "data": origin["data"]} if origin is not None else node,
        origin.get("trigger") if origin is not None else draft.definition.get("trigger"),
    )
    form = cls(
        formdata=request.form, data=cls.initial(_mapping(shown[0].get("data")), trigger=shown[1])
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
            for row in cls.initial(_mapping(shown[0].get("data")), trigger=shown[1]).get(name, []):
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
    return _respond(workflow, draft, panels=("node_form",), selected=node_id, node_form=form)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


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
    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    node_id = request.form.get("node_id", "")
    field_name = request.headers.get("HX-Trigger-Name") or ""
    text: str = request.form.get(field_name, "") if field_name.startswith("node-") else ""
    node = next((n for n in _nodes(draft.definition) if n.get("id") == node_id), None)
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
    workflow = _workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    form = _add_node_form(draft.definition, None, request.form)
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
    if not request.htmx:
        return _committed(_done(workflow, node_id))
    return _committed(
        _respond(
            workflow, draft, panels=AFTER_NODE_CHANGE, selected=node_id, push=True, focus_node=True
        )
    )


@bp.post("/<workflow_id>/edit/nodes/remove")
@login_required
def edit_remove_node(workflow_id: str) -> Response:
    """Remove a node and the edges that touch it."""
    workflow = _workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    node_id = request.form.get("node_id", "")
    changed = _changed_since_rendered(draft.definition, node_id)
    if changed:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
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
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow, draft, panels=("node_form",), selected=node_id, confirm_remove=True
        )
    try:
        draft_edits.remove_node(draft, node_id)
    except InvalidInput as error:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow,
            draft,
            panels=("node_form",),
            status=422,
            selected=node_id,
            node_notes=[error.message],
        )
    if not request.htmx:
        return _committed(_done(workflow, None))
    return _committed(_respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=None, push=True))


def _changed_since_rendered(definition: Mapping[str, Any], node_id: str) -> str:
    """For a stale "remove": the fields of the node changed since the form was rendered."""
    if request.form.get("revision") == draft_store.revision_of(definition):
        return ""
    node = next((n for n in _nodes(definition) if n.get("id") == node_id), None)
    cls = form_class_for(node) if node is not None else None
    if node is None or cls is None:
        return ""  # remove_node reports a node that is gone
    theirs = cls.from_node(node, trigger=definition.get("trigger")).values()
    origin = _posted_origin()
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
    workflow, draft = _fresh_state(workflow_id)
    return _respond(
        workflow, draft, panels=(panel,), status=422, selected=_selected_from_request(), **form
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
    workflow = _workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    form = _add_edge_form(draft.definition, None, request.form)
    try:
        draft_edits.add_edge(
            draft,
            form.source.data or "",
            form.target.data or "",
            form.handle.data if form.show_handle else None,
        )
    except InvalidInput as error:
        return _add_refused(workflow_id, error, panel="edges", add_edge_form=form)
    selected = _selected_from_request()
    if not request.htmx:
        return _committed(_done(workflow, selected))
    return _committed(_respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=selected))


@bp.post("/<workflow_id>/edit/edges/remove")
@login_required
def edit_remove_edge(workflow_id: str) -> Response:
    workflow = _workflow(workflow_id)
    draft = draft_store.load_draft(current_user, workflow)
    try:
        draft_edits.remove_edge(draft, request.form.get("edge_id", ""))
    except InvalidInput as error:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        form = _add_edge_form(draft.definition, _selected_from_request())
        form.form_problems = [error.message]
        return _respond(
            workflow,
            draft,
            panels=("edges",),
            status=409,
            selected=_selected_from_request(),
            add_edge_form=form,
        )
    selected = _selected_from_request()
    if not request.htmx:
        return _committed(_done(workflow, selected))
    return _committed(_respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=selected))


# --- settings ---------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/settings")
@login_required
def edit_settings(workflow_id: str) -> Response:
    """The workflow's name, description, time limit and runs per incident."""
    workflow = _workflow(workflow_id)
    form = SettingsForm(formdata=request.form)
    if form.text_problems:  # shown at their fields; the draft is left as it was
        draft = draft_store.current_draft(current_user, workflow)
        return _respond(
            workflow,
            draft,
            panels=("settings",),
            status=422,
            selected=_selected_from_request(),
            settings_form=form,
        )
    draft = draft_store.load_draft(current_user, workflow)
    selected = _selected_from_request()
    yours = form.as_dict()
    values = yours
    if request.form.get("revision") != draft_store.revision_of(draft.definition):
        theirs = SettingsForm.from_definition(draft.definition).as_dict()
        origin = _posted_json("origin")
        if isinstance(origin, dict):
            base: Any = SettingsForm(data=origin).as_dict()
        else:
            base = _unknown_base(theirs)
        values, conflicts = draft_edits.merge_edits(base, yours, theirs)
        if conflicts:
            db.session.rollback()
            workflow, draft = _fresh_state(workflow_id)
            _stamp_settings(form, draft.definition)
            form.conflicts = [
                (
                    SettingsForm.LABELS.get(str(c.path[0]), "Settings"),
                    _shown(c.theirs),
                    _shown(c.yours),
                )
                for c in conflicts
            ]
            return _respond(
                workflow,
                draft,
                panels=("settings",),
                status=409,
                selected=selected,
                settings_form=form,
            )
    merged = SettingsForm(data=values)
    draft_edits.update_settings(
        draft,
        name=values["name"],
        description=values["description"],
        timeout=values["timeout"],
        run_limit=merged.run_limit_settings(),
    )
    if not request.htmx:
        return _committed(_done(workflow, selected))
    return _committed(
        _respond(
            workflow,
            draft,
            panels=("banner", "graph", "settings", "problems", "save"),
            status=lambda context: 422 if context["checked"].settings else 200,
            selected=selected,
        )
    )


def _stamp_settings(form: SettingsForm, definition: Mapping[str, Any]) -> None:
    form.form_revision = draft_store.revision_of(definition)
    form.form_origin = json.dumps(
        SettingsForm.from_definition(definition).as_dict(), separators=(",", ":")
    )


# --- saving ------------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/save")
@login_required
def edit_save(workflow_id: str) -> Response:
    """Save the draft as the next version; refused (draft kept) if someone saved since."""
    workflow = _workflow(workflow_id, for_update=True)
    draft = draft_store.current_draft(current_user, workflow)
    form = SaveForm(formdata=request.form)
    selected = _selected_from_request()
    if form.text_problems:  # shown at the field; nothing is saved
        return _respond(
            workflow, draft, panels=("save",), status=422, selected=selected, save_form=form
        )
    try:
        version = draft_store.save(current_user, workflow, draft, form.change_note.data)
    except Conflict as error:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow,
            draft,
            panels=("banner", "save"),
            status=409,
            selected=selected,
            save_form=form,
            conflict=error.message,
        )
    except InvalidInput as error:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow,
            draft,
            panels=("banner", "graph", "node_form", "problems", "save"),
            status=422,
            selected=selected,
            save_form=form,
            save_error=error.message,
        )
    response = _reload(workflow, selected)
    db.session.commit()
    flash(f"Saved as v{version.version}.")
    return response


@bp.get("/<workflow_id>/edit/test")
@login_required
def edit_test(workflow_id: str) -> Response:
    """ "Test this draft": a dry run of the unsaved draft against an incident chosen with
    the search picker (``q`` searches, ``incident`` runs). A GET: nothing is sent, stored
    or changed."""
    from pydantic import ValidationError

    from app.engine.dry_run import dry_run
    from app.incidents import service as incidents
    from app.workflows.enums import ScopeType

    workflow = _workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    query = (request.args.get("q") or "").strip()[:200]
    incident_id = request.args.get("incident") or ""
    found = db.session.scalars(
        incidents.search_incidents(current_user, q=query or None).limit(10)
    ).all()
    incident = None
    steps = None
    message = None
    status = 200
    if incident_id and not request.args.get("search"):
        try:
            incident = incidents.get_incident(current_user, incident_id)
        except NotFound:
            message, status = "That incident does not exist or is not yours to see.", 404
    if incident is not None:
        if workflow.scope_type == ScopeType.TEAM and workflow.team_id != incident.team_id:
            message = "This workflow belongs to another team than the incident; it would not run."
            status = 422
        else:
            try:
                steps = dry_run(
                    workflow,
                    incident,
                    draft=draft.definition,
                    pending_secrets=draft_store.pending_names(draft),
                )
            except ValidationError:
                message = (
                    "The draft has problems (see the readiness checklist); fix them to test it."
                )
                status = 422
    context = {
        "workflow": workflow,
        "query": query,
        "found": found,
        "incident": incident,
        "steps": steps,
        "test_message": message,
    }
    if request.htmx:
        target = request.headers.get("HX-Target") or ""
        template = (
            "_test_incidents.html" if target == "draft-test-incidents" else "_test_result.html"
        )
        return make_response(render_template(f"workflows/editor/{template}", **context), status)
    return make_response(render_template("workflows/editor/test.html", **context), status)


@bp.post("/<workflow_id>/edit/enable")
@login_required
def edit_enable(workflow_id: str) -> Response:
    """The editor header's switch: enable or disable the saved version. A refusal lists
    every blocker at once in the readiness checklist."""
    workflow = _workflow(workflow_id, for_update=True)
    wanted = request.form.get("enabled") == "1"
    selected = _selected_from_request()
    try:
        service.set_enabled(current_user, workflow, wanted)
    except ServiceError as error:
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow,
            draft,
            panels=("problems",),
            status=error.status,
            selected=selected,
            enable_error=error,
        )
    response = _reload(workflow, selected)
    db.session.commit()
    flash(f"{workflow.name} is {'enabled' if wanted else 'disabled'}.")
    return response


@bp.post("/<workflow_id>/edit/discard")
@login_required
def edit_discard(workflow_id: str) -> Response:
    """Throw the draft away and start again from the current version."""
    workflow = _workflow(workflow_id)
    draft = draft_store.find_draft(current_user, workflow, for_update=True)
    if draft is not None and request.form.get("confirm") != "yes":
        db.session.rollback()
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow,
            draft,
            panels=("banner",),
            selected=_selected_from_request(),
            confirm_discard=True,
        )
    if draft is not None:
        draft_store.discard(draft)
    response = _reload(workflow, _selected_from_request())
    db.session.commit()
    flash(f"Your changes were discarded; this is v{workflow.version}.")
    return response


@bp.post("/<workflow_id>/edit/rebase")
@login_required
def edit_rebase(workflow_id: str) -> Response:
    """Keep the draft, based on the current version: saving it then replaces that version."""
    workflow = _workflow(workflow_id)
    draft = draft_store.find_draft(current_user, workflow, for_update=True)
    if draft is not None and draft_store.is_stale(draft, workflow):
        draft_store.rebase(draft, workflow)
        flash(
            f"Your draft is now based on v{workflow.version}. Saving it replaces the changes "
            f"made in v{workflow.version} with yours."
        )
    return _committed(_reload(workflow, _selected_from_request()))
