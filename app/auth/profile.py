"""The signed-in user's profile: details, password, API tokens.

A new token is rendered straight into the response to the POST that created
it (no redirect, ``no-store``), the only time its plain value exists outside
the client: only its SHA-256 is kept.
"""

from __future__ import annotations

from flask import flash, render_template, url_for
from flask_login import current_user, login_user
from werkzeug.wrappers import Response

from app.auth import services, tokens
from app.auth.admin import secret_response
from app.auth.blueprint import profile as bp
from app.auth.forms import ChangePasswordForm, NewTokenForm
from app.auth.models import ApiToken
from app.errors import InvalidInput
from app.extensions import db, login_manager
from app.forms_support import attach_errors
from app.htmx import is_htmx, see_other

Page = str | Response | tuple[str, int]


@bp.before_request
def require_sign_in() -> Response | None:
    if current_user.is_authenticated:
        return None
    if is_htmx():
        return see_other(url_for(str(login_manager.login_view)))
    unauthorized: Response = login_manager.unauthorized()
    return unauthorized


def _page(
    *,
    password_form: ChangePasswordForm | None = None,
    token_form: NewTokenForm | None = None,
    new_token: tuple[ApiToken, str] | None = None,
    message: str | None = None,
    fragment: bool = False,
) -> str:
    """The profile page, or for htmx only its tokens section (``_tokens.html``)."""
    return render_template(
        "profile/_tokens.html" if fragment else "profile/index.html",
        user=current_user,
        password_form=password_form or ChangePasswordForm(formdata=None),
        token_form=token_form or NewTokenForm(formdata=None),
        tokens=tokens.user_tokens(current_user),
        new_token=new_token,
        message=message,
    )


@bp.get("")
def index() -> str:
    return _page()


@bp.post("/password")
def change_password() -> Page:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(
                current_user,
                current_password=form.current_password.data,
                new_password=form.new_password.data,
            )
        except InvalidInput as error:
            db.session.rollback()
            form.form_errors.extend(attach_errors(form, error))
        else:
            db.session.commit()
            # Every other session (a copied cookie too) has ended; this one goes on.
            login_user(current_user._get_current_object())
            flash("Your password is changed. Your other sessions are signed out.")
            return see_other(url_for("profile.index"))
    return _page(password_form=form), 422


@bp.post("/tokens")
def create_token() -> Page:
    form = NewTokenForm()
    if form.validate_on_submit():
        try:
            created = tokens.create_token(current_user, form.name.data)
        except InvalidInput as error:
            db.session.rollback()
            form.form_errors.extend(attach_errors(form, error))
        else:
            page = _page(new_token=created, fragment=is_htmx())
            db.session.commit()  # once the page is built: the token is shown, or not made
            return secret_response(page, 201)
    return _page(token_form=form, fragment=is_htmx()), 422


@bp.post("/tokens/<token_id>/revoke")
def revoke_token(token_id: str) -> Page:
    token = tokens.revoke_token(current_user, token_id)
    message = f"Token {token.name} is revoked: requests using it are refused from now on."
    if is_htmx():
        page = _page(message=message, fragment=True)
        db.session.commit()  # once the fragment is built
        return page
    db.session.commit()
    flash(message)
    return see_other(url_for("profile.index"))
