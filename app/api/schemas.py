"""API-only shapes: the list query, list envelopes, and model -> output conversion.

Request bodies reuse ``app.incidents.schemas`` (the same models the pages use).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.auth.models import Team, User
from app.incidents.enums import IncidentPriority, IncidentStatus
from app.incidents.models import SERVICE_MAX_LENGTH, TITLE_MAX_LENGTH, Incident, IncidentEvent
from app.incidents.schemas import IncidentEventOut, IncidentOut, TeamRef, UserRef
from app.incidents.view import FIELDS, incident_view
from app.input_policy import MAX_PAGE

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25

# Every list query's paging parameters: field types rather than a base class, so each
# query keeps its parameters (and their order in the OpenAPI document) as it lists them.
PageNumber = Annotated[int, Field(ge=1, le=MAX_PAGE, description="The page, from 1.")]
PerPage = Annotated[int, Field(ge=1, le=MAX_PER_PAGE, description="Items per page.")]


class IncidentListQuery(BaseModel):
    """Filters and paging for ``GET /incidents``. Unknown parameters are refused, so a
    misspelt filter (``per_page``) is an error rather than silently ignored."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, alias_generator=to_camel, populate_by_name=False
    )

    team: str | None = Field(default=None, max_length=64, description="A team's id.")
    status: IncidentStatus | None = None
    priority: IncidentPriority | None = None
    service: str | None = Field(
        default=None, max_length=SERVICE_MAX_LENGTH, description="The exact service name."
    )
    q: str | None = Field(
        default=None,
        max_length=TITLE_MAX_LENGTH,
        description="Text the title contains (case-insensitive).",
    )
    page: PageNumber = 1
    per_page: PerPage = DEFAULT_PER_PAGE


class _Output(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class IncidentPage(_Output):
    """One page of incidents, newest first."""

    items: list[IncidentOut]
    page: int
    per_page: int
    total: int
    pages: int


class IncidentEventList(_Output):
    """An incident's timeline, oldest first."""

    items: list[IncidentEventOut]


def user_ref(user: User | None) -> UserRef | None:
    if user is None:
        return None
    return UserRef(id=user.id, email=user.email, name=user.full_name)


def team_ref(team: Team) -> TeamRef:
    return TeamRef(id=team.id, name=team.name)


#: The incident's own fields the API shows under their own names; ``metadata`` is named
#: without Python's underscore, and the team and assignee are shown as references.
_OUT_FIELDS = tuple(name for name in IncidentOut.model_fields if name in FIELDS)


def incident_out(incident: Incident) -> IncidentOut:
    fields = incident_view(incident)
    return IncidentOut(
        **{name: fields[name] for name in _OUT_FIELDS},
        metadata=fields["metadata_"],
        team=team_ref(incident.team),
        assignee=user_ref(incident.assignee),
    )


def event_out(event: IncidentEvent) -> IncidentEventOut:
    return IncidentEventOut(
        id=event.id,
        type=event.type,
        changes=event.changes,
        actor=user_ref(event.actor),
        source=event.source,
        created_at=event.created_at,
    )
