"""The people blueprints: sign-in and sign-out (routes.py), the admins' users and teams
(admin.py, /admin) and the signed-in user's profile (profile.py, /profile)."""

from flask import Blueprint

auth = Blueprint("auth", __name__)
admin = Blueprint("admin", __name__, url_prefix="/admin")
profile = Blueprint("profile", __name__, url_prefix="/profile")
