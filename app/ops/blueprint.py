"""The ops blueprint: health.py (/healthz, /readyz), metrics.py (/metrics) and
audit_page.py (/admin/audit)."""

from flask import Blueprint

bp = Blueprint("ops", __name__)
