"""The workflow editor: graph picture, node forms, edges, drafts, save as new version.

One page, ``workflows.edit``. Every change is a POST that updates the user's
draft (``app.workflows.drafts``) at once and answers htmx with out-of-band
swaps of the panels it affects; without htmx it answers with a 303 back to the
page, so the editor also works with plain forms. Selecting a node is a GET of
the page with ``?node=<id>`` (pushed to the history, so it survives a reload).

Who: a workflow the user cannot see is a 404 on every route; one they can see
but not change (a global workflow or template for a member) answers 403 with a
read-only picture of the workflow.

Modules: ``view`` (``EditorView``: what the page shows), ``responses`` (loading, reading
posted forms, the answers), ``page`` (the page, settings, save, test, enable, discard)
and ``nodes`` (node and edge changes); their routes are on the workflows blueprint.
"""

from app.workflows.editor import nodes, page

__all__ = ["nodes", "page"]
