"""Request and response shapes of the workflow operations under /api/v1.

A definition in a request is taken as any JSON object and validated by
``app.workflows.schema`` inside the service, so an API client gets exactly the
locations the schema reports (``definition.nodes[2].data.config.url``) rather
than pydantic's. The OpenAPI document still describes it with the schema's own
JSON Schema.

No response model has a field for a secret's value: secrets are write-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from app.api.errors import NO_CONTROL_CHARACTERS
from app.api.schemas import DEFAULT_PER_PAGE, PageNumber, PerPage
from app.auth.models import User
from app.incidents.schemas import UserRef
from app.workflows.enums import ScopeType, TemplateCategory
from app.workflows.models import Workflow, WorkflowVersion
from app.workflows.schema import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_VERSION,
    WorkflowDefinition,
)
from app.workflows.secrets import MAX_SECRET_LENGTH

MAX_CHANGE_NOTE_LENGTH = 2_000


class _DocumentedAsDefinition:
    """Documents a plain JSON object with the definition schema's own JSON Schema."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(WorkflowDefinition.__pydantic_core_schema__)


# Any JSON object: as sent (validated by the definition schema in the service) or as
# stored (the schema's canonical JSON).
DefinitionJson = Annotated[dict[str, Any], _DocumentedAsDefinition()]

WorkflowName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description=f"1 to {MAX_NAME_LENGTH} characters.",
    ),
]
WorkflowDescription = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_DESCRIPTION_LENGTH,
        description=f"1 to {MAX_DESCRIPTION_LENGTH} characters.",
    ),
]


class _Input(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, alias_generator=to_camel, populate_by_name=True
    )


class _Query(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, alias_generator=to_camel, populate_by_name=False
    )

    page: PageNumber = 1
    per_page: PerPage = DEFAULT_PER_PAGE


class _Output(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# --- requests ---------------------------------------------------------------


class WorkflowCreate(_Input):
    """A new, disabled workflow. Without a definition it starts as a manual trigger alone.

    ``name`` and ``description`` replace those inside ``definition``.
    """

    name: WorkflowName
    description: WorkflowDescription
    scope_type: ScopeType = Field(
        default=ScopeType.TEAM, description="'global' is for admins only."
    )
    team_id: str | None = Field(
        default=None, max_length=64, description="Required for a team workflow."
    )
    definition: DefinitionJson | None = Field(
        default=None, description="A whole definition, validated by the definition schema."
    )


class DefinitionUpdate(_Input):
    """The next version of a workflow's definition.

    ``baseVersion`` is the version the change was made on; if the workflow has
    moved on since, nothing is saved and the answer is 409 ``version_conflict``.
    """

    definition: DefinitionJson = Field(
        description="The whole definition; its id, version and settings.enabled are set "
        "from the workflow."
    )
    base_version: int = Field(
        ge=1, le=MAX_VERSION, description="The version this definition was edited from."
    )
    change_note: str | None = Field(
        default=None,
        max_length=MAX_CHANGE_NOTE_LENGTH,
        description="What changed and why, for the history.",
    )


class TemplateUse(_Input):
    """A new, disabled workflow copied from a template (secrets only if asked)."""

    scope_type: ScopeType = Field(
        default=ScopeType.TEAM, description="'global' is for admins only."
    )
    team_id: str | None = Field(
        default=None, max_length=64, description="Required for a team workflow."
    )
    name: WorkflowName | None = Field(default=None, description="Defaults to the template's.")
    copy_secrets: bool = Field(
        default=False,
        description="Copy the secrets of the workflow the template was saved from (you "
        "must be allowed to edit it); values are never shown, each copy is audited.",
    )


class SecretIn(BaseModel):
    """A secret's value: stored encrypted, never shown again. Taken exactly as sent."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=MAX_SECRET_LENGTH, description="Write-only.")


class WorkflowListQuery(_Query):
    """Filters and paging for ``GET /workflows``; unknown parameters are refused."""

    scope: ScopeType | None = None
    team: str | None = Field(default=None, max_length=64, description="A team's id.")
    enabled: bool | None = Field(default=None, description="Only enabled (or disabled) ones.")
    q: str | None = Field(
        default=None,
        max_length=MAX_NAME_LENGTH,
        description="Text the name contains (case-insensitive).",
    )


class VersionListQuery(_Query):
    """Paging for ``GET /workflows/{id}/versions``."""


class BacktestQuery(BaseModel):
    """What ``GET /workflows/{id}/backtest`` replays."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)

    days: int = Field(default=7, ge=1, le=90, description="The window: the last N days.")
    sample: int = Field(
        default=20, ge=0, le=100, description="How many runs get their requests rendered."
    )
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="A version; the current one if absent."
    )


class BacktestIn(_Input):
    """A definition to backtest as this workflow (a draft), without saving it."""

    definition: DefinitionJson = Field(description="A whole definition, validated as on save.")
    days: int = Field(default=7, ge=1, le=90, description="The window: the last N days.")
    sample: int = Field(
        default=20, ge=0, le=100, description="How many runs get their requests rendered."
    )


class TemplateListQuery(BaseModel):
    """Filter for ``GET /templates``."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)

    category: TemplateCategory | None = None


# --- responses --------------------------------------------------------------


class WorkflowOut(_Output):
    id: str
    name: str
    description: str
    scope_type: ScopeType
    team_id: str | None
    version: int = Field(description="The current version; send it as baseVersion.")
    is_enabled: bool
    is_template: bool
    template_category: TemplateCategory | None
    definition: DefinitionJson
    created_at: datetime
    updated_at: datetime
    created_by: UserRef


class WorkflowPage(_Output):
    """One page of workflows, by name."""

    items: list[WorkflowOut]
    page: int
    per_page: int
    total: int
    pages: int


class TemplateList(_Output):
    """The template gallery (retired templates left out), by category, then name."""

    items: list[WorkflowOut]


class VersionSummary(_Output):
    version: int
    change_note: str | None
    changed_by: UserRef
    created_at: datetime


class BacktestStepOut(_Output):
    node_id: str
    name: str
    kind: str
    status: str = Field(description="would run, would wait, skipped or failed.")
    detail: dict[str, Any] = Field(
        description="A condition's field, expected and actual value; a delay's minutes; "
        "for sampled runs an action's request (secrets masked) or its error."
    )


class BacktestRunOut(_Output):
    incident_id: str
    incident_title: str = Field(description="As it was at the event.")
    at: datetime
    event_id: int | None = Field(description="None for an age trigger.")
    event_type: str
    sampled: bool
    path: list[str] = Field(description="The names of the nodes it would run.")
    steps: list[BacktestStepOut]


class BacktestPathOut(_Output):
    path: list[str]
    runs: int


class BacktestOut(_Output):
    """What a definition would have done: runs, paths, and a sample's requests."""

    workflow_id: str
    source: str = Field(description="'version' or 'definition' (a draft sent in the body).")
    version: int | None
    since: datetime
    until: datetime
    days: int
    trigger_type: str
    considered: int = Field(description="Events of the trigger's type in the window and scope.")
    matched: int = Field(description="Runs it would have started.")
    incidents: int
    sample: int
    elapsed_ms: int
    notes: list[str]
    paths: list[BacktestPathOut]
    runs: list[BacktestRunOut] = Field(description="The first 1,000, oldest first.")


class VersionOut(VersionSummary):
    definition: DefinitionJson


class VersionPage(_Output):
    """One page of a workflow's history, newest first."""

    items: list[VersionSummary]
    page: int
    per_page: int
    total: int
    pages: int


class SecretOut(_Output):
    """A stored secret: its name and which nodes use it, never its value."""

    name: str
    updated_at: datetime
    used_by: list[str] = Field(description="Ids of the nodes whose requests use it.")


class MissingSecret(_Output):
    """A secret the definition uses that has not been set."""

    name: str
    used_by: list[str]


class SecretList(_Output):
    """A workflow's secrets (names only) and the ones its definition still needs."""

    items: list[SecretOut]
    missing: list[MissingSecret] = Field(
        description="Needed before the workflow can be enabled: PUT each one."
    )


# --- rows -> responses ------------------------------------------------------


def user_out(user: User) -> UserRef:
    return UserRef(id=user.id, email=user.email, name=user.full_name)


def workflow_out(workflow: Workflow) -> WorkflowOut:
    return WorkflowOut(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        scope_type=workflow.scope_type,
        team_id=workflow.team_id,
        version=workflow.version,
        is_enabled=workflow.is_enabled,
        is_template=workflow.is_template,
        template_category=workflow.template_category,
        definition=workflow.definition,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        created_by=user_out(workflow.created_by),
    )


def version_summary(version: WorkflowVersion) -> VersionSummary:
    return VersionSummary(
        version=version.version,
        change_note=version.change_note,
        changed_by=user_out(version.changed_by),
        created_at=version.created_at,
    )


def version_out(version: WorkflowVersion) -> VersionOut:
    return VersionOut(
        version=version.version,
        change_note=version.change_note,
        changed_by=user_out(version.changed_by),
        created_at=version.created_at,
        definition=version.definition,
    )
