"""Workflow pages: list, create, import/export, history, diff, rollback, gallery, secrets.

The editor lives in ``editor.py`` on the same blueprint. As everywhere, these
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_sqlalchemy.pagination import SelectPagination
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from htmx_flask import request
from markupsafe import Markup
from pydantic import ValidationError
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField

from app import input_policy
from app.auth.models import Team
from app.auth.permissions import team_visible_clause
from app.definition import parse_definition, referenced_secrets
from app.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.extensions import db
from app.forms_support import TextPolicy, attach_errors
from app.htmx import see_other
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.blueprint import bp
from app.workflows.diff import diff_definitions
from app.workflows.enums import ExecutionStatus, ScopeType, TemplateCategory
from app.workflows.graph.svg import render_svg
from app.workflows.models import Workflow, WorkflowVersion
from app.workflows.templates_builtin import unfilled_placeholders

__all__ = ["bp"]

PER_PAGE = 25
LIST_ORDER = (Workflow.name, Workflow.id)
Page = str | Response | tuple[str, int]

CATEGORY_CHOICES = [SelectChoice(c.value, c.value) for c in TemplateCategory]
GLOBAL_OWNER = "global"


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every workflow page needs a signed-in user."""


# --- forms ------------------------------------------------------------------


class WorkflowFilterForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False  # a GET search form

    q = StringField("Search names")
    scope = SelectField(
        "Scope",
        choices=[
            SelectChoice("", "Any scope"),
            SelectChoice(ScopeType.TEAM.value, "Team"),
            SelectChoice(ScopeType.GLOBAL.value, "Global"),
        ],
    )
    team = SelectField("Team", choices=[])
    enabled = SelectField(
        "State",
        choices=[
            SelectChoice("", "Enabled or not"),
            SelectChoice("yes", "Enabled"),
            SelectChoice("no", "Disabled"),
        ],
    )
    category = SelectField(
        "Category", choices=[SelectChoice("", "Any category"), *CATEGORY_CHOICES]
    )


def _owner_field(label: str = "Belongs to") -> Any:
    # Choices are checked by the service (a member choosing "global" gets 403, not 422).
    return SelectField(label, choices=[], validate_choice=False)


def _category_field() -> Any:
    return SelectField(
        "Category", choices=[SelectChoice("", "None"), *CATEGORY_CHOICES], default=""
    )


class NewWorkflowForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Name")
    description = TextAreaField("Description")
    owner = _owner_field()
    category = _category_field()


class ImportForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    file = FileField("JSON file")
    text = TextAreaField("Or paste the JSON")
    owner = _owner_field()
    category = _category_field()


class CopyForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    """Duplicate a workflow, or make one from a template."""

    name = StringField("Name of the new workflow")
    owner = _owner_field()
    # Offered only when the user may edit the workflow the secrets come from.
    copy_secrets = BooleanField("Copy its secrets")


class SecretForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Name")
    # Rendered by hand in the template: the value is never written back into a page.
    value = StringField("Value")


class TemplateForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Name")
    description = TextAreaField("Description")
    category = SelectField("Category", choices=CATEGORY_CHOICES)


class SaveAsTemplateForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Template name")
    category = SelectField("Category", choices=CATEGORY_CHOICES)


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


def _load(workflow_id: str, *, for_update: bool = False) -> Workflow:
    try:
        return service.get_workflow(current_user, workflow_id, for_update=for_update)
    except NotFound:
        abort(404)


def _load_template(workflow_id: str) -> Workflow:
    template = _load(workflow_id)
    if not template.is_template or template.retired_at is not None:
        abort(404)
    return template


def _my_teams() -> list[Team]:
    """Teams the user works in: every team for admins."""
    query = sa.select(Team).where(team_visible_clause(current_user, Team.id)).order_by(Team.name)
    return list(db.session.scalars(query))


def _set_owner_choices(form: Any, like: Workflow | None = None) -> None:
    """Where a new workflow may go; on first display, preselect ``like``'s place if the
    user may edit there, else the user's first team."""
    teams = _my_teams()
    choices = [SelectChoice(GLOBAL_OWNER, "Global (all teams)")] if current_user.is_admin else []
    choices += [SelectChoice(team.id, f"Team {team.name}") for team in teams]
    form.owner.choices = choices
    if not form.is_submitted():
        if like is not None and service.can_edit(current_user, like):
            form.owner.data = like.team_id or GLOBAL_OWNER
        elif teams:
            form.owner.data = teams[0].id


def _owner(value: str | None) -> tuple[ScopeType, str | None]:
    if value == GLOBAL_OWNER:
        return ScopeType.GLOBAL, None
    return ScopeType.TEAM, value or None


def _set_category(workflow: Workflow, value: str | None) -> None:
    """The list's category filter reads ``template_category``; a workflow gets the
    category it was created with (or its template's)."""
    workflow.template_category = TemplateCategory(value) if value else None
    db.session.flush()


def _form_failure(form: Any, error: ServiceError | ValidationError) -> tuple[list[str], int]:
    """Attach a service error to the form's fields; return what fits no field, and the status."""
    owner_locs = {"scopeType", "teamId"}
    if isinstance(error, ServiceError) and "owner" in form._fields:
        at_owner = [p for p in error.problems if p.loc in owner_locs]
        if at_owner or error.status == 403:
            messages = [p.message for p in at_owner] or [error.message]
            form.owner.errors = [*form.owner.errors, *messages]
            rest = [p for p in error.problems if p.loc not in owner_locs]
            if not rest:
                return [], error.status
            error = type(error)(error.message, problems=rest)
    unplaced = attach_errors(form, error)
    status = error.status if isinstance(error, ServiceError) else 422
    return unplaced, status


def _problem_lines(error: ServiceError) -> list[str]:
    """Each problem as one line, with its location when it has one."""
    if not error.problems:
        return [error.message]
    return [f"{p.message} (at {p.loc})" if p.loc else p.message for p in error.problems]


def _fragment_or_back(fragment: Callable[[], Page], back_to: str, *messages: str) -> Page:
    """Answer a change made in place: htmx gets the fragment again; a plain form gets
    the messages flashed and a 303 back to the page."""
    if request.htmx:
        return fragment()
    for message in messages:
        flash(message)
    return redirect(back_to, code=303)


def _editor_url(workflow: Workflow) -> str:
    return url_for("workflows.edit", workflow_id=workflow.id)


def _secrets_message(workflow: Workflow) -> str:
    """What a new copy has of the secrets it needs (names only, never values)."""
    stored = secret_store.secret_names(workflow)
    try:
        needed = set(referenced_secrets(parse_definition(workflow.definition)))
    except ValidationError:
        needed = set()
    missing = sorted(needed - set(stored))
    parts = []
    if stored:
        parts.append(f"Secrets copied: {', '.join(stored)}.")
    if missing:
        parts.append(f"Secrets to add before enabling: {', '.join(missing)}.")
    return " ".join(parts) or "It needs no secrets."


def _fill_in_message(workflow: Workflow) -> str | None:
    placeholders = unfilled_placeholders(workflow.definition)
    if not placeholders:
        return None
    items = "; ".join(f"{p.loc} ({p.hint})" for p in placeholders)
    return f"Fill in the highlighted fields before enabling: {items}."


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
        *(SelectChoice(t.id, t.name) for t in _my_teams()),
    ]
    page = RowPagination(
        select=_search(form), session=db.session, per_page=PER_PAGE, error_out=False
    )
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    context = {"form": form, "page": page, "rows": _rows(page.items), "filters": filters}
    if request.htmx and request.htmx.target == "workflow-list":
        return render_template("workflows/_list.html", **context)
    return render_template("workflows/index.html", **context)


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
    workflow = _load(workflow_id, for_update=True)
    wanted = request.form.get("enabled", "1" if not workflow.is_enabled else "0") == "1"
    back_to = url_for("workflows.index")
    try:
        service.set_enabled(current_user, workflow, wanted)
    except ServiceError as error:
        db.session.rollback()
        problems, status = _problem_lines(error), error.status
        return _fragment_or_back(
            lambda: (_render_row(workflow_id, problems), status), back_to, *problems
        )
    done = f"{workflow.name} is {'enabled' if wanted else 'disabled'}."
    response = _fragment_or_back(lambda: _render_row(workflow_id, []), back_to, done)
    db.session.commit()  # once the answer is built: a render error changes nothing
    return response


# --- create, import, export, duplicate, delete ------------------------------


@bp.route("/new", methods=["GET", "POST"])
def create() -> Page:
    form = NewWorkflowForm()
    _set_owner_choices(form)
    problems: list[str] = []
    status = 200
    if form.validate_on_submit():
        scope, team_id = _owner(form.owner.data)
        try:
            workflow = service.create_workflow(
                current_user,
                name=(form.name.data or "").strip(),
                description=(form.description.data or "").strip(),
                scope=scope,
                team_id=team_id,
            )
            _set_category(workflow, form.category.data)
        except ServiceError as error:
            db.session.rollback()
            problems, status = _form_failure(form, error)
        else:
            db.session.commit()
            flash(f"Workflow {workflow.name} created, disabled. Add its steps here.")
            return see_other(_editor_url(workflow))
    elif form.is_submitted():
        status = 422
    return render_template("workflows/new.html", form=form, problems=problems), status


@bp.route("/import", methods=["GET", "POST"], endpoint="import_")
def import_() -> Page:
    form = ImportForm()
    _set_owner_choices(form)
    problems: list[str] = []
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        source: str | bytes = (form.text.data or "").strip()
        if isinstance(upload, FileStorage) and upload.filename:
            source = upload.read()
        if not source:
            form.text.errors = [*form.text.errors, "Choose a JSON file or paste the JSON."]
            status = 422
        else:
            scope, team_id = _owner(form.owner.data)
            try:
                _check_json_policy(source)
                workflow = service.import_workflow(
                    current_user,
                    source,
                    scope=scope,
                    team_id=team_id,
                    category=form.category.data or None,
                )
            except ServiceError as error:
                db.session.rollback()
                if isinstance(error, service.DefinitionInvalid | InvalidInput):
                    problems, status = _problem_lines(error), 422
                else:
                    problems, status = _form_failure(form, error)
            else:
                db.session.commit()
                flash(f"Imported {workflow.name} as a new, disabled workflow.")
                return see_other(_editor_url(workflow))
    elif form.is_submitted():
        status = 422
    return render_template("workflows/import.html", form=form, problems=problems), status


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
    workflow = _load(workflow_id)
    body = _json_text(service.export_definition(workflow)) + "\n"
    response = make_response(body, 200)
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(workflow)}"'
    return response


@bp.route("/<workflow_id>/duplicate", methods=["GET", "POST"])
def duplicate(workflow_id: str) -> Page:
    workflow = _load(workflow_id)
    form = CopyForm()
    if not form.is_submitted():
        form.name.data = f"Copy of {workflow.name}"[:200]
    _set_owner_choices(form, like=workflow)
    source = None if workflow.is_template else service.secret_source(current_user, workflow)
    problems: list[str] = []
    status = 200
    if form.validate_on_submit():
        scope, team_id = _owner(form.owner.data)
        try:
            copy = service.duplicate_workflow(
                current_user,
                workflow,
                scope=scope,
                team_id=team_id,
                name=(form.name.data or "").strip() or None,
                copy_secrets=bool(form.copy_secrets.data),
            )
            _set_category(copy, workflow.template_category)
        except ServiceError as error:
            db.session.rollback()
            problems, status = _form_failure(form, error)
        else:
            db.session.commit()
            flash(f"{copy.name} created, disabled. {_secrets_message(copy)}")
            return see_other(_editor_url(copy))
    elif form.is_submitted():
        status = 422
    context = {
        "workflow": workflow,
        "form": form,
        "problems": problems,
        "secret_names": secret_store.secret_names(source) if source else [],
    }
    return render_template("workflows/duplicate.html", **context), status


@bp.route("/<workflow_id>/delete", methods=["GET", "POST"])
def delete(workflow_id: str) -> Page:
    """GET asks for confirmation; POST deletes, unless runs are still in flight."""
    workflow = _load(workflow_id, for_update=request.method == "POST")
    error_message = None
    status = 200
    if request.method == "POST":
        name = workflow.name
        try:
            service.delete_workflow(current_user, workflow)
        except ServiceError as error:
            db.session.rollback()
            workflow = _load(workflow_id)
            error_message, status = error.message, error.status
        else:
            db.session.commit()
            flash(f"Workflow {name} deleted.")
            return see_other(url_for("workflows.index"))
    context = {
        "workflow": workflow,
        "in_flight": service.runs_in_flight(workflow),
        "can_edit": service.can_edit(current_user, workflow),
        "error": error_message,
    }
    return render_template("workflows/delete.html", **context), status


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
    workflow = _load(workflow_id)
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

    workflow = _load(workflow_id)
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
    workflow = _load(workflow_id)
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
    workflow = _load(workflow_id)
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
    workflow = _load(workflow_id, for_update=request.method == "POST")
    target = _version_or_404(workflow, number)
    problems: list[str] = []
    status = 200
    if request.method == "POST":
        base = request.form.get("base_version", type=int)
        try:
            if base is not None and base != workflow.version:
                raise Conflict(
                    f"Version {workflow.version} has been saved since you opened this page; "
                    "check the history and roll back again if you still want to."
                )
            created = service.rollback(current_user, workflow, number)
        except ServiceError as error:
            db.session.rollback()
            workflow = _load(workflow_id)
            problems, status = _problem_lines(error), error.status
        else:
            db.session.commit()
            flash(f"Rolled back to v{number}: saved as v{created.version}.")
            return see_other(url_for("workflows.history", workflow_id=workflow_id))
    context = {
        "workflow": workflow,
        "version": target,
        "new_number": workflow.version + 1,
        "can_edit": service.can_edit(current_user, workflow),
        "problems": problems,
    }
    return render_template("workflows/rollback.html", **context), status


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
    template = "workflows/_secrets.html" if request.htmx else "workflows/secrets.html"
    return render_template(template, **context), status


@bp.route("/<workflow_id>/secrets", methods=["GET", "POST"])
def secrets(workflow_id: str) -> Page:
    """Add, replace (name + value) or delete (``delete=<name>``) a secret. Values are
    write-only: no response ever contains one, not even masked."""
    workflow = _load(workflow_id, for_update=request.method == "POST")
    if request.method == "GET":
        return _render_secrets(workflow)
    try:
        service.require_edit(current_user, workflow)
    except ServiceError as error:
        db.session.rollback()
        return _render_secrets(_load(workflow_id), error=error.message, status=error.status)
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
        workflow = _load(workflow_id)
        unplaced = attach_errors(form, error) if to_delete is None else [error.message]
        form.value.data = None
        return _render_secrets(
            workflow, form, error=" ".join(unplaced) or None, status=error.status
        )
    response = _fragment_or_back(
        lambda: _render_secrets(_load(workflow_id), message=done),
        url_for("workflows.secrets", workflow_id=workflow_id),
        done,
    )
    db.session.commit()  # once the answer is built: a render error changes nothing
    return response


# --- template gallery -------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    template: Workflow
    picture: Markup
    secrets: list[str]


@bp.get("/templates")
def gallery() -> str:
    """The templates, by category; a GET form filters them by words and by category."""
    search = request.args.get("q", "")[:200]
    chosen = request.args.get("category", "")
    category = next((c for c in TemplateCategory if c.value == chosen), None)
    grouped = service.templates_by_category(search, category)
    cards: dict[TemplateCategory, list[Card]] = {}
    for category, templates in grouped.items():
        cards[category] = []
        for template in templates:
            try:
                needed = list(referenced_secrets(parse_definition(template.definition)))
            except ValidationError:
                needed = []
            picture = render_svg(
                template.definition,
                compact=True,
                natural_size=True,
                title=f"Graph of {template.name}",
            )
            cards[category].append(Card(template, picture, needed))
    return render_template(
        "workflows/gallery.html",
        cards=cards,
        search=search,
        category=category,
        categories=list(TemplateCategory),
        found=sum(len(items) for items in cards.values()),
    )


@bp.route("/templates/<workflow_id>/use", methods=["GET", "POST"])
def use_template(workflow_id: str) -> Page:
    """Make a disabled workflow from a template, then open it in the editor."""
    template = _load_template(workflow_id)
    form = CopyForm()
    if not form.is_submitted():
        form.name.data = template.name
    _set_owner_choices(form)
    source = service.secret_source(current_user, template)
    problems: list[str] = []
    status = 200
    if form.validate_on_submit():
        scope, team_id = _owner(form.owner.data)
        try:
            workflow = service.use_template(
                current_user,
                template,
                scope=scope,
                team_id=team_id,
                name=(form.name.data or "").strip() or None,
                copy_secrets=bool(form.copy_secrets.data),
            )
            _set_category(workflow, template.template_category)
        except ServiceError as error:
            db.session.rollback()
            problems, status = _form_failure(form, error)
        else:
            db.session.commit()
            flash(
                f"{workflow.name} created from the template, disabled. {_secrets_message(workflow)}"
            )
            message = _fill_in_message(workflow)
            if message:
                flash(message)
            return see_other(_editor_url(workflow))
    elif form.is_submitted():
        status = 422
    picture = render_svg(template.definition, title=f"Graph of {template.name}")
    context = {
        "template": template,
        "form": form,
        "problems": problems,
        "picture": picture,
        "secret_names": secret_store.secret_names(source) if source else [],
    }
    return render_template("workflows/use_template.html", **context), status


@bp.route("/<workflow_id>/save-as-template", methods=["GET", "POST"])
def save_as_template(workflow_id: str) -> Page:
    workflow = _load(workflow_id)
    form = SaveAsTemplateForm()
    if not form.is_submitted():
        form.name.data = workflow.name
        if workflow.template_category:
            form.category.data = workflow.template_category.value
    problems: list[str] = []
    status = 200
    if not current_user.is_admin:
        problems, status = ["Only admins can manage templates."], 403
    elif form.validate_on_submit():
        try:
            template = service.save_as_template(
                current_user,
                workflow,
                form.category.data,
                name=(form.name.data or "").strip() or None,
            )
        except ServiceError as error:
            db.session.rollback()
            problems, status = _form_failure(form, error)
        else:
            db.session.commit()
            flash(f"Saved as the template {template.name}.")
            return see_other(url_for("workflows.gallery"))
    elif form.is_submitted():
        status = 422
    context = {"workflow": workflow, "form": form, "problems": problems}
    return render_template("workflows/save_as_template.html", **context), status


@bp.route("/templates/<workflow_id>/edit", methods=["GET", "POST"])
def edit_template(workflow_id: str) -> Page:
    template = _load_template(workflow_id)
    form = TemplateForm()
    if not form.is_submitted():
        form.name.data, form.description.data = template.name, template.description
        if template.template_category:
            form.category.data = template.template_category.value
    problems: list[str] = []
    status = 200
    if not current_user.is_admin:
        problems, status = ["Only admins can manage templates."], 403
    elif form.validate_on_submit():
        try:
            service.update_template(
                current_user,
                template,
                name=(form.name.data or "").strip(),
                description=(form.description.data or "").strip(),
                category=form.category.data,
            )
        except ServiceError as error:
            db.session.rollback()
            template = _load_template(workflow_id)
            problems, status = _form_failure(form, error)
        else:
            db.session.commit()
            flash(f"Template {template.name} saved.")
            return see_other(url_for("workflows.gallery"))
    elif form.is_submitted():
        status = 422
    context = {"template": template, "form": form, "problems": problems}
    return render_template("workflows/edit_template.html", **context), status


@bp.post("/templates/<workflow_id>/retire")
def retire_template(workflow_id: str) -> Page:
    template = _load_template(workflow_id)
    try:
        service.retire_template(current_user, template)
    except ServiceError as error:
        db.session.rollback()
        form = TemplateForm(formdata=None, obj=None)
        form.name.data, form.description.data = template.name, template.description
        context = {"template": template, "form": form, "problems": [error.message]}
        return render_template("workflows/edit_template.html", **context), error.status
    db.session.commit()
    flash(f"Template {template.name} retired: it is no longer offered in the gallery.")
    return see_other(url_for("workflows.gallery"))
