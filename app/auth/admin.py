"""Admin pages: users and teams.

Only admins get here: anonymous visitors are sent to sign in, signed-in members
get a plain 403 page. A one-time password is rendered straight into the
response to the POST that made it, not behind a redirect: carrying it to a
redirected page would mean storing it somewhere, if only in the session cookie.
"""

from __future__ import annotations

from typing import TypeVar

from flask import (
    abort,
    flash,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_sqlalchemy.pagination import Pagination
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from app.auth import services
from app.auth.blueprint import admin as bp
from app.auth.forms import AddMemberForm, NewTeamForm, NewUserForm
from app.auth.models import Team, User
from app.auth.permissions import ADMINS_ONLY
from app.errors import InvalidInput, NotFound, ServiceError
from app.extensions import db, login_manager
from app.forms_support import attach_errors
from app.htmx import is_htmx, page_or_part, see_other

PER_PAGE = 50

Page = str | Response | tuple[str, int]
M = TypeVar("M", User, Team)


@bp.before_request
def require_admin() -> Response | None:
    if not current_user.is_authenticated:
        if is_htmx():
            # htmx would follow a redirect and swap the sign-in page into a section.
            return see_other(url_for(str(login_manager.login_view)))
        unauthorized: Response = login_manager.unauthorized()
        return unauthorized
    if not current_user.is_admin:
        abort(403, ADMINS_ONLY)
    return None


# -- outbound allow-list --------------------------------------------------------------------


@bp.get("/outbound")
def outbound() -> str:
    """The outbound allow-list, read-only: what workflows may reach although internal,
    and where that is set (it is configuration, changed where it is set)."""
    from flask import current_app

    from app.engine.outbound import AllowList

    raw = current_app.config.get("OUTBOUND_ALLOW") or ""
    allow = AllowList.parse(raw)
    return render_template(
        "admin/outbound.html",
        networks=[str(n) for n in allow.networks],
        hosts=sorted(allow.hosts),
        domains=["*" + d for d in allow.domains],
        source=current_app.config.get("OUTBOUND_ALLOW_SOURCE") or "the application's settings",
    )


@bp.app_template_filter("allow_page_link")
def allow_page_link(text: str | None) -> Markup:
    """An error message, escaped, with the allow-list page it names made a link."""
    from app.engine.outbound import ALLOW_PAGE

    escaped = escape(text or "")
    link = Markup('<a href="{0}">{0}</a>').format(url_for("admin.outbound"))
    return Markup(str(escaped).replace(ALLOW_PAGE, str(link)))


# -- users ---------------------------------------------------------------------------------


@bp.get("/users")
def users() -> str:
    return render_template("admin/users.html", page=_users_page())


def _users_page() -> Pagination:
    return db.paginate(services.users_query(), per_page=PER_PAGE, max_per_page=PER_PAGE)


@bp.route("/users/new", methods=["GET", "POST"])
def new_user() -> Page:
    form = NewUserForm()
    form.team_ids.choices = [(team.id, team.name) for team in services.all_teams()]
    if form.validate_on_submit():
        try:
            user, password = services.create_user(
                email=form.email.data,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                phone=form.phone.data,
                is_admin=form.is_admin.data,
                team_ids=form.team_ids.data or [],
            )
        except InvalidInput as error:
            db.session.rollback()
            form.form_errors.extend(attach_errors(form, error))
        else:
            page = render_template(
                "admin/one_time_password.html", user=user, password=password, created=True
            )
            db.session.commit()  # once the page is built: the password is shown, or not set
            return secret_response(page, 201)
    status = 422 if form.is_submitted() else 200
    return render_template("admin/new_user.html", form=form), status


def _set_active(user_id: str, *, active: bool) -> Page:
    try:
        user = services.set_user_active(current_user, user_id, active=active)
    except NotFound:
        raise  # the app-wide 404 page, not a problem on the users page
    except ServiceError as error:
        db.session.rollback()
        page = render_template("admin/users.html", page=_users_page(), error=error.message)
        return page, error.status
    db.session.commit()
    flash(f"{user.full_name} is {'active again' if active else 'deactivated'}.")
    return see_other(url_for("admin.users", page=request.args.get("page", type=int)))


@bp.post("/users/<user_id>/deactivate")
def deactivate_user(user_id: str) -> Page:
    return _set_active(user_id, active=False)


@bp.post("/users/<user_id>/reactivate")
def reactivate_user(user_id: str) -> Page:
    return _set_active(user_id, active=True)


@bp.route("/users/<user_id>/reset-password", methods=["GET", "POST"])
def reset_password(user_id: str) -> Page:
    """GET asks for confirmation; POST replaces the password and shows the new one once."""
    user = _get_or_404(User, user_id)
    if request.method == "GET":
        return render_template("admin/reset_password.html", user=user)
    user, password = services.reset_password(user.id)
    page = render_template(
        "admin/one_time_password.html", user=user, password=password, created=False
    )
    db.session.commit()  # once the page is built: the password is shown, or not set
    return secret_response(page)


# -- teams ---------------------------------------------------------------------------------


@bp.get("/teams")
def teams() -> str:
    page = db.paginate(services.teams_query(), per_page=PER_PAGE, max_per_page=PER_PAGE)
    summaries = services.summarise_teams(page.items)
    return render_template("admin/teams.html", page=page, summaries=summaries)


@bp.route("/teams/new", methods=["GET", "POST"])
def new_team() -> Page:
    form = NewTeamForm()
    if form.validate_on_submit():
        try:
            team = services.create_team(name=form.name.data, chat_channel=form.chat_channel.data)
        except InvalidInput as error:
            db.session.rollback()
            form.form_errors.extend(attach_errors(form, error))
        else:
            db.session.commit()
            flash(f"Team {team.name} created. Add its members below.")
            return see_other(url_for("admin.team", team_id=team.id))
    status = 422 if form.is_submitted() else 200
    return render_template("admin/new_team.html", form=form), status


@bp.get("/teams/<team_id>")
def team(team_id: str) -> Page:
    return _members(_get_or_404(Team, team_id))


@bp.post("/teams/<team_id>/members")
def add_member(team_id: str) -> Page:
    team = _get_or_404(Team, team_id)
    form = AddMemberForm()
    if form.validate_on_submit():
        try:
            membership = services.add_member(team.id, form.user_id.data)
        except InvalidInput as error:
            db.session.rollback()
            form.form_errors.extend(attach_errors(form, error))
        else:
            response = _after_member_change(
                team, f"{membership.user.full_name} joined {team.name}."
            )
            db.session.commit()  # once the answer is built
            return response
    return _members(team, form, status=422)


@bp.post("/teams/<team_id>/members/<user_id>/remove")
def remove_member(team_id: str, user_id: str) -> Page:
    team = _get_or_404(Team, team_id)
    user = services.remove_member(team.id, user_id)
    response = _after_member_change(team, f"{user.full_name} left {team.name}.")
    db.session.commit()  # once the answer is built
    return response


def _after_member_change(team: Team, message: str) -> Page:
    if is_htmx():
        return _members(team, message=message)
    flash(message)
    return see_other(url_for("admin.team", team_id=team.id))


def _members(
    team: Team,
    form: AddMemberForm | None = None,
    *,
    status: int = 200,
    message: str | None = None,
) -> Page:
    """The team page, or for htmx only its members section (``_members.html``)."""
    form = form or AddMemberForm(formdata=None)
    candidates = services.users_who_can_join(team)
    form.user_id.choices = [("", "Choose a user…")] + [
        (user.id, f"{user.full_name} <{user.email}>") for user in candidates
    ]
    page = page_or_part(
        "admin/team.html",
        "admin/_members.html",
        {
            "team": team,
            "members": services.team_members(team),
            "form": form,
            "candidates": candidates,
            "message": message,
        },
    )
    return page, status


# -- helpers (profile pages use them too) ----------------------------------------------------


def secret_response(body: str, status: int = 200) -> Response:
    """A response carrying a one-time secret: never stored by the browser or a proxy."""
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _get_or_404(model: type[M], object_id: str) -> M:
    found = db.session.get(model, object_id)
    if found is None:
        abort(404)
    return found
