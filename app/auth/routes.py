"""Sign-in and sign-out."""

from __future__ import annotations

import re
import secrets
from functools import cache
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from app.auth import throttle
from app.auth.blueprint import auth as bp
from app.auth.forms import SignInForm
from app.auth.models import User, password_hash_method
from app.extensions import db, login_manager

_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x1f\x7f\\]")

login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Sign in to continue."


@login_manager.user_loader
def load_user(session_user: str) -> User | None:
    """The session's user, if the session has not ended (see ``User.get_id``)."""
    user_id, _, version = session_user.rpartition(":")
    if not user_id or not version.isdigit():
        return None  # a session from before session versions: sign in again
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes home.

    No control characters (a CR/LF cannot go in a Location header) and no backslash
    (browsers read ``/\\evil.example`` as ``//evil.example``).
    """
    home = url_for("home.index")
    if not target or _UNSAFE_IN_NEXT.search(target):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return home
    return target


def _verified(user: User | None, password: str) -> User | None:
    """The user if the password is theirs and they may sign in; the same work either way."""
    if user is None or user.password_hash is None:
        check_password_hash(_dummy_hash(password_hash_method()), password)
        return None
    return user if user.check_password(password) and user.is_active else None


@cache
def _dummy_hash(method: str) -> str:
    # Hashed like a real password, so an unknown e-mail takes as long as a known one.
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = SignInForm()
    if form.validate_on_submit():
        email = User.normalise_email(form.email.data)
        ip = (request.remote_addr or "unknown")[:45]
        wait = throttle.retry_after(email, ip)
        if wait is not None:
            seconds = int(wait.total_seconds()) + 1
            minutes = max(1, round(seconds / 60))
            later = (
                f"{seconds} seconds"
                if seconds < 90
                else f"{minutes} minute" + ("" if minutes == 1 else "s")
            )
            form.password.errors = [f"Too many failed attempts. Try again in {later}."]
            response = render_template("auth/sign_in.html", form=form)
            return response, 429, {"Retry-After": str(seconds)}
        user = db.session.scalar(sa.select(User).where(User.email == email))
        user = _verified(user, form.password.data)
        if user is not None:
            throttle.clear_failures(email, ip)
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
    # Ends the session on the server too: a copy of the cookie no longer signs in.
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.sign_in"), code=303)
