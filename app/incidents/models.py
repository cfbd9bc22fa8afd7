"""Incidents: what workflows react to."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import JSONType, UTCDateTime, enum_type, id_column_type, new_id, utcnow
from app.extensions import db
from app.incidents.enums import ChangeSource, IncidentEventType, IncidentPriority, IncidentStatus

if TYPE_CHECKING:
    from app.auth.models import Team, User
    from app.workflows.models import WorkflowExecution

TITLE_MAX_LENGTH = 200
SERVICE_MAX_LENGTH = 100


class Incident(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "incident"
    __table_args__ = (
        sa.Index(None, "team_id", "status"),
        sa.Index(None, "created_at"),
        sa.Index(None, "service"),
        sa.CheckConstraint("escalation_level >= 0", name="escalation_level_not_negative"),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    priority: Mapped[IncidentPriority] = mapped_column(
        enum_type(IncidentPriority, "incident_priority"), default=IncidentPriority.P3
    )
    status: Mapped[IncidentStatus] = mapped_column(
        enum_type(IncidentStatus, "incident_status"), default=IncidentStatus.TRIGGERED
    )
    service: Mapped[str | None] = mapped_column(sa.String(SERVICE_MAX_LENGTH))
    # ``metadata`` is reserved by SQLAlchemy's declarative base, hence the underscore.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    team_id: Mapped[str] = mapped_column(sa.ForeignKey("team.id", ondelete="RESTRICT"))
    assignee_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    escalation_level: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Optimistic locking: a change based on a stale read fails instead of overwriting.
    row_version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": row_version}

    team: Mapped[Team] = relationship(back_populates="incidents")
    assignee: Mapped[User | None] = relationship(back_populates="assigned_incidents")
    workflow_executions: Mapped[list[WorkflowExecution]] = relationship(
        back_populates="incident", passive_deletes="all"
    )
    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="IncidentEvent.id",
    )

    def __repr__(self) -> str:
        return f"<Incident {self.id} {self.priority} {self.status}>"


# An integer key that is a rowid alias on SQLite and a bigint identity on PostgreSQL.
EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class IncidentEvent(db.Model):  # type: ignore[name-defined,misc]
    """One change to an incident, written in the same transaction as the change.

    ``changes`` maps each changed field to ``{"from": old, "to": new}`` (JSON values).
    The workflow engine consumes these rows; the incident timeline shows them.
    """

    __tablename__ = "incident_event"
    __table_args__ = (sa.Index(None, "incident_id", "id"), sa.Index(None, "processed_at", "id"))

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(sa.ForeignKey("incident.id", ondelete="CASCADE"))
    type: Mapped[IncidentEventType] = mapped_column(
        enum_type(IncidentEventType, "incident_event_type")
    )
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL")
    )
    source: Mapped[ChangeSource] = mapped_column(enum_type(ChangeSource, "change_source"))
    # The workflow run that made this change (through the API with the run's marker
    # header), or the run an engine event is about. Not a foreign key: a run may go
    # before the timeline that mentions it.
    execution_id: Mapped[str | None] = mapped_column(id_column_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set by the workflow engine's event consumer once it has started every matching run.
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    incident: Mapped[Incident] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<IncidentEvent {self.id} {self.type} {self.incident_id}>"
