"""Users, teams and team memberships."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import UTCDateTime, id_column_type, new_id, utcnow
from app.extensions import db

if TYPE_CHECKING:
    from app.incidents.models import Incident
    from app.workflows.models import Workflow, WorkflowVersion


#: werkzeug's default: scrypt with a random salt.
PASSWORD_HASH_METHOD = "scrypt"


def password_hash_method() -> str:
    """scrypt, unless the test hook ``TEST_HOOK_PASSWORD_HASH_METHOD`` names a cheaper one."""
    if has_app_context():
        method = current_app.config.get("TEST_HOOK_PASSWORD_HASH_METHOD")
        if method:
            return str(method)
    return PASSWORD_HASH_METHOD


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user_account"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    # Null until the user sets a password (an invited user cannot sign in yet).
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Part of every session's user id: raising it ends all of the user's sessions
    # (sign-out, password change and reset), whatever copies of the cookie exist.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[TeamMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    teams: Mapped[list[Team]] = relationship(
        secondary="team_membership", viewonly=True, order_by="Team.name"
    )
    workflows_created: Mapped[list[Workflow]] = relationship(
        back_populates="created_by", passive_deletes="all"
    )
    workflow_versions_created: Mapped[list[WorkflowVersion]] = relationship(
        back_populates="changed_by", passive_deletes="all"
    )
    assigned_incidents: Mapped[list[Incident]] = relationship(
        back_populates="assignee", passive_deletes=True
    )

    @staticmethod
    def normalise_email(email: str) -> str:
        return email.strip().lower()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_id(self) -> str:
        """What the session stores: the id and the session version (see ``session_user``)."""
        return f"{self.id}:{self.session_version}"

    def end_sessions(self) -> None:
        """End every session of this user; the caller commits."""
        self.session_version = (self.session_version or 0) + 1

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=password_hash_method())

    def check_password(self, password: str) -> bool:
        return self.password_hash is not None and check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Team(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "team"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    # The team's chat channel, e.g. a Slack channel; the template context's ``team.slackChannel``.
    chat_channel: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    memberships: Mapped[list[TeamMembership]] = relationship(
        back_populates="team", cascade="all, delete-orphan", passive_deletes=True
    )
    members: Mapped[list[User]] = relationship(
        secondary="team_membership", viewonly=True, order_by="User.email"
    )
    workflows: Mapped[list[Workflow]] = relationship(back_populates="team", passive_deletes="all")
    incidents: Mapped[list[Incident]] = relationship(back_populates="team", passive_deletes="all")

    def __repr__(self) -> str:
        return f"<Team {self.name}>"


class TeamMembership(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "team_membership"

    team_id: Mapped[str] = mapped_column(
        sa.ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    team: Mapped[Team] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class ApiToken(db.Model):  # type: ignore[name-defined,misc]
    """A bearer token for the JSON API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    # The first characters, so a user can tell tokens apart without the secret part.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<ApiToken {self.prefix}… of {self.user_id}>"


class SignInAttempt(db.Model):  # type: ignore[name-defined,misc]
    """A failed sign-in, kept briefly to rate-limit guessing (shared by all web processes)."""

    __tablename__ = "sign_in_attempt"
    __table_args__ = (sa.Index(None, "email", "created_at"), sa.Index(None, "ip", "created_at"))

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    email: Mapped[str] = mapped_column(sa.String(254))
    ip: Mapped[str] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
