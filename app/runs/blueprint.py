"""The runs blueprint; its pages live in routes.py."""

from flask import Blueprint

bp = Blueprint("runs", __name__, url_prefix="/runs")
