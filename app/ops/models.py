"""The audit log: who changed which workflow, and how.

Entries outlive what they describe: ``workflow_id`` has no foreign key (a
deleted workflow's history stays readable, under the name it had), and the
actor is SET NULL when a user is deleted, with ``actor_label`` keeping who it was.
``details`` holds facts about the change (version numbers, a secret's name),
never a secret's value.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import JSONType, UTCDateTime, id_column_type, utcnow
from app.extensions import db


class AuditAction(StrEnum):
    WORKFLOW_CREATED = "workflow.created"
    WORKFLOW_VERSION_SAVED = "workflow.version_saved"
    WORKFLOW_ROLLED_BACK = "workflow.rolled_back"
    WORKFLOW_ENABLED = "workflow.enabled"
    WORKFLOW_DISABLED = "workflow.disabled"
    WORKFLOW_DELETED = "workflow.deleted"
    WORKFLOW_DUPLICATED = "workflow.duplicated"
    TEMPLATE_USED = "template.used"
    TEMPLATE_SAVED = "template.saved"
    TEMPLATE_UPDATED = "template.updated"
    TEMPLATE_RETIRED = "template.retired"
    SECRET_SET = "secret.set"
    SECRET_DELETED = "secret.deleted"
    SECRET_COPIED = "secret.copied"
    RUN_REPLAYED = "run.replayed"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    AuditAction.WORKFLOW_CREATED: "Workflow created",
    AuditAction.WORKFLOW_VERSION_SAVED: "Version saved",
    AuditAction.WORKFLOW_ROLLED_BACK: "Rolled back",
    AuditAction.WORKFLOW_ENABLED: "Enabled",
    AuditAction.WORKFLOW_DISABLED: "Disabled",
    AuditAction.WORKFLOW_DELETED: "Workflow deleted",
    AuditAction.WORKFLOW_DUPLICATED: "Workflow duplicated",
    AuditAction.TEMPLATE_USED: "Template used",
    AuditAction.TEMPLATE_SAVED: "Saved as template",
    AuditAction.TEMPLATE_UPDATED: "Template edited",
    AuditAction.TEMPLATE_RETIRED: "Template retired",
    AuditAction.SECRET_SET: "Secret set",
    AuditAction.SECRET_DELETED: "Secret deleted",
    AuditAction.SECRET_COPIED: "Secret copied",
    AuditAction.RUN_REPLAYED: "Run replayed",
}

AuditId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class AuditEntry(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "audit_entry"
    __table_args__ = (
        sa.Index(None, "workflow_id", "id"),
        sa.Index(None, "action", "id"),
        sa.Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL")
    )
    # Who it was, kept when the user is gone ("Ada Lovelace <ada@example.com>", or "system").
    actor_label: Mapped[str] = mapped_column(sa.String(400))
    # A plain string, not a CHECK-constrained enum: new actions need no migration.
    action: Mapped[str] = mapped_column(sa.String(40))
    # No foreign key: the entry outlives a deleted workflow.
    workflow_id: Mapped[str] = mapped_column(id_column_type())
    workflow_name: Mapped[str] = mapped_column(sa.String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.workflow_id} by {self.actor_label!r}>"


class EngineSweep(db.Model):  # type: ignore[name-defined,misc]
    """When the due-work sweep last ran, per backend: readiness fails when it is old.

    ``celery``: beat's ``dispatch_due`` task (so beat and a worker both work);
    ``embedded``: an embedded worker's pass. Written by :func:`app.ops.sweep.record_sweep`.
    """

    __tablename__ = "engine_sweep"

    backend: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
