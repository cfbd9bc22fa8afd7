"""The workflow editor: graph picture, node forms, edges, drafts, save as new version."""

from app.workflows.blueprint import bp

__all__ = ["bp"]
