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

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from app.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.extensions import db
from app.workflows import drafts, graph, service
from app.workflows import secrets as secret_store
from app.workflows.blueprint import bp
from app.workflows.enums import NodeType
from app.workflows.forms import (
    AddEdgeForm,
    AddNodeForm,
    NodeForm,
    SaveForm,
    SettingsForm,
    TriggerForm,
    form_class_for,
    node_kind,
)
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
            picture=graph.render_svg(workflow.definition, title=workflow.name, compact=True),
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
    checked: drafts.Checked,
    fill: list[drafts.FillItem],
) -> NodeForm | None:
    cls = form_class_for(node)
    if cls is None:
        return None
    form = cls.from_node(node, trigger=definition.get("trigger"))
    _decorate(form, checked, fill)
    return form


def _decorate(form: NodeForm, checked: drafts.Checked, fill: list[drafts.FillItem]) -> None:
    """Errors next to their fields, and the fields still to fill in highlighted."""
    for problem in checked.for_node(form.node_id):
        suffix = " (needed before the workflow can be enabled)" if problem.warning else ""
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
    definition: Mapping[str, Any], selected: str | None, formdata: Any = None
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
    form.show_handle = _is_condition(definition, form.source.data)
    return form


def _problem_links(
    workflow: Workflow, definition: Mapping[str, Any], checked: drafts.Checked
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
    checked: drafts.Checked,
    fill: list[drafts.FillItem],
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
    settings_form: SettingsForm | None = None,
    add_node_form: AddNodeForm | None = None,
    add_edge_form: AddEdgeForm | None = None,
    save_form: SaveForm | None = None,
    save_error: str | None = None,
    conflict: str | None = None,
    add_row: str | None = None,
) -> dict[str, Any]:
    definition = draft.definition
    secret_names = secret_store.secret_names(workflow)
    checked = drafts.check(definition, secret_names)
    fill = drafts.must_fill(definition)
    node = _choose_node(definition, selected)
    node_id = str(node["id"]) if node else None
    if node is not None and node_form is None:
        node_form = _node_form(definition, node, checked, fill)
        if node_form is not None and add_row in node_form._fields:
            node_form[add_row].append_entry()
            first_input = next(iter(node_form[add_row].entries[-1].form))
            first_input.render_kw = {"autofocus": True}
    if node_form is not None and node_notes:
        node_form.node_errors = [*node_notes, *node_form.node_errors]
    variables = drafts.variables_for(definition, node_id, secret_names) if node_id else None

    if settings_form is None:
        settings_form = SettingsForm.from_definition(definition)
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
    stale = drafts.is_stale(draft, workflow)
    return {
        "workflow": workflow,
        "draft": draft,
        "definition": definition,
        "stored": drafts.is_stored(draft),
        "changed": drafts.has_changes(draft, workflow) or (stale and drafts.is_stored(draft)),
        "stale": stale,
        "differences": (
            drafts.differences(definition, workflow.definition, workflow.version) if stale else []
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
        "picture": graph.render_svg(
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


def _done(workflow: Workflow, selected: str | None) -> Response:
    """After a plain (non-htmx) form post: back to the page."""
    return redirect(_edit_url(workflow, selected), code=303)


def _reload(workflow: Workflow, selected: str | None) -> Response:
    """Everything changed (saved, discarded): htmx reloads the page, a plain form redirects."""
    url = _edit_url(workflow, selected)
    if request.htmx:
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def _fresh_state(workflow_id: str) -> tuple[Workflow, WorkflowDraft]:
    """After a rollback: the workflow and draft as stored."""
    workflow = _workflow(workflow_id)
    return workflow, drafts.current_draft(current_user, workflow)


# --- the page -------------------------------------------------------------------------


@bp.get("/<workflow_id>/edit")
@login_required
def edit(workflow_id: str) -> Response:
    """The editor page; with htmx, selecting a node (``?node=``) swaps its form in."""
    workflow = _workflow(workflow_id)
    draft = drafts.current_draft(current_user, workflow)
    db.session.commit()  # an unchanged draft of an older version may have been dropped
    selected = request.args.get("node")
    if request.htmx:
        return _respond(
            workflow,
            draft,
            selected=selected,
            panels=("graph", "node_form", "add_node", "edges"),
            push=True,
        )
    return _respond(workflow, draft, selected=selected)


@bp.get("/<workflow_id>/edit/add-node-form")
@login_required
def edit_add_node_form(workflow_id: str) -> str:
    """The "Add node" form again, offering the branch when the chosen node is a condition."""
    workflow = _workflow(workflow_id)
    draft = drafts.current_draft(current_user, workflow)
    form = _add_node_form(draft.definition, None, request.args)
    return render_template(
        "workflows/editor/_add_node.html", workflow=workflow, add_node_form=form, oob=False
    )


@bp.get("/<workflow_id>/edit/add-edge-form")
@login_required
def edit_add_edge_form(workflow_id: str) -> str:
    """The "Add edge" form again, offering the branch when the source is a condition."""
    workflow = _workflow(workflow_id)
    draft = drafts.current_draft(current_user, workflow)
    form = _add_edge_form(draft.definition, None, request.args)
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
    draft = drafts.load_draft(current_user, workflow)
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
    form = cls.from_formdata(request.form, node_id)
    add_row = None
    if op.startswith("remove:"):
        _remove_row(form, op)
    elif op.startswith("add:"):
        add_row = op.removeprefix("add:")
    data = form.to_node_data()
    notes = list(form.node_errors)
    try:
        drafts.store_credentials(workflow, form.credentials, actor=current_user)
        if isinstance(form, TriggerForm):
            drafts.update_trigger(draft, node_id, data, form.to_trigger())
        else:
            drafts.update_node(draft, node_id, data)
    except InvalidInput as error:
        db.session.rollback()
        for problem in error.problems:
            form.attach(drafts.parse_loc(problem.loc), "", problem.message)
        workflow, draft = _fresh_state(workflow_id)
        return _respond(
            workflow, draft, panels=("node_form",), status=422, selected=node_id, node_form=form
        )
    db.session.commit()
    if not request.htmx:
        return _done(workflow, node_id)
    return _respond(
        workflow,
        draft,
        panels=AFTER_NODE_CHANGE,
        status=lambda context: 422 if _node_has_errors(context) else 200,
        selected=node_id,
        node_notes=notes,
        add_row=add_row,
    )


def _node_has_errors(context: dict[str, Any]) -> bool:
    form = context["node_form"]
    checked: drafts.Checked = context["checked"]
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
    draft = drafts.current_draft(current_user, workflow)
    node_id = request.form.get("node_id", "")
    field_name = request.headers.get("HX-Trigger-Name") or ""
    text: str = request.form.get(field_name, "") if field_name.startswith("node-") else ""
    node = next((n for n in _nodes(draft.definition) if n.get("id") == node_id), None)
    messages: list[tuple[str, bool]] = []
    if node is not None and text:
        variables = drafts.variables_for(
            draft.definition, node_id, secret_store.secret_names(workflow)
        )
        messages = drafts.unknown_references(text, variables)
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
    draft = drafts.load_draft(current_user, workflow)
    form = _add_node_form(draft.definition, None, request.form)
    try:
        node_id = drafts.add_node(
            draft,
            form.kind.data or "",
            after=form.after.data or "",
            handle=form.handle.data if form.show_handle else None,
        )
    except InvalidInput as error:
        return _add_refused(workflow_id, error, panel="add_node", add_node_form=form)
    db.session.commit()
    if not request.htmx:
        return _done(workflow, node_id)
    return _respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=node_id, push=True)


@bp.post("/<workflow_id>/edit/nodes/remove")
@login_required
def edit_remove_node(workflow_id: str) -> Response:
    """Remove a node and the edges that touch it."""
    workflow = _workflow(workflow_id)
    draft = drafts.load_draft(current_user, workflow)
    node_id = request.form.get("node_id", "")
    try:
        drafts.remove_node(draft, node_id)
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
    db.session.commit()
    if not request.htmx:
        return _done(workflow, None)
    return _respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=None, push=True)


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
    draft = drafts.load_draft(current_user, workflow)
    form = _add_edge_form(draft.definition, None, request.form)
    try:
        drafts.add_edge(
            draft,
            form.source.data or "",
            form.target.data or "",
            form.handle.data if form.show_handle else None,
        )
    except InvalidInput as error:
        return _add_refused(workflow_id, error, panel="edges", add_edge_form=form)
    db.session.commit()
    if not request.htmx:
        return _done(workflow, _selected_from_request())
    return _respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=_selected_from_request())


@bp.post("/<workflow_id>/edit/edges/remove")
@login_required
def edit_remove_edge(workflow_id: str) -> Response:
    workflow = _workflow(workflow_id)
    draft = drafts.load_draft(current_user, workflow)
    try:
        drafts.remove_edge(draft, request.form.get("edge_id", ""))
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
    db.session.commit()
    if not request.htmx:
        return _done(workflow, _selected_from_request())
    return _respond(workflow, draft, panels=AFTER_NODE_CHANGE, selected=_selected_from_request())


# --- settings ---------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/settings")
@login_required
def edit_settings(workflow_id: str) -> Response:
    """The workflow's name, description, time limit and runs per incident."""
    workflow = _workflow(workflow_id)
    draft = drafts.load_draft(current_user, workflow)
    form = SettingsForm(formdata=request.form)
    name, description, timeout = form.values()
    drafts.update_settings(
        draft,
        name=name,
        description=description,
        timeout=timeout,
        run_limit=form.run_limit_settings(),
    )
    db.session.commit()
    selected = _selected_from_request()
    if not request.htmx:
        return _done(workflow, selected)
    return _respond(
        workflow,
        draft,
        panels=("banner", "graph", "settings", "problems", "save"),
        status=lambda context: 422 if context["checked"].settings else 200,
        selected=selected,
    )


# --- saving ------------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/save")
@login_required
def edit_save(workflow_id: str) -> Response:
    """Save the draft as the next version; refused (draft kept) if someone saved since."""
    workflow = _workflow(workflow_id, for_update=True)
    draft = drafts.current_draft(current_user, workflow)
    form = SaveForm(formdata=request.form)
    selected = _selected_from_request()
    try:
        version = drafts.save(current_user, workflow, draft, form.change_note.data)
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
    db.session.commit()
    flash(f"Saved as v{version.version}.")
    return _reload(workflow, selected)


@bp.post("/<workflow_id>/edit/discard")
@login_required
def edit_discard(workflow_id: str) -> Response:
    """Throw the draft away and start again from the current version."""
    workflow = _workflow(workflow_id)
    draft = drafts.find_draft(current_user, workflow, for_update=True)
    if draft is not None:
        drafts.discard(draft)
    db.session.commit()
    flash(f"Your changes were discarded; this is v{workflow.version}.")
    return _reload(workflow, _selected_from_request())


@bp.post("/<workflow_id>/edit/rebase")
@login_required
def edit_rebase(workflow_id: str) -> Response:
    """Keep the draft, based on the current version: saving it then replaces that version."""
    workflow = _workflow(workflow_id)
    draft = drafts.find_draft(current_user, workflow, for_update=True)
    if draft is not None and drafts.is_stale(draft, workflow):
        drafts.rebase(draft, workflow)
        flash(
            f"Your draft is now based on v{workflow.version}. Saving it replaces the changes "
            f"made in v{workflow.version} with yours."
        )
    db.session.commit()
    return _reload(workflow, _selected_from_request())
