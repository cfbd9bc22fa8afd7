"""Managing users, teams and memberships, and a user's own password.

Functions take plain arguments, change the session (flush, never commit) and
raise ``app.errors`` types; routes commit. One-time passwords are returned to
the caller once and only their hash is stored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.auth.models import Team, TeamMembership, User
from app.errors import Forbidden, InvalidInput, NotFound, Problem
from app.extensions import db

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# No 0/o/1/l/i, so a password read aloud or copied by hand comes through intact.
_ONE_TIME_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CHAT_CHANNEL = re.compile(r"#[A-Za-z0-9][A-Za-z0-9._-]{0,98}")


@dataclass(frozen=True)
class TeamSummary:
    team: Team
    member_count: int


def generate_one_time_password() -> str:
    """Four groups of five characters: about 99 bits, longer than the minimum length."""
    groups = ("".join(secrets.choice(_ONE_TIME_ALPHABET) for _ in range(5)) for _ in range(4))
    return "-".join(groups)


# -- users ---------------------------------------------------------------------------------


def get_user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def users_query() -> sa.Select[tuple[User]]:
    """All users for the admin list, with their teams loaded in one more query."""
    return (
        sa.select(User)
        .options(selectinload(User.teams))
        .order_by(User.last_name, User.first_name, User.email)
    )


def email_taken(email: str) -> bool:
    normalised = User.normalise_email(email)
    # lower() also catches rows written before emails were normalised.
    found = db.session.scalar(
        sa.select(User.id).where(sa.func.lower(User.email) == normalised).limit(1)
    )
    return found is not None


def create_user(
    *,
    email: str,
    first_name: str,
    last_name: str,
    phone: str | None = None,
    is_admin: bool = False,
    team_ids: Iterable[str] = (),
) -> tuple[User, str]:
    """Create an active user with a one-time password, returned here and never again."""
    email = User.normalise_email(email)
    problems = []
    if not email or len(email) > 254 or "@" not in email:
        problems.append(Problem("email", "Enter an email address like name@example.com."))
    elif email_taken(email):
        problems.append(Problem("email", "A user with this email address already exists."))
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name or len(first_name) > 100:
        problems.append(Problem("first_name", "Enter a first name of 1 to 100 characters."))
    if not last_name or len(last_name) > 100:
        problems.append(Problem("last_name", "Enter a last name of 1 to 100 characters."))
    phone = (phone or "").strip() or None
    if phone is not None and len(phone) > 32:
        problems.append(Problem("phone", "Enter a phone number of at most 32 characters."))
    teams = _teams_by_id(team_ids, problems)
    if problems:
        raise InvalidInput("The user was not created.", problems=problems)

    password = generate_one_time_password()
    user = User(
        email=email, first_name=first_name, last_name=last_name, phone=phone, is_admin=is_admin
    )
    user.set_password(password)
    try:
        # A savepoint, so losing a race on the unique email leaves the session usable.
        with db.session.begin_nested():
            db.session.add(user)
            db.session.flush()
    except IntegrityError:
        raise InvalidInput.at("email", "A user with this email address already exists.") from None
    for team in teams:
        db.session.add(TeamMembership(team_id=team.id, user_id=user.id))
    db.session.flush()
    return user, password


def _teams_by_id(team_ids: Iterable[str], problems: list[Problem]) -> list[Team]:
    wanted = list(dict.fromkeys(team_ids))
    if not wanted:
        return []
    teams = list(db.session.scalars(sa.select(Team).where(Team.id.in_(wanted))))
    if len(teams) != len(wanted):
        problems.append(Problem("team_ids", "One of the chosen teams no longer exists."))
    return teams


def reset_password(user_id: str) -> tuple[User, str]:
    """Replace a user's password with a one-time password, returned here and never again."""
    user = get_user(user_id)
    password = generate_one_time_password()
    user.set_password(password)
    user.end_sessions()
    db.session.flush()
    return user, password


def set_user_active(actor: User, user_id: str, *, active: bool) -> User:
    """Deactivate or reactivate a user.

    A deactivated user's session and API tokens stop working at once: the
    session loader and token authentication both refuse inactive users.
    """
    user = get_user(user_id)
    if not active and user.id == actor.id:
        raise Forbidden("You cannot deactivate your own account. Ask another admin to do it.")
    user.is_active = active
    db.session.flush()
    return user


def change_password(user: User, *, current_password: str, new_password: str) -> None:
    """Change a user's own password; the current one must be given.

    Every session of the user ends, this one too: the caller signs it in again.
    """
    if not user.check_password(current_password):
        raise InvalidInput.at("current_password", "The current password is not right.")
    if not MIN_PASSWORD_LENGTH <= len(new_password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput.at(
            "new_password",
            f"Choose a password of {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
        )
    if new_password == current_password:
        raise InvalidInput.at("new_password", "Choose a password different from the current one.")
    user.set_password(new_password)
    user.end_sessions()
    db.session.flush()


# -- teams ---------------------------------------------------------------------------------


def get_team(team_id: str) -> Team:
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound("No such team.")
    return team


def teams_query() -> sa.Select[tuple[Team]]:
    return sa.select(Team).order_by(Team.name)


def all_teams() -> list[Team]:
    return list(db.session.scalars(teams_query()))


def summarise_teams(teams: Sequence[Team]) -> list[TeamSummary]:
    """The teams with their member counts, counted in one query."""
    ids = [team.id for team in teams]
    counts: dict[str, int] = {}
    if ids:
        rows = db.session.execute(
            sa.select(TeamMembership.team_id, sa.func.count())
            .where(TeamMembership.team_id.in_(ids))
            .group_by(TeamMembership.team_id)
        )
        counts = {team_id: count for team_id, count in rows}
    return [TeamSummary(team, counts.get(team.id, 0)) for team in teams]


def team_name_taken(name: str) -> bool:
    # Case-insensitive: "Payments" and "payments" side by side would only confuse.
    found = db.session.scalar(
        sa.select(Team.id).where(sa.func.lower(Team.name) == name.strip().lower()).limit(1)
    )
    return found is not None


def create_team(*, name: str, chat_channel: str | None = None) -> Team:
    name = name.strip()
    problems = []
    if not name or len(name) > 100:
        problems.append(Problem("name", "Enter a team name of 1 to 100 characters."))
    elif team_name_taken(name):
        problems.append(Problem("name", "A team with this name already exists."))
    chat_channel = (chat_channel or "").strip() or None
    if chat_channel is not None and not CHAT_CHANNEL.fullmatch(chat_channel):
        problems.append(
            Problem(
                "chat_channel",
                "Write the channel like #payments-oncall: a # and then letters, digits, "
                "'.', '-' or '_' (at most 100 characters).",
            )
        )
    if problems:
        raise InvalidInput("The team was not created.", problems=problems)
    team = Team(name=name, chat_channel=chat_channel)
    try:
        with db.session.begin_nested():
            db.session.add(team)
            db.session.flush()
    except IntegrityError:
        raise InvalidInput.at("name", "A team with this name already exists.") from None
    return team


def team_members(team: Team) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .join(TeamMembership, TeamMembership.user_id == User.id)
            .where(TeamMembership.team_id == team.id)
            .order_by(User.last_name, User.first_name, User.email)
        )
    )


def users_who_can_join(team: Team) -> list[User]:
    """Active users not yet in the team."""
    in_team = sa.select(TeamMembership.user_id).where(TeamMembership.team_id == team.id)
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.is_active.is_(True), User.id.not_in(in_team))
            .order_by(User.last_name, User.first_name, User.email)
        )
    )


def add_member(team_id: str, user_id: str) -> TeamMembership:
    team = get_team(team_id)
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidInput.at("user_id", "Choose an active user.")
    if db.session.get(TeamMembership, (team.id, user.id)) is not None:
        raise InvalidInput.at("user_id", f"{user.full_name} is already in {team.name}.")
    membership = TeamMembership(team_id=team.id, user_id=user.id)
    try:
        with db.session.begin_nested():
            db.session.add(membership)
            db.session.flush()
    except IntegrityError:
        raise InvalidInput.at("user_id", f"{user.full_name} is already in {team.name}.") from None
    return membership


def remove_member(team_id: str, user_id: str) -> User:
    team = get_team(team_id)
    membership = db.session.get(TeamMembership, (team.id, user_id))
    if membership is None:
        raise NotFound("That user is not in this team.")
    user = membership.user
    db.session.delete(membership)
    db.session.flush()
    return user
