"""The home blueprint; its page lives in routes.py."""

from flask import Blueprint

bp = Blueprint("home", __name__)
