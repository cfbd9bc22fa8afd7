"""The workflows blueprint; its pages live in routes.py (list, history, secrets),
gallery.py (the template gallery) and editor.py (the node and edge editor)."""

from flask import Blueprint

bp = Blueprint("workflows", __name__, url_prefix="/workflows")
