"""Sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.auth import throttle
from app.auth.forms import SignInForm
from app.auth.models import User
from app.extensions import db, login_manager

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Sign in to continue."


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_active else None


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes home."""
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = SignInForm()
    if form.validate_on_submit():
        email = User.normalise_email(form.email.data)
        ip = request.remote_addr or "unknown"
        wait = throttle.retry_after(email, ip)
        if wait is not None:
            minutes = max(1, round(wait.total_seconds() / 60))
            unit = "minute" if minutes == 1 else "minutes"
            form.password.errors = [f"Too many failed attempts. Try again in {minutes} {unit}."]
            response = render_template("auth/sign_in.html", form=form)
            return response, 429, {"Retry-After": str(int(wait.total_seconds()) + 1)}
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None and user.is_active and user.check_password(form.password.data):
            throttle.clear_failures(email)
            db.session.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")), code=303)
        throttle.record_failure(email, ip)
        db.session.commit()
        # One message for unknown email, wrong password and deactivated account.
        form.password.errors = ["Email or password is not right."]
        return render_template("auth/sign_in.html", form=form), 422
    status = 422 if form.errors else 200
    return render_template("auth/sign_in.html", form=form), status


@bp.post("/sign-out")
@login_required
def sign_out() -> Response:
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.sign_in"), code=303)
