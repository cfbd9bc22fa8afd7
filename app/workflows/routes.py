"""Workflow pages: list, create, import/export, history, diff, rollback, secrets.

The editor lives in ``editor.py`` and the template gallery in ``gallery.py``, on the
same blueprint; what the pages share (loading, owner choices, ``submit``: the shape
of a form post) is in ``pages.py``, their forms in ``forms/pages.py``. As everywhere, these
views parse the request, call ``app.workflows.service`` (or the secrets store),
commit, and choose the response: 303 after a plain POST, the changed fragment
for htmx, 422 for bad input, 409 for conflicts, 403 for changes the user may
not make, and 404 for workflows the user may not see (never 403: their
existence must not leak).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import abort, make_response, render_template, url_for
from flask_login import current_user, login_required
from flask_sqlalchemy.pagination import SelectPagination
from htmx_flask import request
from pydantic import ValidationError
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from app import input_policy
from app.definition import parse_definition, referenced_secrets
from app.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.extensions import db
from app.forms_support import attach_errors
from app.htmx import page_or_part
from app.workflows import pages, service
from app.workflows import secrets as secret_store
from app.workflows.blueprint import bp
from app.workflows.diff import diff_definitions
from app.workflows.enums import ExecutionStatus, ScopeType, TemplateCategory
from app.workflows.forms.pages import (
    CopyForm,
    ImportForm,
    NewWorkflowForm,
    SecretForm,
    WorkflowFilterForm,
)
from app.workflows.graph.svg import render_svg
from app.workflows.models import Workflow, WorkflowVersion
from app.workflows.pages import Page

__all__ = ["bp"]

PER_PAGE = 25
LIST_ORDER = (Workflow.name, Workflow.id)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every workflow page needs a signed-in user."""


# --- helpers ----------------------------------------------------------------


class RowPagination(SelectPagination):
    """The list's pages. ``select`` is the filtered workflows, unordered: a page takes its
    workflows by name first, then looks up the latest run of those alone; the total counts
    the workflows without any run lookup."""

    def _query_items(self) -> list[Any]:
        workflows = self._query_args["select"].order_by(*LIST_ORDER)
        on_page = workflows.limit(self.per_page).offset(self._query_offset)
        rows = service.with_last_run(on_page).order_by(*LIST_ORDER)
        return list(self._query_args["session"].execute(rows).all())

    def _query_count(self) -> int:
        return service.count_workflows(self._query_args["select"])


@dataclass(frozen=True)
class Row:
    workflow: Workflow
    last_status: ExecutionStatus | None
    last_run_at: datetime | None
    editable: bool
    runs_in_a_day: int = 0
    failures_in_a_day: int = 0
    last_failure_id: str | None = None
    last_failure_at: datetime | None = None


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


# --- list and toggle ----------------------------------------------------------


def _search(form: WorkflowFilterForm) -> sa.Select[Workflow]:
    """The workflows the filters select, unordered (``RowPagination`` orders and pages)."""
    scope = form.scope.data if form.scope.data in {s.value for s in ScopeType} else None
    category = (
        form.category.data if form.category.data in {c.value for c in TemplateCategory} else None
    )
    return service.search_workflows(
        current_user,
        scope=ScopeType(scope) if scope else None,
        team_id=form.team.data or None,
        enabled={"yes": True, "no": False}.get(form.enabled.data or ""),
        category=TemplateCategory(category) if category else None,
        q=form.q.data,
    )


def _rows(items: Iterable[Any]) -> list[Row]:
    return [
        Row(
            workflow,
            status,
            at,
            service.can_edit(current_user, workflow),
            runs or 0,
            failures or 0,
            failure_id,
            failed_at,
        )
        for workflow, status, at, runs, failures, failure_id, failed_at in items
    ]


@bp.get("")
def index() -> str:
    form = WorkflowFilterForm(request.args)
    form.team.choices = [
        SelectChoice("", "All teams" if current_user.is_admin else "All my teams"),
        *(SelectChoice(t.id, t.name) for t in pages.my_teams()),
    ]
    page = RowPagination(
        select=_search(form), session=db.session, per_page=PER_PAGE, error_out=False
    )
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    context = {"form": form, "page": page, "rows": _rows(page.items), "filters": filters}
    return page_or_part(
        "workflows/index.html", "workflows/_list.html", context, target="workflow-list"
    )


def _row(workflow_id: str) -> Row:
    just_this = service.search_workflows(current_user).where(Workflow.id == workflow_id)
    found = db.session.execute(service.with_last_run(just_this)).first()
    if found is None:
        abort(404)
    return _rows([found])[0]


def _render_row(workflow_id: str, problems: list[str]) -> str:
    return render_template("workflows/_row.html", row=_row(workflow_id), problems=problems)


@bp.post("/<workflow_id>/toggle")
def toggle(workflow_id: str) -> Page:
    """Enable or disable in place; enabling something that cannot run is refused with why."""
    workflow = pages.load(workflow_id, for_update=True)
    wanted = request.form.get("enabled", "1" if not workflow.is_enabled else "0") == "1"
    back_to = url_for("workflows.index")
    try:
        service.set_enabled(current_user, workflow, wanted)
    except ServiceError as error:
        db.session.rollback()
        problems, status = pages.problem_lines(error), error.status
        return pages.fragment_or_back(
            lambda: (_render_row(workflow_id, problems), status), back_to, *problems
        )
    done = f"{workflow.name} is {'enabled' if wanted else 'disabled'}."
    response = pages.fragment_or_back(lambda: _render_row(workflow_id, []), back_to, done)
    db.session.commit()  # once the answer is built: a render error changes nothing
    return response


# --- create, import, export, duplicate, delete ------------------------------


@bp.route("/new", methods=["GET", "POST"])
def create() -> Page:
    form = NewWorkflowForm()
    pages.set_owner_choices(form)

    def change() -> pages.Done:
        scope, team_id = pages.owner(form.owner.data)
        workflow = service.create_workflow(
            current_user,
            name=(form.name.data or "").strip(),
            description=(form.description.data or "").strip(),
            scope=scope,
            team_id=team_id,
        )
        pages.set_category(workflow, form.category.data)
        done = f"Workflow {workflow.name} created, disabled. Add its steps here."
        return pages.Done(pages.editor_url(workflow), (done,))

    shown = pages.submit(form, change)
    if isinstance(shown, Response):
        return shown
    context = {"form": form, "problems": shown.problems}
    return render_template("workflows/new.html", **context), shown.status


@bp.route("/import", methods=["GET", "POST"], endpoint="import_")
def import_() -> Page:
    form = ImportForm()
    pages.set_owner_choices(form)
    source: str | bytes = ""

    def has_source() -> bool:
        nonlocal source
        source = (form.text.data or "").strip()
        upload = form.file.data
        if isinstance(upload, FileStorage) and upload.filename:
            source = upload.read()
        if not source:
            form.text.errors = [*form.text.errors, "Choose a JSON file or paste the JSON."]
        return bool(source)

    def change() -> pages.Done:
        scope, team_id = pages.owner(form.owner.data)
        _check_json_policy(source)
        workflow = service.import_workflow(
            current_user,
            source,
            scope=scope,
            team_id=team_id,
            category=form.category.data or None,
        )
        done = f"Imported {workflow.name} as a new, disabled workflow."
        return pages.Done(pages.editor_url(workflow), (done,))

    def failure(error: ServiceError) -> tuple[list[str], int]:
        if isinstance(error, service.DefinitionInvalid | InvalidInput):
            return pages.problem_lines(error), 422
        return pages.form_failure(form, error)

    shown = pages.submit(form, change, failure, check=has_source)
    if isinstance(shown, Response):
        return shown
    context = {"form": form, "problems": shown.problems}
    return render_template("workflows/import.html", **context), shown.status


def _check_json_policy(source: str | bytes) -> None:
    """Refuse a definition the input policy refuses (too deep, NUL, ...) before anything
    else reads it; text that is not JSON at all is left to the definition's own messages."""
    with contextlib.suppress(input_policy.JsonSyntaxError):
        input_policy.loads(source)


def _filename(workflow: Workflow) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", workflow.name).strip("-").lower()[:60] or "workflow"
    return f"{slug}-v{workflow.version}.json"


@bp.get("/<workflow_id>/export")
def export(workflow_id: str) -> Response:
    """The definition as a JSON download (secret references only, never values)."""
    workflow = pages.load(workflow_id)
    body = _json_text(service.export_definition(workflow)) + "\n"
    response = make_response(body, 200)
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(workflow)}"'
    return response


@bp.route("/<workflow_id>/duplicate", methods=["GET", "POST"])
def duplicate(workflow_id: str) -> Page:
    workflow = pages.load(workflow_id)
    form = CopyForm()
    if not form.is_submitted():
        form.name.data = f"Copy of {workflow.name}"[:200]
    pages.set_owner_choices(form, like=workflow)
    source = None if workflow.is_template else service.secret_source(current_user, workflow)

    def change() -> pages.Done:
        scope, team_id = pages.owner(form.owner.data)
        copy = service.duplicate_workflow(
            current_user,
            workflow,
            scope=scope,
            team_id=team_id,
            name=(form.name.data or "").strip() or None,
            copy_secrets=bool(form.copy_secrets.data),
        )
        pages.set_category(copy, workflow.template_category)
        done = f"{copy.name} created, disabled. {pages.secrets_message(copy)}"
        return pages.Done(pages.editor_url(copy), (done,))

    shown = pages.submit(form, change)
    if isinstance(shown, Response):
        return shown
    context = {
        "workflow": workflow,
        "form": form,
        "problems": shown.problems,
        "secret_names": secret_store.secret_names(source) if source else [],
    }
    return render_template("workflows/duplicate.html", **context), shown.status


@bp.route("/<workflow_id>/delete", methods=["GET", "POST"])
def delete(workflow_id: str) -> Page:
    """GET asks for confirmation; POST deletes, unless runs are still in flight."""
    workflow = pages.load(workflow_id, for_update=request.method == "POST")

    def change() -> pages.Done:
        name = workflow.name
        service.delete_workflow(current_user, workflow)
        return pages.Done(url_for("workflows.index"), (f"Workflow {name} deleted.",))

    shown = pages.submit(None, change, lambda error: ([error.message], error.status))
    if isinstance(shown, Response):
        return shown
    if shown.refused:
        workflow = pages.load(workflow_id)
    context = {
        "workflow": workflow,
        "in_flight": service.runs_in_flight(workflow),
        "can_edit": service.can_edit(current_user, workflow),
        "error": shown.problems[0] if shown.problems else None,
    }
    return render_template("workflows/delete.html", **context), shown.status


# --- history, version, diff, rollback -------------------------------------------


def _versions(workflow: Workflow) -> list[WorkflowVersion]:
    return list(
        db.session.scalars(
            sa.select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == workflow.id)
            .options(sa.orm.joinedload(WorkflowVersion.changed_by))
            .order_by(WorkflowVersion.version.desc())
        )
    )


def _version_or_404(workflow: Workflow, number: int) -> WorkflowVersion:
    try:
        return service.get_version(workflow, number)
    except NotFound:
        abort(404)


@bp.get("/<workflow_id>/versions")
def history(workflow_id: str) -> str:
    workflow = pages.load(workflow_id)
    versions = _versions(workflow)
    return render_template(
        "workflows/history.html",
        workflow=workflow,
        versions=versions,
        can_edit=service.can_edit(current_user, workflow),
    )


@bp.get("/<workflow_id>/backtest")
def backtest(workflow_id: str) -> tuple[str, int]:
    """What the draft, the current version or an older one would have done over the
    last days of incident events (reads only, sends nothing: a GET)."""
    import time

    from app.db import utcnow
    from app.engine import backtest as backtests
    from app.workflows.drafts import store as draft_store

    workflow = pages.load(workflow_id)
    source = request.args.get("source", "current")
    number = _int_arg("version")
    days = min(max(_int_arg("days") or backtests.DEFAULT_DAYS, 1), backtests.MAX_DAYS)
    message = None
    result = None
    label = f"version {workflow.version} (current)"
    stored: dict[str, Any] = workflow.definition
    if source == "draft":
        stored = draft_store.current_draft(current_user, workflow).definition
        db.session.commit()  # an unchanged draft of an older version may have been dropped
        label = "your draft"
    elif source == "version" and number is not None:
        stored = _version_or_404(workflow, number).definition
        label = f"version {number}"
    else:
        source = "current"
    try:
        definition = parse_definition(stored)
    except ValidationError:
        message = f"The definition of {label} has problems; fix them in the editor first."
    else:
        result = backtests.backtest(
            workflow,
            definition,
            now=utcnow(),
            days=days,
            sample=backtests.DEFAULT_SAMPLE,
            clock=time,
        )
    return render_template(
        "workflows/backtest.html",
        workflow=workflow,
        versions=_versions(workflow),
        source=source,
        number=number,
        days=days,
        label=label,
        result=result,
        message=message,
        listed=backtests.MAX_LISTED,
    ), (422 if message else 200)


@bp.get("/<workflow_id>/versions/<int:number>")
def version(workflow_id: str, number: int) -> str:
    workflow = pages.load(workflow_id)
    shown = _version_or_404(workflow, number)
    graph = render_svg(shown.definition, title=f"{workflow.name}, version {number}")
    return render_template(
        "workflows/version.html",
        workflow=workflow,
        version=shown,
        graph=graph,
        definition_json=_json_text(shown.definition),
        can_edit=service.can_edit(current_user, workflow),
    )


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.get("/<workflow_id>/diff")
def diff(workflow_id: str) -> str:
    """Two versions side by side: by default the one before ``to`` and ``to`` (current)."""
    workflow = pages.load(workflow_id)
    to_number = _int_arg("to") or workflow.version
    from_number = _int_arg("from") or max(1, to_number - 1)
    new = _version_or_404(workflow, to_number)
    old = _version_or_404(workflow, from_number)
    changes = diff_definitions(old.definition, new.definition)
    numbers = [v.version for v in _versions(workflow)]
    return render_template(
        "workflows/diff.html",
        workflow=workflow,
        old=old,
        new=new,
        diff=changes,
        numbers=numbers,
        show=_short_json,
    )


def _short_json(value: Any, limit: int = 300) -> str:
    """A value from a definition as compact JSON, clipped for the diff table."""
    if value is None:
        return "—"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@bp.route("/<workflow_id>/versions/<int:number>/rollback", methods=["GET", "POST"])
def rollback(workflow_id: str, number: int) -> Page:
    """GET asks "Roll back to vN? This creates version vM equal to vN."; POST does it."""
    workflow = pages.load(workflow_id, for_update=request.method == "POST")
    target = _version_or_404(workflow, number)

    def change() -> pages.Done:
        base = request.form.get("base_version", type=int)
        if base is not None and base != workflow.version:
            raise Conflict(
                f"Version {workflow.version} has been saved since you opened this page; "
                "check the history and roll back again if you still want to."
            )
        created = service.rollback(current_user, workflow, number)
        done = f"Rolled back to v{number}: saved as v{created.version}."
        return pages.Done(url_for("workflows.history", workflow_id=workflow_id), (done,))

    shown = pages.submit(None, change, lambda error: (pages.problem_lines(error), error.status))
    if isinstance(shown, Response):
        return shown
    if shown.refused:
        workflow = pages.load(workflow_id)
    context = {
        "workflow": workflow,
        "version": target,
        "new_number": workflow.version + 1,
        "can_edit": service.can_edit(current_user, workflow),
        "problems": shown.problems,
    }
    return render_template("workflows/rollback.html", **context), shown.status


# --- secrets ------------------------------------------------------------------


@dataclass(frozen=True)
class SecretUse:
    name: str
    stored: bool
    nodes: list[tuple[str, str]]  # (node id, node name)


def _secret_uses(workflow: Workflow) -> tuple[list[SecretUse], bool]:
    """Every secret stored or used, with the nodes using it; False if the definition
    cannot be read (then usage is unknown)."""
    stored = secret_store.secret_names(workflow)
    try:
        used = referenced_secrets(parse_definition(workflow.definition))
        readable = True
    except ValidationError:
        used, readable = {}, False
    names = {
        node.get("id"): (node.get("data") or {}).get("name", "")
        for node in workflow.definition.get("nodes", [])
        if isinstance(node, dict)
    }
    uses = [
        SecretUse(name, name in stored, [(n, str(names.get(n) or n)) for n in used.get(name, [])])
        for name in sorted(set(stored) | set(used))
    ]
    return uses, readable


def _render_secrets(
    workflow: Workflow,
    form: SecretForm | None = None,
    *,
    message: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    uses, readable = _secret_uses(workflow)
    context = {
        "workflow": workflow,
        "uses": uses,
        "readable": readable,
        "missing": [u.name for u in uses if u.nodes and not u.stored],
        # ?name= (the editor's "Add" next to a missing secret) pre-fills the name.
        "form": form or SecretForm(formdata=None, name=request.args.get("name", "")[:64]),
        "can_edit": service.can_edit(current_user, workflow),
        "message": message,
        "error": error,
    }
    return page_or_part("workflows/secrets.html", "workflows/_secrets.html", context), status


@bp.route("/<workflow_id>/secrets", methods=["GET", "POST"])
def secrets(workflow_id: str) -> Page:
    """Add, replace (name + value) or delete (``delete=<name>``) a secret. Values are
    write-only: no response ever contains one, not even masked."""
    workflow = pages.load(workflow_id, for_update=request.method == "POST")
    if request.method == "GET":
        return _render_secrets(workflow)
    try:
        service.require_edit(current_user, workflow)
    except ServiceError as error:
        db.session.rollback()
        return _render_secrets(pages.load(workflow_id), error=error.message, status=error.status)
    form = SecretForm()
    to_delete = request.form.get("delete")
    if form.text_problems and to_delete is None:  # shown at the field; nothing is stored
        form.value.data = None
        return _render_secrets(workflow, form, status=422)
    try:
        if to_delete is not None:
            secret_store.delete_secret(workflow, to_delete, actor=current_user)
            done = f"Secret {to_delete} deleted."
        else:
            name = (form.name.data or "").strip()
            replaced = name in secret_store.secret_names(workflow)
            secret_store.set_secret(workflow, name, form.value.data or "", actor=current_user)
            done = f"Secret {name} {'replaced' if replaced else 'added'}."
    except ServiceError as error:
        db.session.rollback()
        workflow = pages.load(workflow_id)
        unplaced = attach_errors(form, error) if to_delete is None else [error.message]
        form.value.data = None
        return _render_secrets(
            workflow, form, error=" ".join(unplaced) or None, status=error.status
        )
    response = pages.fragment_or_back(
        lambda: _render_secrets(pages.load(workflow_id), message=done),
        url_for("workflows.secrets", workflow_id=workflow_id),
        done,
    )
    db.session.commit()  # once the answer is built: a render error changes nothing
    return response
