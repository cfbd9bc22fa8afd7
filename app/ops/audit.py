"""The audit log's service: ``record(...)`` for the workflow services, and the queries
behind the admins' page (``app.ops.audit_page``).

The workflow services call :func:`record` at each change, so that pages, the
API and the CLI all leave the same trail. It only adds the entry to the
session: the entry commits with the change, or rolls back with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from app.extensions import db
from app.ops.models import AuditAction, AuditEntry

if TYPE_CHECKING:
    from app.auth.models import User
    from app.workflows.models import Workflow

SYSTEM_ACTOR = "system"
# Detail keys that would only ever hold a credential: refused outright, so a slip in a
# caller fails loudly in tests instead of writing a secret into the log.
FORBIDDEN_DETAIL_KEYS = frozenset({"value", "secret_value", "password", "token", "credential"})


def record(
    actor: User | None, action: AuditAction | str, workflow: Workflow, **details: Any
) -> AuditEntry:
    """Add an audit entry for ``action`` on ``workflow`` to the session (no flush).

    ``details`` are JSON facts about the change: version numbers, a secret's NAME.
    Never pass a secret's value.
    """
    action = AuditAction(action)
    leaked = FORBIDDEN_DETAIL_KEYS & set(details)
    if leaked:
        raise ValueError(f"audit details must not carry {sorted(leaked)}")
    if workflow.id is None:
        raise ValueError("flush the workflow before recording it: it has no id yet")
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label(actor),
        action=action.value,
        workflow_id=workflow.id,
        workflow_name=workflow.name,
        details=details,
    )
    db.session.add(entry)
    return entry


def actor_label(actor: User | None) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    name = actor.full_name
    return (f"{name} <{actor.email}>" if name else actor.email)[:400]


# --- for the page -----------------------------------------------------------


def entries_query(*, workflow_id: str | None, action: AuditAction | None) -> sa.Select[Any]:
    query = sa.select(AuditEntry)
    if workflow_id:
        query = query.where(AuditEntry.workflow_id == workflow_id)
    if action is not None:
        query = query.where(AuditEntry.action == action.value)
    return query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())


def workflow_choices() -> list[tuple[str, str]]:
    """Every workflow with an entry, deleted ones included, under its latest name."""
    latest = (
        sa.select(AuditEntry.workflow_id, sa.func.max(AuditEntry.id).label("last_id"))
        .group_by(AuditEntry.workflow_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(AuditEntry.workflow_id, AuditEntry.workflow_name)
        .join(latest, AuditEntry.id == latest.c.last_id)
        .order_by(sa.func.lower(AuditEntry.workflow_name), AuditEntry.workflow_id)
    )
    return [(workflow_id, name) for workflow_id, name in rows]


def existing_workflow_ids(ids: set[str]) -> set[str]:
    from app.workflows.models import Workflow

    if not ids:
        return set()
    return set(db.session.scalars(sa.select(Workflow.id).where(Workflow.id.in_(ids))))
