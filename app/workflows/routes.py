"""Workflow pages: list, create, import/export, history, diff, rollback, gallery, secrets."""

from app.workflows.blueprint import bp

__all__ = ["bp"]
