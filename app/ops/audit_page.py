"""The audit log page, ``/admin/audit``: admins only, newest first, filtered by
workflow and action. One template serves the page and, for htmx, the entries."""

from __future__ import annotations

from flask import abort
from flask_login import current_user
from htmx_flask import request
from werkzeug.wrappers import Response

from app.auth.permissions import ADMINS_ONLY
from app.extensions import db, login_manager
from app.htmx import page_or_part
from app.ops.audit import entries_query, existing_workflow_ids, workflow_choices
from app.ops.blueprint import bp
from app.ops.models import AuditAction

PER_PAGE = 50


@bp.get("/admin/audit")
def audit() -> Response | tuple[str, int]:
    if not current_user.is_authenticated:
        unauthorized: Response = login_manager.unauthorized()
        return unauthorized
    if not current_user.is_admin:
        abort(403, ADMINS_ONLY)

    workflow_id = (request.args.get("workflow") or "").strip() or None
    action_arg = (request.args.get("action") or "").strip()
    error = None
    action: AuditAction | None = None
    if action_arg:
        try:
            action = AuditAction(action_arg)
        except ValueError:
            error = f"There is no action called {action_arg!r}; choose one from the list."
    if error:
        page = None
        status = 422
    else:
        page = db.paginate(
            entries_query(workflow_id=workflow_id, action=action),
            per_page=PER_PAGE,
            max_per_page=PER_PAGE,
        )
        status = 200
    context = {
        "page": page,
        "error": error,
        "workflow_id": workflow_id or "",
        "action": action.value if action else "",
        "actions": list(AuditAction),
        "action_labels": {a.value: a.label for a in AuditAction},
        "filters": {
            key: value for key, value in (("workflow", workflow_id), ("action", action)) if value
        },
        "workflows": workflow_choices(),
        "live_workflows": existing_workflow_ids(
            {entry.workflow_id for entry in page.items} if page else set()
        ),
    }
    return page_or_part("ops/audit.html", "ops/_audit_entries.html", context), status
