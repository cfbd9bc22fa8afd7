"""Workflow operations: create, save a version, roll back, enable, delete, templates.

Every definition is validated by ``app.workflows.schema`` before it is stored;
every stored definition is the schema's canonical JSON. Functions flush and
never commit: the caller (page, API, CLI) owns the transaction.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from app.auth.models import Team, User
from app.auth.permissions import can_access_team, member_team_ids
from app.db import utcnow
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, Problem
from app.extensions import db
from app.ops import audit
from app.ops.models import AuditAction
from app.workflows import secrets as secret_store
from app.workflows.enums import ExecutionStatus, ScopeType, TemplateCategory
from app.workflows.models import Workflow, WorkflowExecution, WorkflowVersion
from app.workflows.schema import WorkflowDefinition, parse_definition, parse_definition_json

IN_FLIGHT = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)


# --- who may see and edit -------------------------------------------------


def visible_workflows(user: User, *, templates: bool = False) -> sa.Select[Workflow]:
    query = sa.select(Workflow).where(Workflow.is_template.is_(templates))
    if user.is_admin or templates:
        return query
    return query.where(
        sa.or_(Workflow.scope_type == ScopeType.GLOBAL, Workflow.team_id.in_(member_team_ids(user)))
    )


def get_workflow(user: User, workflow_id: str, *, for_update: bool = False) -> Workflow:
    """A workflow or template the user may see; NotFound otherwise (never Forbidden)."""
    query = sa.select(Workflow).where(Workflow.id == workflow_id)
    if for_update:
        query = query.with_for_update()
    workflow = db.session.scalars(query).first()
    if workflow is None or not can_view(user, workflow):
        raise NotFound("No such workflow.")
    return workflow


def can_view(user: User, workflow: Workflow) -> bool:
    return (
        user.is_admin
        or workflow.is_template
        or workflow.scope_type == ScopeType.GLOBAL
        or can_access_team(user, workflow.team_id)
    )


def can_edit(user: User, workflow: Workflow) -> bool:
    """Admins edit everything; members edit their own teams' workflows, nothing global."""
    if user.is_admin:
        return True
    if workflow.is_template or workflow.scope_type == ScopeType.GLOBAL:
        return False
    return can_access_team(user, workflow.team_id)


def require_edit(user: User, workflow: Workflow) -> None:
    if not can_edit(user, workflow):
        raise Forbidden(
            "Only admins can change global workflows and templates."
            if workflow.scope_type == ScopeType.GLOBAL or workflow.is_template
            else "You can only change your own teams' workflows."
        )


def _check_scope(
    user: User, scope: ScopeType | str, team_id: str | None
) -> tuple[ScopeType, str | None]:
    try:
        scope = ScopeType(scope)
    except ValueError as error:
        raise InvalidInput.at("scopeType", "Choose 'team' or 'global'.") from error
    if scope == ScopeType.GLOBAL:
        if not user.is_admin:
            raise Forbidden("Only admins can create global workflows.")
        return scope, None
    if not team_id or db.session.get(Team, team_id) is None:
        raise InvalidInput.at("teamId", "Choose the team this workflow belongs to.")
    if not can_access_team(user, team_id):
        raise Forbidden("You can only create workflows for your own teams.")
    return scope, team_id


# --- definitions ----------------------------------------------------------


def starter_definition(name: str, description: str) -> dict[str, Any]:
    """A new workflow: a manual trigger and nothing else yet."""
    return {
        "id": "draft",
        "name": name,
        "description": description,
        "version": 1,
        "nodes": [
            {
                "id": "trigger",
                "type": "trigger",
                "position": {"x": 0, "y": 0},
                "data": {"name": "Run by hand"},
            }
        ],
        "edges": [],
        "trigger": {"type": "manual", "conditions": []},
        "settings": {"timeout": "5min", "enabled": False},
    }


def validate_definition(
    data: Any, workflow: Workflow | None = None, *, check_secrets: bool = False
) -> WorkflowDefinition:
    """The schema's verdict. With ``check_secrets``, every secret used must exist."""
    names = secret_store.secret_names(workflow) if (workflow and check_secrets) else None
    return parse_definition(data, secret_names=names)


def _canonical(defn: WorkflowDefinition, workflow: Workflow, version: int) -> dict[str, Any]:
    """The stored form: the schema's JSON, with id, version and enabled from the row."""
    data = defn.to_json()
    data["id"] = workflow.id
    data["version"] = version
    data["settings"] = {**data["settings"], "enabled": workflow.is_enabled}
    return data


def _definition_or_error(data: Any) -> WorkflowDefinition:
    try:
        return parse_definition(data)
    except ValidationError as error:
        raise DefinitionInvalid(error) from error


class DefinitionInvalid(InvalidInput):
    """The definition failed the schema; ``.validation_error`` has each location."""

    def __init__(self, error: ValidationError) -> None:
        from app.errors import Problem
        from app.workflows.schema import definition_errors

        problems = [Problem(e.loc, e.message) for e in definition_errors(error)]
        super().__init__(
            "The workflow definition has problems; see each one below.", problems=problems
        )
        self.validation_error = error


class NotReady(InvalidInput):
    """Enabling refused: ``problems`` lists every blocker at once (``enable_blockers``)."""


# --- create, save, roll back ---------------------------------------------


def create_workflow(
    user: User,
    *,
    name: str,
    description: str,
    scope: ScopeType | str,
    team_id: str | None = None,
    definition: dict[str, Any] | None = None,
    change_note: str | None = None,
) -> Workflow:
    workflow = _new_workflow(
        user,
        name=name,
        description=description,
        scope=scope,
        team_id=team_id,
        definition=definition,
        change_note=change_note,
    )
    audit.record(user, AuditAction.WORKFLOW_CREATED, workflow, version=1)
    return workflow


def _new_workflow(
    user: User,
    *,
    name: str,
    description: str,
    scope: ScopeType | str,
    team_id: str | None = None,
    definition: dict[str, Any] | None = None,
    change_note: str | None = None,
) -> Workflow:
    """A new workflow and its version 1 (callers record the audit entry for their action)."""
    scope, team_id = _check_scope(user, scope, team_id)
    data = copy.deepcopy(definition) if definition else starter_definition(name, description)
    data["name"], data["description"] = name, description
    defn = _definition_or_error(data)
    workflow = Workflow(
        name=defn.name,
        description=defn.description,
        version=1,
        definition={},
        scope_type=scope,
        team_id=team_id,
        is_enabled=False,
        created_by_id=user.id,
    )
    db.session.add(workflow)
    db.session.flush()
    workflow.definition = _canonical(defn, workflow, 1)
    db.session.add(
        WorkflowVersion(
            workflow_id=workflow.id,
            version=1,
            definition=workflow.definition,
            changed_by_id=user.id,
            change_note=change_note or "Created",
        )
    )
    db.session.flush()
    return workflow


def save_version(
    user: User,
    workflow: Workflow,
    definition: Any,
    *,
    base_version: int,
    change_note: str | None = None,
) -> WorkflowVersion:
    """Store ``definition`` as the next version, unless someone saved since ``base_version``."""
    require_edit(user, workflow)
    if base_version != workflow.version:
        raise Conflict(
            f"This draft was based on version {base_version}, but version {workflow.version} "
            "has been saved since. Your draft is kept: compare it with the new version, "
            "then save again."
        )
    defn = _definition_or_error(definition)
    _require_runnable_if_enabled(workflow, defn)
    version = _append_version(user, workflow, defn, change_note)
    audit.record(user, AuditAction.WORKFLOW_VERSION_SAVED, workflow, version=version.version)
    return version


def _check_runnable(workflow: Workflow, definition: dict[str, Any]) -> None:
    """What an enabled workflow needs: no template blanks left, and every secret it names."""
    from app.errors import Problem
    from app.workflows.templates_builtin import unfilled_placeholders

    blanks = unfilled_placeholders(definition)
    if blanks:
        # A workflow made from a template runs only once its blanks are filled in.
        raise InvalidInput(
            "Fill in the template's blanks first.",
            problems=[Problem(p.loc, f"Fill in {p.hint}.") for p in blanks],
        )
    try:
        validate_definition(definition, workflow, check_secrets=True)
    except ValidationError as error:
        raise DefinitionInvalid(error) from error


def enable_blockers(workflow: Workflow, definition: dict[str, Any]) -> list[Problem]:
    """Everything that stops ``definition`` from being enabled, all at once: template
    blanks to fill, schema problems (a secret that does not exist included) and webhook
    bodies that cannot be JSON for a sample incident. One problem per place."""
    from app.engine.sample_render import json_body_problems
    from app.workflows.schema import definition_errors
    from app.workflows.templates_builtin import unfilled_placeholders

    found = [Problem(p.loc, f"Fill in {p.hint}.") for p in unfilled_placeholders(definition)]
    try:
        validate_definition(definition, workflow, check_secrets=True)
    except ValidationError as error:
        found += [Problem(e.loc, e.message) for e in definition_errors(error)]
    found += [Problem(p.loc, p.message) for p in json_body_problems(definition)]
    placed: set[str] = set()
    blockers = []
    for problem in found:
        if problem.loc not in placed:
            placed.add(problem.loc)
            blockers.append(problem)
    return blockers


def _require_runnable_if_enabled(workflow: Workflow, defn: WorkflowDefinition) -> None:
    """An enabled workflow must stay runnable, whatever version it moves to."""
    if workflow.is_enabled:
        _check_runnable(workflow, defn.to_json())


def _append_version(
    user: User, workflow: Workflow, defn: WorkflowDefinition, change_note: str | None
) -> WorkflowVersion:
    number = workflow.version + 1
    stored = _canonical(defn, workflow, number)
    workflow.version = number
    workflow.definition = stored
    workflow.name, workflow.description = defn.name, defn.description
    version = WorkflowVersion(
        workflow_id=workflow.id,
        version=number,
        definition=stored,
        changed_by_id=user.id,
        change_note=(change_note or "").strip()[:2000] or None,
    )
    db.session.add(version)
    try:
        db.session.flush()
    except IntegrityError as error:
        # Two saves of the same base version raced; the unique (workflow, version) caught it.
        raise Conflict(
            "Someone saved this workflow at the same moment. Reload and save again."
        ) from error
    return version


def get_version(workflow: Workflow, number: int) -> WorkflowVersion:
    version: WorkflowVersion | None = db.session.scalar(
        sa.select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == number
        )
    )
    if version is None:
        raise NotFound(f"Version {number} does not exist.")
    return version


def rollback(user: User, workflow: Workflow, to_version: int) -> WorkflowVersion:
    """A new version equal to an old one; history is never rewritten."""
    require_edit(user, workflow)
    target = get_version(workflow, to_version)
    defn = _definition_or_error(target.definition)
    _require_runnable_if_enabled(workflow, defn)
    version = _append_version(user, workflow, defn, f"Rolled back to v{to_version}")
    audit.record(
        user,
        AuditAction.WORKFLOW_ROLLED_BACK,
        workflow,
        version=version.version,
        to_version=to_version,
    )
    return version


# --- enable, delete, duplicate -------------------------------------------


def set_enabled(user: User, workflow: Workflow, enabled: bool) -> None:
    """Enable only a workflow that validates and has every secret it names."""
    require_edit(user, workflow)
    if workflow.is_template:
        raise InvalidInput.at("isEnabled", "Templates are never enabled; use the template instead.")
    if enabled:
        blockers = enable_blockers(workflow, workflow.definition)
        if blockers:
            count = len(blockers)
            raise NotReady(
                f"This workflow cannot be enabled yet: {count} thing{'s' if count > 1 else ''} "
                "to fix, each listed with its place.",
                problems=blockers,
            )
    if workflow.is_enabled != enabled:
        action = AuditAction.WORKFLOW_ENABLED if enabled else AuditAction.WORKFLOW_DISABLED
        audit.record(user, action, workflow, version=workflow.version)
    workflow.is_enabled = enabled
    workflow.definition = {
        **workflow.definition,
        "settings": {**workflow.definition["settings"], "enabled": enabled},
    }
    db.session.flush()


def runs_in_flight(workflow: Workflow) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(WorkflowExecution)
            .where(
                WorkflowExecution.workflow_id == workflow.id,
                WorkflowExecution.status.in_(IN_FLIGHT),
            )
        )
        or 0
    )


def delete_workflow(user: User, workflow: Workflow) -> None:
    """Delete a workflow, its versions, secrets and finished runs; never one with runs in flight."""
    require_edit(user, workflow)
    in_flight = runs_in_flight(workflow)
    if in_flight:
        raise Conflict(
            f"{in_flight} run{'s are' if in_flight > 1 else ' is'} still in flight. "
            "Wait for them to end or cancel them, then delete the workflow."
        )
    audit.record(user, AuditAction.WORKFLOW_DELETED, workflow, version=workflow.version)
    db.session.execute(
        sa.delete(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow.id)
    )
    db.session.delete(workflow)
    db.session.flush()


def duplicate_workflow(
    user: User,
    workflow: Workflow,
    *,
    scope: ScopeType | str | None = None,
    team_id: str | None = None,
    name: str | None = None,
    copy_secrets: bool = False,
) -> Workflow:
    """A disabled copy. Its secrets are copied only when asked (``copy_secrets``), by
    someone who may edit the original; otherwise they must be entered again."""
    if copy_secrets:
        _require_secret_source(user, workflow)
    copied = _new_workflow(
        user,
        name=(name or f"Copy of {workflow.name}")[:200],
        description=workflow.description,
        scope=scope or workflow.scope_type,
        team_id=team_id if scope else workflow.team_id,
        definition=workflow.definition,
        change_note=f"Copied from {workflow.name} v{workflow.version}",
    )
    audit.record(
        user,
        AuditAction.WORKFLOW_DUPLICATED,
        copied,
        source_workflow_id=workflow.id,
        source_name=workflow.name,
        source_version=workflow.version,
    )
    if copy_secrets:
        secret_store.copy_secrets(workflow, copied, actor=user)
    return copied


def _require_secret_source(user: User, source: Workflow) -> None:
    if not can_edit(user, source):
        raise Forbidden(
            "You can only copy the secrets of a workflow you may edit; "
            "leave them out and add them again."
        )


def secret_source(user: User, workflow: Workflow) -> Workflow | None:
    """Where a copy of ``workflow`` (a workflow, or a template saved from one) may take
    secrets from: the workflow itself or the template's source, if it has secrets and
    the user may edit it; None otherwise."""
    source: Workflow | None = workflow
    if workflow.is_template:
        source = (
            db.session.get(Workflow, workflow.template_source_id)
            if workflow.template_source_id
            else None
        )
    if source is None or not can_edit(user, source) or not source.secrets:
        return None
    return source


# --- templates ------------------------------------------------------------


def templates_by_category(
    search: str = "", category: TemplateCategory | None = None
) -> dict[TemplateCategory, list[Workflow]]:
    """The gallery: templates by category, without retired ones.

    ``search`` keeps templates whose name or description contains it (any case);
    ``category`` keeps that category's section only.
    """
    categories = [category] if category is not None else list(TemplateCategory)
    grouped: dict[TemplateCategory, list[Workflow]] = {c: [] for c in categories}
    query = (
        sa.select(Workflow)
        .where(Workflow.is_template.is_(True), Workflow.retired_at.is_(None))
        .order_by(Workflow.name)
    )
    if category is not None:
        query = query.where(Workflow.template_category == category)
    if search.strip():
        escaped = search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            sa.or_(
                Workflow.name.ilike(f"%{escaped}%", escape="\\"),
                Workflow.description.ilike(f"%{escaped}%", escape="\\"),
            )
        )
    for template in db.session.scalars(query):
        if template.template_category is not None:
            grouped[template.template_category].append(template)
    return grouped


def use_template(
    user: User,
    template: Workflow,
    *,
    scope: ScopeType | str,
    team_id: str | None = None,
    name: str | None = None,
    copy_secrets: bool = False,
) -> Workflow:
    """A disabled workflow from a template. With ``copy_secrets``, a template saved from
    a workflow gives the new one that workflow's secrets (for someone who may edit it)."""
    if not template.is_template or template.retired_at is not None:
        raise NotFound("No such template.")
    source = None
    if copy_secrets:
        if template.template_source_id is None:
            raise InvalidInput.at(
                "copySecrets", "This template was not saved from a workflow: it has no secrets."
            )
        source = db.session.get(Workflow, template.template_source_id)
        if source is None:
            raise InvalidInput.at(
                "copySecrets", "The workflow this template was saved from has been deleted."
            )
        _require_secret_source(user, source)
    workflow = _new_workflow(
        user,
        name=(name or template.name)[:200],
        description=template.description,
        scope=scope,
        team_id=team_id,
        definition=template.definition,
        change_note=f"Created from template {template.name}",
    )
    audit.record(
        user,
        AuditAction.TEMPLATE_USED,
        workflow,
        template_id=template.id,
        template_name=template.name,
    )
    if source is not None:
        secret_store.copy_secrets(source, workflow, actor=user)
    return workflow


def save_as_template(
    user: User, workflow: Workflow, category: TemplateCategory | str, *, name: str | None = None
) -> Workflow:
    if not user.is_admin:
        raise Forbidden("Only admins can manage templates.")
    try:
        category = TemplateCategory(category)
    except ValueError as error:
        raise InvalidInput.at(
            "templateCategory", "Choose Ticketing, Communication or Auto-resolution."
        ) from error
    template = _new_workflow(
        user,
        name=(name or workflow.name)[:200],
        description=workflow.description,
        scope=ScopeType.GLOBAL,
        definition=workflow.definition,
        change_note=f"Saved as a template from {workflow.name}",
    )
    template.is_template = True
    template.template_category = category
    template.template_source_id = workflow.id
    audit.record(
        user,
        AuditAction.TEMPLATE_SAVED,
        template,
        source_workflow_id=workflow.id,
        source_name=workflow.name,
        category=category.value,
    )
    db.session.flush()
    return template


def _require_template_admin(user: User, template: Workflow) -> None:
    if not template.is_template:
        raise NotFound("No such template.")
    if not user.is_admin:
        raise Forbidden("Only admins can manage templates.")


def _category(value: TemplateCategory | str) -> TemplateCategory:
    try:
        return TemplateCategory(value)
    except ValueError as error:
        raise InvalidInput.at(
            "templateCategory", "Choose Ticketing, Communication or Auto-resolution."
        ) from error


def update_template(
    user: User,
    template: Workflow,
    *,
    name: str,
    description: str,
    category: TemplateCategory | str,
) -> Workflow:
    """Change a template's name, description or category (admins).

    A new name or description is a new version, like any other edit of the definition.
    """
    _require_template_admin(user, template)
    before = (template.name, template.description, template.template_category)
    template.template_category = _category(category)
    if (name, description) != (template.name, template.description):
        data = {**template.definition, "name": name, "description": description}
        _append_version(user, template, _definition_or_error(data), "Template details edited")
    after = (template.name, template.description, template.template_category)
    fields = ("name", "description", "category")
    changed = [f for f, b, a in zip(fields, before, after, strict=True) if b != a]
    if changed:
        audit.record(
            user, AuditAction.TEMPLATE_UPDATED, template, version=template.version, changed=changed
        )
    db.session.flush()
    return template


def retire_template(user: User, template: Workflow) -> None:
    """Take a template out of the gallery. It is kept, so it is never installed again."""
    _require_template_admin(user, template)
    if template.retired_at is None:
        template.retired_at = utcnow()
        audit.record(user, AuditAction.TEMPLATE_RETIRED, template)
        db.session.flush()


# --- list page, export and import ----------------------------------------


def search_workflows(
    user: User,
    *,
    scope: ScopeType | None = None,
    team_id: str | None = None,
    enabled: bool | None = None,
    category: TemplateCategory | None = None,
    q: str | None = None,
) -> sa.Select[Workflow]:
    """Workflows (not templates) the user may see, filtered: the one filter behind the
    list page and the API's list. ``q`` is text the name contains, in any case.
    Unordered: each list orders its own."""
    query = visible_workflows(user)
    if scope is not None:
        query = query.where(Workflow.scope_type == scope)
    if team_id:
        query = query.where(Workflow.team_id == team_id)
    if enabled is not None:
        query = query.where(Workflow.is_enabled.is_(enabled))
    if category is not None:
        query = query.where(Workflow.template_category == category)
    if q and q.strip():
        pattern = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Workflow.name.ilike(f"%{pattern}%", escape="\\"))
    return query


def count_workflows(workflows: sa.Select[Workflow]) -> int:
    """How many workflows a search selects, counted on the workflow table alone (no
    latest-run lookup: the total needs none)."""
    counted = workflows.with_only_columns(sa.func.count(), maintain_column_froms=True)
    return db.session.scalar(counted.order_by(None)) or 0


def with_last_run(workflows: sa.Select[Workflow], now: datetime | None = None) -> sa.Select[Any]:
    """Each workflow ``workflows`` selects, with its team, the status and creation time of
    its latest run, and its runs, failures and latest failure in the 24 hours before
    ``now``, in one query: no query per row.

    Rows: (workflow, last status, last run at, runs in 24 h, failures in 24 h, last
    failed run id, last failed at). Order and page ``workflows`` before passing it: the
    lookups are for the workflows it selects alone, each through the
    ``(workflow_id, created_at)`` and ``(workflow_id, status)`` indexes. The rows come
    unordered; order them again."""
    since = (now or utcnow()) - timedelta(hours=24)
    chosen = workflows.with_only_columns(Workflow.id).subquery("chosen")
    last_run = sa.orm.aliased(WorkflowExecution)
    last_failure = sa.orm.aliased(WorkflowExecution)
    latest_id = (
        sa.select(WorkflowExecution.id)
        .where(WorkflowExecution.workflow_id == Workflow.id)
        .order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc())
        .limit(1)
        .correlate(Workflow)
        .scalar_subquery()
    )
    failed = (WorkflowExecution.workflow_id == Workflow.id) & (
        WorkflowExecution.status == ExecutionStatus.FAILED
    )
    latest_failure_id = (
        sa.select(WorkflowExecution.id)
        .where(failed, WorkflowExecution.failed_at >= since)
        .order_by(WorkflowExecution.failed_at.desc(), WorkflowExecution.id.desc())
        .limit(1)
        .correlate(Workflow)
        .scalar_subquery()
    )
    runs_in_a_day = (
        sa.select(sa.func.count())
        .select_from(WorkflowExecution)
        .where(WorkflowExecution.workflow_id == Workflow.id, WorkflowExecution.created_at >= since)
        .correlate(Workflow)
        .scalar_subquery()
    )
    failures_in_a_day = (
        sa.select(sa.func.count())
        .select_from(WorkflowExecution)
        .where(failed, WorkflowExecution.failed_at >= since)
        .correlate(Workflow)
        .scalar_subquery()
    )
    return (
        sa.select(
            Workflow,
            last_run.status,
            last_run.created_at,
            runs_in_a_day.label("runs_in_a_day"),
            failures_in_a_day.label("failures_in_a_day"),
            last_failure.id,
            last_failure.failed_at,
        )
        .join(chosen, chosen.c.id == Workflow.id)
        .outerjoin(last_run, last_run.id == latest_id)
        .outerjoin(last_failure, last_failure.id == latest_failure_id)
        .options(sa.orm.joinedload(Workflow.team))
    )


def export_definition(workflow: Workflow) -> dict[str, Any]:
    """The current definition as JSON for export. Definitions never hold secret values
    (the schema only accepts references), so nothing needs removing."""
    return copy.deepcopy(workflow.definition)


def import_workflow(
    user: User,
    source: str | bytes,
    *,
    scope: ScopeType | str,
    team_id: str | None = None,
    category: TemplateCategory | str | None = None,
) -> Workflow:
    """A new, disabled workflow from exported JSON text; DefinitionInvalid lists each problem."""
    try:
        defn = parse_definition_json(source)
    except ValidationError as error:
        raise DefinitionInvalid(error) from error
    workflow = _new_workflow(
        user,
        name=defn.name,
        description=defn.description,
        scope=scope,
        team_id=team_id,
        definition=defn.to_json(),
        change_note=f"Imported from JSON (exported as v{defn.version})",
    )
    audit.record(user, AuditAction.WORKFLOW_CREATED, workflow, version=1, imported=True)
    if category:
        workflow.template_category = _category(category)
        db.session.flush()
    return workflow
