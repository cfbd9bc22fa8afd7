"""What the API itself stores: the first answer to each idempotent request."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import UTCDateTime, utcnow
from app.extensions import db

IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotentRequest(db.Model):  # type: ignore[name-defined,misc]
    """A request sent with an ``Idempotency-Key``, and the answer it got.

    Stored in the same transaction as the change the request made, so a change and its
    remembered answer are committed together or not at all.
    """

    __tablename__ = "idempotent_request"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(IDEMPOTENCY_KEY_MAX_LENGTH))
    # SHA-256 of the method, path and body: a repeat must be the same request.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(400))
    status_code: Mapped[int] = mapped_column(sa.SmallInteger())
    body: Mapped[str] = mapped_column(sa.Text())
    location: Mapped[str | None] = mapped_column(sa.String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
