"""The editor page and its whole-workflow actions: the page itself (and the fragments it
loads), the workflow's settings, save as a new version, "Test this draft", enable or
disable, discard the draft, rebase it. Node and edge changes are in ``nodes.py``.
"""

from __future__ import annotations

from typing import Any

from flask import flash, make_response, render_template
from flask_login import current_user, login_required
from htmx_flask import request
from werkzeug.wrappers import Response

from app.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.extensions import db
from app.htmx import is_htmx
from app.workflows import service
from app.workflows.blueprint import bp
from app.workflows.drafts import edits as draft_edits
from app.workflows.drafts import store as draft_store
from app.workflows.drafts import variables as draft_variables
from app.workflows.editor.responses import (
    committed,
    done,
    editable_workflow,
    fresh_state,
    posted_json,
    reload,
    respond,
    selected_from_request,
    shown_value,
    unknown_base,
)
from app.workflows.editor.view import make_add_edge_form, make_add_node_form, stamp_settings
from app.workflows.forms.panels import SaveForm, SettingsForm

# --- the page -------------------------------------------------------------------------


@bp.get("/<workflow_id>/edit")
@login_required
def edit(workflow_id: str) -> Response:
    """The editor page; with htmx, selecting a node (``?node=``) swaps its form in."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    selected = request.args.get("node")
    if is_htmx():
        response = respond(
            workflow,
            draft,
            selected=selected,
            panels=("graph", "node_form", "add_node", "edges"),
            push=True,
        )
    else:
        response = respond(workflow, draft, selected=selected)
    db.session.commit()  # an unchanged draft of an older version may have been dropped
    return response


@bp.get("/<workflow_id>/edit/previous-steps")
@login_required
def edit_previous_steps(workflow_id: str) -> str:
    """The steps whose results ``incident.previous`` offers: loaded when the variable list
    opens, so the editor page itself costs no query for them."""
    workflow = editable_workflow(workflow_id)
    return render_template(
        "workflows/editor/_previous_steps.html",
        sources=draft_variables.previous_sources(workflow),
        expression=draft_variables.Variables.previous_expression,
    )


@bp.get("/<workflow_id>/edit/add-node-form")
@login_required
def edit_add_node_form(workflow_id: str) -> str:
    """The "Add node" form again, offering the branch when the chosen node is a condition."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    form = make_add_node_form(draft.definition, None, request.args)
    return render_template(
        "workflows/editor/_add_node.html", workflow=workflow, add_node_form=form, oob=False
    )


@bp.get("/<workflow_id>/edit/add-edge-form")
@login_required
def edit_add_edge_form(workflow_id: str) -> str:
    """The "Add edge" form again, offering the branch when the source is a condition."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.current_draft(current_user, workflow)
    form = make_add_edge_form(draft.definition, None, request.args, choose_target=True)
    return render_template(
        "workflows/editor/_add_edge.html", workflow=workflow, add_edge_form=form, oob=False
    )


# --- settings ---------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/settings")
@login_required
def edit_settings(workflow_id: str) -> Response:
    """The workflow's name, description, time limit and runs per incident."""
    workflow = editable_workflow(workflow_id)
    form = SettingsForm(formdata=request.form)
    if form.text_problems:  # shown at their fields; the draft is left as it was
        draft = draft_store.current_draft(current_user, workflow)
        return respond(
            workflow,
            draft,
            panels=("settings",),
            status=422,
            selected=selected_from_request(),
            settings_form=form,
        )
    draft = draft_store.load_draft(current_user, workflow)
    selected = selected_from_request()
    yours = form.as_dict()
    values = yours
    if request.form.get("revision") != draft_store.revision_of(draft.definition):
        theirs = SettingsForm.from_definition(draft.definition).as_dict()
        origin = posted_json("origin")
        if isinstance(origin, dict):
            base: Any = SettingsForm(data=origin).as_dict()
        else:
            base = unknown_base(theirs)
        values, conflicts = draft_edits.merge_edits(base, yours, theirs)
        if conflicts:
            db.session.rollback()
            workflow, draft = fresh_state(workflow_id)
            stamp_settings(form, draft.definition)
            form.conflicts = [
                (
                    SettingsForm.LABELS.get(str(c.path[0]), "Settings"),
                    shown_value(c.theirs),
                    shown_value(c.yours),
                )
                for c in conflicts
            ]
            return respond(
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
    if not is_htmx():
        return committed(done(workflow, selected))
    return committed(
        respond(
            workflow,
            draft,
            panels=("banner", "graph", "settings", "problems", "save"),
            status=lambda context: 422 if context["checked"].settings else 200,
            selected=selected,
        )
    )


# --- saving ------------------------------------------------------------------------------


@bp.post("/<workflow_id>/edit/save")
@login_required
def edit_save(workflow_id: str) -> Response:
    """Save the draft as the next version; refused (draft kept) if someone saved since."""
    workflow = editable_workflow(workflow_id, for_update=True)
    draft = draft_store.current_draft(current_user, workflow)
    form = SaveForm(formdata=request.form)
    selected = selected_from_request()
    if form.text_problems:  # shown at the field; nothing is saved
        return respond(
            workflow, draft, panels=("save",), status=422, selected=selected, save_form=form
        )
    try:
        version = draft_store.save(current_user, workflow, draft, form.change_note.data)
    except Conflict as error:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
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
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow,
            draft,
            panels=("banner", "graph", "node_form", "problems", "save"),
            status=422,
            selected=selected,
            save_form=form,
            save_error=error.message,
        )
    response = reload(workflow, selected)
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

    workflow = editable_workflow(workflow_id)
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
    if is_htmx():
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
    workflow = editable_workflow(workflow_id, for_update=True)
    wanted = request.form.get("enabled") == "1"
    selected = selected_from_request()
    try:
        service.set_enabled(current_user, workflow, wanted)
    except ServiceError as error:
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow,
            draft,
            panels=("problems",),
            status=error.status,
            selected=selected,
            enable_error=error,
        )
    response = reload(workflow, selected)
    db.session.commit()
    flash(f"{workflow.name} is {'enabled' if wanted else 'disabled'}.")
    return response


@bp.post("/<workflow_id>/edit/discard")
@login_required
def edit_discard(workflow_id: str) -> Response:
    """Throw the draft away and start again from the current version."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.find_draft(current_user, workflow, for_update=True)
    if draft is not None and request.form.get("confirm") != "yes":
        db.session.rollback()
        workflow, draft = fresh_state(workflow_id)
        return respond(
            workflow,
            draft,
            panels=("banner",),
            selected=selected_from_request(),
            confirm_discard=True,
        )
    if draft is not None:
        draft_store.discard(draft)
    response = reload(workflow, selected_from_request())
    db.session.commit()
    flash(f"Your changes were discarded; this is v{workflow.version}.")
    return response


@bp.post("/<workflow_id>/edit/rebase")
@login_required
def edit_rebase(workflow_id: str) -> Response:
    """Keep the draft, based on the current version: saving it then replaces that version."""
    workflow = editable_workflow(workflow_id)
    draft = draft_store.find_draft(current_user, workflow, for_update=True)
    if draft is not None and draft_store.is_stale(draft, workflow):
        draft_store.rebase(draft, workflow)
        flash(
            f"Your draft is now based on v{workflow.version}. Saving it replaces the changes "
            f"made in v{workflow.version} with yours."
        )
    return committed(reload(workflow, selected_from_request()))
