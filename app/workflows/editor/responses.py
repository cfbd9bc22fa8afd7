"""What every editor route shares: the workflow if the user may edit it, the selected
node, reading the forms' posted state, and the answers (the page, or for htmx the changed
panels as out-of-band swaps; a 303 back after a plain form).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import abort, make_response, redirect, render_template, url_for
from flask_login import current_user
from htmx_flask import request
from werkzeug.wrappers import Response

from app.errors import NotFound, ServiceError
from app.extensions import db
from app.htmx import is_htmx, see_other
from app.workflows import service
from app.workflows.drafts import edits as draft_edits
from app.workflows.drafts import store as draft_store
from app.workflows.editor.view import EditorView
from app.workflows.graph.svg import render_svg
from app.workflows.models import Workflow, WorkflowDraft

#: The page's panels, in page order; each partial is ``_<panel>.html`` with that id.
PANELS = ("banner", "graph", "node_form", "add_node", "edges", "settings", "problems", "save")
AFTER_NODE_CHANGE = ("banner", "graph", "node_form", "add_node", "edges", "problems", "save")


# --- loading ------------------------------------------------------------------------


def editable_workflow(workflow_id: str, *, for_update: bool = False) -> Workflow:
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


def selected_from_request() -> str | None:
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


def edit_url(workflow: Workflow, node_id: str | None) -> str:
    return url_for("workflows.edit", workflow_id=workflow.id, node=node_id or None)


# --- reading what a form posted ------------------------------------------------------------


def posted_json(name: str) -> Any:
    """A form field holding JSON the page rendered; None when it is not (or too deep)."""
    try:
        return json.loads(request.form.get(name, ""))
    except (ValueError, RecursionError):
        return None


def posted_origin() -> dict[str, Any] | None:
    origin = posted_json("origin")
    return origin if isinstance(origin, dict) and isinstance(origin.get("data"), dict) else None


def unknown_base(value: Any) -> Any:
    """A base that equals nothing: without the form's origin every differing field conflicts."""
    if isinstance(value, Mapping):
        return {key: unknown_base(item) for key, item in value.items()}
    return object()


def shown_value(value: Any) -> str:
    if value is draft_edits.MISSING or value is None:
        return "(not set)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


# --- answers -----------------------------------------------------------------------------------


def respond(
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
    context = EditorView(workflow, draft, selected, **forms).context()
    if callable(status):
        status = status(context)
    if is_htmx():
        response = make_response(
            render_template("workflows/editor/_update.html", panels=panels, oob=True, **context),
            status,
        )
        header = "HX-Push-Url" if push else "HX-Replace-Url"
        response.headers[header] = edit_url(workflow, context["selected"])
        return response
    return make_response(render_template("workflows/editor/edit.html", **context), status)


def committed(response: Response) -> Response:
    """Commit once the response is built: a page or fragment that fails to render
    then answers 500 having changed nothing (the error handler rolls back)."""
    db.session.commit()
    return response


def done(workflow: Workflow, selected: str | None) -> Response:
    """After a plain (non-htmx) form post: back to the page."""
    return redirect(edit_url(workflow, selected), code=303)


def reload(workflow: Workflow, selected: str | None) -> Response:
    """Everything changed (saved, discarded): htmx reloads the page, a plain form redirects."""
    return see_other(edit_url(workflow, selected))


def fresh_state(workflow_id: str) -> tuple[Workflow, WorkflowDraft]:
    """After a rollback: the workflow and draft as stored."""
    workflow = editable_workflow(workflow_id)
    return workflow, draft_store.current_draft(current_user, workflow)
