"""/api/v1: JSON over the same services as the pages (see blueprint.py)."""

from app.api import routes, runs, workflows  # noqa: F401  (each declares its operations)
from app.api.blueprint import bp

__all__ = ["bp"]
