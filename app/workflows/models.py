"""The four workflow models of the seed (task 1), table for table.

Referential actions: the seed asks for ``WorkflowVersion`` to cascade with its
workflow. Where it is silent we keep Prisma's defaults for the relation it
describes (required relations RESTRICT), with two deliberate exceptions:

* secrets cascade with their workflow: an encrypted credential must not
  outlive the only thing that may use it;
* ``Workflow.team`` is RESTRICT rather than SET NULL, because a team workflow
  without a team would silently become nobody's (a CHECK keeps scope and team
  consistent).

So run history (executions) protects its workflow and incident from deletion,
and versions and secrets go with their workflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import JSONType, UTCDateTime, enum_type, id_column_type, new_id, utcnow
from app.extensions import db
from app.workflows.enums import (
    ExecutionStatus,
    ScopeType,
    TemplateCategory,
    TriggeredBy,
    TriggerEvent,
)

if TYPE_CHECKING:
    from app.auth.models import Team, User
    from app.incidents.models import Incident


class Workflow(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "workflow"
    __table_args__ = (
        sa.Index(None, "team_id", "is_enabled"),
        sa.Index(None, "is_template", "template_category"),
        sa.Index(None, "scope_type"),
        sa.CheckConstraint(
            "(scope_type = 'team' AND team_id IS NOT NULL)"
            " OR (scope_type = 'global' AND team_id IS NULL)",
            name="scope_matches_team",
        ),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    scope_type: Mapped[ScopeType] = mapped_column(enum_type(ScopeType, "scope_type"))
    team_id: Mapped[str | None] = mapped_column(sa.ForeignKey("team.id", ondelete="RESTRICT"))
    is_enabled: Mapped[bool] = mapped_column(default=False)
    is_template: Mapped[bool] = mapped_column(default=False)
    template_category: Mapped[TemplateCategory | None] = mapped_column(
        enum_type(TemplateCategory, "template_category")
    )
    created_by_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Built-in templates carry a stable key so installing them again is idempotent.
    template_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # A retired template leaves the gallery but is kept (and never re-installed).
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A template saved from a workflow: that workflow, whose secrets a new workflow made
    # from the template may copy (by someone who may edit it).
    template_source_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("workflow.id", ondelete="SET NULL")
    )

    team: Mapped[Team | None] = relationship(back_populates="workflows")
    created_by: Mapped[User] = relationship(back_populates="workflows_created")
    versions: Mapped[list[WorkflowVersion]] = relationship(
        back_populates="workflow",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowVersion.version",
    )
    # RESTRICT in the database; "all" keeps the ORM from nulling the foreign key first.
    executions: Mapped[list[WorkflowExecution]] = relationship(
        back_populates="workflow", passive_deletes="all"
    )
    secrets: Mapped[list[WorkflowActionSecret]] = relationship(
        back_populates="workflow",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowActionSecret.name",
    )

    def __repr__(self) -> str:
        return f"<Workflow {self.id} v{self.version} {self.name!r}>"


class WorkflowVersion(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "workflow_version"
    __table_args__ = (sa.UniqueConstraint("workflow_id", "version"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(sa.ForeignKey("workflow.id", ondelete="CASCADE"))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changed_by_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="RESTRICT")
    )
    change_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    workflow: Mapped[Workflow] = relationship(back_populates="versions")
    changed_by: Mapped[User] = relationship(back_populates="workflow_versions_created")

    def __repr__(self) -> str:
        return f"<WorkflowVersion {self.workflow_id} v{self.version}>"


class WorkflowExecution(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "workflow_execution"
    __table_args__ = (
        sa.Index(None, "workflow_id", "status"),
        # The list's latest run of a workflow: one probe, newest first.
        sa.Index(None, "workflow_id", "created_at"),
        sa.Index(None, "incident_id"),
        sa.Index(None, "status", "created_at"),
        sa.Index(None, "due_at"),
        sa.Index(None, "replay_of_id"),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(sa.ForeignKey("workflow.id", ondelete="RESTRICT"))
    workflow_version: Mapped[int]
    # Frozen at start: editing or rolling back the workflow never changes a run in flight.
    definition_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    incident_id: Mapped[str] = mapped_column(sa.ForeignKey("incident.id", ondelete="RESTRICT"))
    triggered_by: Mapped[TriggeredBy] = mapped_column(enum_type(TriggeredBy, "triggered_by"))
    trigger_event: Mapped[TriggerEvent | None] = mapped_column(
        enum_type(TriggerEvent, "trigger_event")
    )
    status: Mapped[ExecutionStatus] = mapped_column(
        enum_type(ExecutionStatus, "execution_status"), default=ExecutionStatus.PENDING
    )
    current_node_id: Mapped[str | None] = mapped_column(sa.String(64))
    completed_nodes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # --- engine bookkeeping (columns the seed leaves to the engine) ---
    # "event:<event id>:<workflow id>" or "age:<workflow id>:<incident id>": one run per
    # trigger, however often the consumer replays; "replay:<run id>" for a bulk replay
    # (a failed run is bulk-replayed once). Manual runs and single replays have none.
    trigger_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    triggered_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL")
    )
    # When a worker should next look at this run: now (runnable), a wake-up time (delay,
    # backoff) or a lease expiry (being worked on). Null once the run has ended.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    parked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Attempts made so far at the current node (retries).
    attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    # Time spent working, for the workflow timeout (parked time excluded).
    working_ms: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    row_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Celery backend: deliveries that began the current step. A step whose worker dies
    # under it each time is stopped after ENGINE_MAX_DELIVERIES rather than looping.
    step_deliveries: Mapped[int] = mapped_column(default=0, server_default="0")
    # A replay: the failed, timed-out or cancelled run it replays, and how ("node": from
    # the failed node, completed steps carried over; "start": from the start).
    replay_of_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("workflow_execution.id", ondelete="SET NULL")
    )
    replay_mode: Mapped[str | None] = mapped_column(sa.String(16))
    # The run whose change to the incident started this one (the loop guard follows
    # these links back to count a chain). Not a foreign key: ended runs may be purged.
    caused_by_execution_id: Mapped[str | None] = mapped_column(id_column_type())

    __mapper_args__ = {"version_id_col": row_version}

    workflow: Mapped[Workflow] = relationship(back_populates="executions")
    incident: Mapped[Incident] = relationship(back_populates="workflow_executions")
    attempts: Mapped[list[ExecutionAttempt]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ExecutionAttempt.id"
    )

    def __repr__(self) -> str:
        return f"<WorkflowExecution {self.id} {self.status}>"


class WorkflowIncidentGuard(db.Model):  # type: ignore[name-defined,misc]
    """The last run a workflow with "once per incident" settings started on an incident.

    One row per (workflow, incident): the primary key is what makes two events at
    once start one run, on PostgreSQL and SQLite alike (see triggers.take_guard).
    """

    __tablename__ = "workflow_incident_guard"

    workflow_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workflow.id", ondelete="CASCADE"), primary_key=True
    )
    incident_id: Mapped[str] = mapped_column(
        sa.ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    )
    execution_id: Mapped[str] = mapped_column(id_column_type())
    last_started_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkflowActionSecret(db.Model):  # type: ignore[name-defined,misc]
    """A named credential for a workflow's actions.

    ``value_hash`` keeps the seed's column name, but holds the value encrypted
    (reversibly, since actions must send it), never a plain value.
    """

    __tablename__ = "workflow_action_secret"
    __table_args__ = (sa.UniqueConstraint("workflow_id", "name"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(sa.ForeignKey("workflow.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))
    value_hash: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    workflow: Mapped[Workflow] = relationship(back_populates="secrets")

    def __repr__(self) -> str:
        # Never the value, not even encrypted.
        return f"<WorkflowActionSecret {self.workflow_id} {self.name}>"


class WorkflowDraft(db.Model):  # type: ignore[name-defined,misc]
    """A user's unsaved edits to a workflow, kept across reloads and browser tabs.

    ``base_version`` is the version the draft started from: saving it when the
    workflow has moved on is refused as a conflict, and the draft is kept.
    The definition never holds credentials. What a user types into a secret input
    waits in ``pending_secrets`` (secret name -> value encrypted like every stored
    secret) and becomes the workflow's secret only when the draft is saved as a
    version, so the versions that run keep their secrets until then.
    """

    __tablename__ = "workflow_draft"
    __table_args__ = (sa.UniqueConstraint("workflow_id", "user_id"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(sa.ForeignKey("workflow.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    base_version: Mapped[int]
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    pending_secrets: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<WorkflowDraft {self.workflow_id} by {self.user_id} on v{self.base_version}>"


AttemptId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ExecutionAttempt(db.Model):  # type: ignore[name-defined,misc]
    """One try at one action node: what was sent and what came back, secrets scrubbed."""

    __tablename__ = "execution_attempt"
    __table_args__ = (sa.Index(None, "execution_id", "id"),)

    id: Mapped[int] = mapped_column(AttemptId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workflow_execution.id", ondelete="CASCADE")
    )
    node_id: Mapped[str] = mapped_column(sa.String(64))
    number: Mapped[int]
    ok: Mapped[bool]
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None]
    request: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    response: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(default=0)


class WorkerHeartbeat(db.Model):  # type: ignore[name-defined,misc]
    """A running worker, seen recently (readiness and operators' view)."""

    __tablename__ = "worker_heartbeat"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    backend: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
