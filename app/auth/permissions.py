"""Who may see and change what.

Admins: everything. Members: their teams' incidents and workflows, and global
workflows (read); they edit their teams' workflows. Objects another user may
not see answer 404, never 403, so their existence does not leak.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.auth.models import TeamMembership, User

#: The 403 page of the admins' pages (``/admin/...``) for anyone else.
ADMINS_ONLY = "This page is for admins. If you need something changed here, ask an admin."


def member_team_ids(user: User) -> sa.Select[str]:
    """A subquery of the ids of the teams the user belongs to."""
    return sa.select(TeamMembership.team_id).where(TeamMembership.user_id == user.id)


def team_visible_clause(user: User, team_column: Any) -> sa.ColumnElement[bool]:
    """A WHERE clause limiting rows with ``team_column`` to the user's teams."""
    if user.is_admin:
        return sa.true()
    clause: sa.ColumnElement[bool] = team_column.in_(member_team_ids(user))
    return clause


def is_member(user: User, team_id: str | None) -> bool:
    if team_id is None:
        return False
    return any(m.team_id == team_id for m in user.memberships)


def can_access_team(user: User, team_id: str | None) -> bool:
    return user.is_admin or is_member(user, team_id)
