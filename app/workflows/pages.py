"""What the workflow pages share (``routes.py``, ``gallery.py``): loading a workflow
the user may see, where a new workflow may go, and the one shape of a form post.

``submit`` is that shape: a form that validates runs its change; a ``ServiceError``
rolls back and is shown inside the form (with its status: 422, 403, 409, ...);
otherwise the change is committed, its messages flashed, and the answer is a 303
(``see_other``: an htmx request gets ``HX-Redirect``). A form that does not validate
answers 422, a form not posted 200. Errors a view does not show in its own form are
left to the app-wide ``ServiceError`` page (``input_policy.init_app``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, url_for
from flask_login import current_user
from htmx_flask import request
from pydantic import ValidationError
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from app.auth.models import Team
from app.auth.permissions import team_visible_clause
from app.definition import parse_definition, referenced_secrets
from app.errors import NotFound, ServiceError
from app.extensions import db
from app.forms_support import attach_errors
from app.htmx import is_htmx, see_other
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.enums import ScopeType, TemplateCategory
from app.workflows.forms.pages import GLOBAL_OWNER
from app.workflows.models import Workflow
from app.workflows.templates_builtin import unfilled_placeholders

Page = str | Response | tuple[str, int]


# --- loading ------------------------------------------------------------------------


def load(workflow_id: str, *, for_update: bool = False) -> Workflow:
    """The workflow, or 404 when the user may not see it (never 403: that would leak it)."""
    try:
        return service.get_workflow(current_user, workflow_id, for_update=for_update)
    except NotFound:
        abort(404)


def load_template(workflow_id: str) -> Workflow:
    template = load(workflow_id)
    if not template.is_template or template.retired_at is not None:
        abort(404)
    return template


def my_teams() -> list[Team]:
    """Teams the user works in: every team for admins."""
    query = sa.select(Team).where(team_visible_clause(current_user, Team.id)).order_by(Team.name)
    return list(db.session.scalars(query))


# --- where a new workflow goes ----------------------------------------------------------


def set_owner_choices(form: Any, like: Workflow | None = None) -> None:
    """Where a new workflow may go; on first display, preselect ``like``'s place if the
    user may edit there, else the user's first team."""
    teams = my_teams()
    choices = [SelectChoice(GLOBAL_OWNER, "Global (all teams)")] if current_user.is_admin else []
    choices += [SelectChoice(team.id, f"Team {team.name}") for team in teams]
    form.owner.choices = choices
    if not form.is_submitted():
        if like is not None and service.can_edit(current_user, like):
            form.owner.data = like.team_id or GLOBAL_OWNER
        elif teams:
            form.owner.data = teams[0].id


def owner(value: str | None) -> tuple[ScopeType, str | None]:
    """The scope and team an owner choice stands for."""
    if value == GLOBAL_OWNER:
        return ScopeType.GLOBAL, None
    return ScopeType.TEAM, value or None


def set_category(workflow: Workflow, value: str | None) -> None:
    """The list's category filter reads ``template_category``; a workflow gets the
    category it was created with (or its template's)."""
    workflow.template_category = TemplateCategory(value) if value else None
    db.session.flush()


def editor_url(workflow: Workflow) -> str:
    return url_for("workflows.edit", workflow_id=workflow.id)


def secrets_message(workflow: Workflow) -> str:
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


def fill_in_message(workflow: Workflow) -> str | None:
    placeholders = unfilled_placeholders(workflow.definition)
    if not placeholders:
        return None
    items = "; ".join(f"{p.loc} ({p.hint})" for p in placeholders)
    return f"Fill in the highlighted fields before enabling: {items}."


# --- errors in a page --------------------------------------------------------------------


def form_failure(form: Any, error: ServiceError | ValidationError) -> tuple[list[str], int]:
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


def problem_lines(error: ServiceError) -> list[str]:
    """Each problem as one line, with its location when it has one."""
    if not error.problems:
        return [error.message]
    return [f"{p.message} (at {p.loc})" if p.loc else p.message for p in error.problems]


# --- answering a change -------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """A change that went through: the page to go to, and what to tell the user there."""

    url: str
    messages: tuple[str | None, ...] = ()


@dataclass
class Shown:
    """A form shown again: its problems that fit no field, and the status to answer with.
    ``refused`` when a change was tried and rolled back (objects loaded before are stale)."""

    problems: list[str] = field(default_factory=list)
    status: int = 200
    refused: bool = False


def submit(
    form: Any | None,
    change: Callable[[], Done],
    failure: Callable[[ServiceError], tuple[list[str], int]] | None = None,
    *,
    check: Callable[[], bool] | None = None,
) -> Response | Shown:
    """Run ``change`` for a posted form (``form`` None: a POST without fields to check).

    Validated and accepted: commit, flash the messages, 303 to ``Done.url``. Refused
    (``ServiceError``): roll back and return the problems for the form, placed by
    ``failure`` (default: at the form's fields, ``form_failure``). Not valid, or
    ``check`` (a condition the service does not judge; it marks its field) false: 422.
    """
    if form is None:
        if request.method != "POST":
            return Shown()
    elif not form.validate_on_submit() or (check is not None and not check()):
        return Shown(status=422 if form.is_submitted() else 200)
    try:
        done = change()
    except ServiceError as error:
        db.session.rollback()
        problems, status = failure(error) if failure else form_failure(form, error)
        return Shown(problems, status, refused=True)
    db.session.commit()
    for message in done.messages:
        if message:
            flash(message)
    return see_other(done.url)


def fragment_or_back(fragment: Callable[[], Page], back_to: str, *messages: str) -> Page:
    """Answer a change made in place: htmx gets the fragment again; a plain form gets
    the messages flashed and a 303 back to the page."""
    if is_htmx():
        return fragment()
    for message in messages:
        flash(message)
    return redirect(back_to, code=303)
