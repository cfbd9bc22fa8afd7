"""What incident input may look like: one set of pydantic models for forms and the API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from app.incidents.enums import ChangeSource, IncidentEventType, IncidentPriority, IncidentStatus
from app.incidents.models import SERVICE_MAX_LENGTH, TITLE_MAX_LENGTH

DESCRIPTION_MAX_LENGTH = 10_000
METADATA_MAX_KEYS = 50
METADATA_MAX_BYTES = 16_384


class _Input(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX_LENGTH)]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX_LENGTH)]
Service = Annotated[str, Field(max_length=SERVICE_MAX_LENGTH, pattern=r"^[^\x00-\x1f]*$")]


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"Metadata may have at most {METADATA_MAX_KEYS} keys.")
    for key in value:
        if not key or len(key) > 100:
            raise ValueError("Metadata keys must be 1 to 100 characters long.")
    if len(json.dumps(value, separators=(",", ":"))) > METADATA_MAX_BYTES:
        raise ValueError(f"Metadata may be at most {METADATA_MAX_BYTES // 1024} KB as JSON.")
    return value


class IncidentCreate(_Input):
    """A new incident. ``teamId`` may be left out by a user who belongs to exactly one team."""

    title: Title
    description: Description = ""
    priority: IncidentPriority = IncidentPriority.P3
    service: Service | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    team_id: str | None = Field(default=None, max_length=64)
    assignee_id: str | None = Field(default=None, max_length=64)

    _metadata = field_validator("metadata")(check_metadata)

    @field_validator("service")
    @classmethod
    def _blank_service_is_none(cls, value: str | None) -> str | None:
        return value or None


class IncidentUpdate(_Input):
    """A change to an incident's details. Only the fields sent are changed."""

    title: Title | None = None
    description: Description | None = None
    priority: IncidentPriority | None = None
    service: Service | None = None
    metadata: dict[str, Any] | None = None
    assignee_id: str | None = Field(default=None, max_length=64)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            # Sent as null (left out, it is not validated): metadata is always an object.
            raise ValueError("Metadata must be a JSON object; send {} to clear it.")
        return check_metadata(value)

    @field_validator("title", "priority", "description")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("This field cannot be empty.")
        return value


class _Output(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class UserRef(_Output):
    id: str
    email: str
    name: str


class TeamRef(_Output):
    id: str
    name: str


class IncidentOut(_Output):
    id: str
    title: str
    description: str
    priority: IncidentPriority
    status: IncidentStatus
    service: str | None
    metadata: dict[str, Any]
    team: TeamRef
    assignee: UserRef | None
    escalation_level: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class IncidentEventOut(_Output):
    id: int
    type: IncidentEventType
    changes: dict[str, Any]
    actor: UserRef | None
    source: ChangeSource
    created_at: datetime
