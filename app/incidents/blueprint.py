"""The incidents blueprint; its pages live in routes.py."""

from flask import Blueprint

bp = Blueprint("incidents", __name__, url_prefix="/incidents")
