"""Workflow operations under /api/v1: workflows, their versions, templates and secrets.

The same services as the pages (``app.workflows.service`` and
``app.workflows.secrets``), declared through the same operation table as the
incident routes, so they are in the OpenAPI document and behind token auth.
A definition is validated by the definition schema; its problems come back with
the schema's own locations under the request field (``definition.nodes[1].data``).
Secret values go in and never come out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa
from flask import url_for
from pydantic import ValidationError
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from app.api.auth import api_user
from app.api.blueprint import routes
from app.api.errors import ERROR_CODES, ApiError, ErrorDetail
from app.api.idempotency import finish
from app.api.parsing import parse_body, parse_query
from app.api.responses import json_response, no_content, page_of
from app.api.schemas import MAX_PER_PAGE
from app.api.workflow_schemas import (
    BacktestIn,
    BacktestOut,
    BacktestQuery,
    DefinitionUpdate,
    MissingSecret,
    SecretIn,
    SecretList,
    SecretOut,
    TemplateList,
    TemplateListQuery,
    TemplateUse,
    VersionListQuery,
    VersionOut,
    VersionPage,
    WorkflowCreate,
    WorkflowListQuery,
    WorkflowOut,
    WorkflowPage,
    version_out,
    version_summary,
    workflow_out,
)
from app.db import utcnow
from app.definition import (
    MAX_VERSION,
    WorkflowDefinition,
    parse_definition,
    referenced_secrets,
)
from app.engine import backtest
from app.errors import Conflict, NotFound
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.models import Workflow, WorkflowActionSecret, WorkflowVersion
from app.workflows.service import DefinitionInvalid, NotReady

WORKFLOWS = "Workflows"
TEMPLATES = "Templates"

# A stale baseVersion has its own code: the client's fix (fetch, merge, resend) differs
# from an ordinary conflict. Lives in the one table of codes, which the document lists.
ERROR_CODES.setdefault(
    "version_conflict",
    (409, "The workflow was saved since the version your change is based on (baseVersion)."),
)


def _workflow_response(workflow_id: str, status: int = 200, **headers: str) -> Response:
    """The workflow as stored (re-read after the flush), built before the commit."""
    workflow = service.get_workflow(api_user(), workflow_id)
    return json_response(workflow_out(workflow), status, headers)


# --- errors -----------------------------------------------------------------


def _under(field: str, loc: str) -> str:
    """A schema location under a request field: ``nodes[1]`` -> ``definition.nodes[1]``."""
    if not loc:
        return field
    return f"{field}{loc}" if loc.startswith("[") else f"{field}.{loc}"


@contextmanager
def _definition_problems_under(field: str) -> Iterator[None]:
    """Report a definition's schema problems at their locations under ``field``."""
    try:
        yield
    except DefinitionInvalid as error:
        details = [
            ErrorDetail(loc=_under(field, problem.loc), message=problem.message)
            for problem in error.problems
        ]
        message = (
            f"The {field} is not valid: {details[0].message}"
            if len(details) == 1
            else f"The {field} has {len(details)} problems; see details."
        )
        raise ApiError(422, "validation_error", message, details=details) from None


def _stale_base(base_version: int, current: int) -> ApiError:
    message = (
        f"The workflow is at version {current}, but this change was made on version "
        f"{base_version}. Nothing was saved: get the workflow, apply your change to "
        f"version {current} and send it again with baseVersion {current}."
    )
    return ApiError(
        409,
        "version_conflict",
        message,
        details=[ErrorDetail(loc="baseVersion", message=f"The current version is {current}.")],
    )


def _version_number(number: str) -> int:
    """A version number from the path; anything else names no version."""
    # Not an <int:> rule: the path parameter stays a plain string, as the document says,
    # and numbers past the column's range never reach the database (SQLite cannot bind them).
    short_number = number.isascii() and number.isdigit() and len(number) <= 10
    if short_number and 1 <= int(number) <= MAX_VERSION:
        return int(number)
    raise NotFound("No such version: versions are numbered from 1.")


# --- secrets in a definition --------------------------------------------------


def _secret_users(workflow: Workflow) -> dict[str, list[str]]:
    """Secret name -> ids of the nodes that use it, in the workflow's current definition."""
    try:
        return referenced_secrets(parse_definition(workflow.definition))
    except ValidationError:
        # A stored definition that no longer validates names nothing we can trust.
        return {}


def _stored_secrets(workflow: Workflow) -> list[WorkflowActionSecret]:
    return list(
        db.session.scalars(
            sa.select(WorkflowActionSecret)
            .where(WorkflowActionSecret.workflow_id == workflow.id)
            .order_by(WorkflowActionSecret.name)
        )
    )


def _secret_out(secret: WorkflowActionSecret, users: Mapping[str, list[str]]) -> SecretOut:
    return SecretOut(
        name=secret.name, updated_at=secret.updated_at, used_by=users.get(secret.name, [])
    )


def _cannot_enable(workflow: Workflow, error: DefinitionInvalid | NotReady) -> ApiError:
    """Why the workflow cannot be enabled: each missing secret, then each schema problem."""
    have = set(secret_store.secret_names(workflow))
    missing = {name: nodes for name, nodes in _secret_users(workflow).items() if name not in have}
    details = [
        ErrorDetail(
            loc=f"secrets.{name}",
            message=f"Set the secret '{name}' (used by {', '.join(nodes)}).",
        )
        for name, nodes in missing.items()
    ]
    details += [
        ErrorDetail(loc=_under("definition", problem.loc), message=problem.message)
        for problem in error.problems
    ]
    if missing:
        message = (
            f"The workflow cannot be enabled until its secret(s) {', '.join(missing)} are set: "
            f"PUT /api/v1/workflows/{workflow.id}/secrets/<name> for each."
        )
    else:
        count = len(details)
        message = (
            f"The workflow cannot be enabled: {count} problem{'s' if count > 1 else ''} in its "
            "definition, each in details."
        )
    return ApiError(422, "validation_error", message, details=details)


# --- workflows ----------------------------------------------------------------


@routes.operation(
    "GET",
    "/workflows",
    summary="List workflows",
    description=(
        "Global workflows and those of your teams (all, for an admin), by name, "
        f"at most {MAX_PER_PAGE} per page. Templates are listed under /templates."
    ),
    tag=WORKFLOWS,
    query_model=WorkflowListQuery,
    response_model=WorkflowPage,
)
def list_workflows() -> Response:
    filters = parse_query(WorkflowListQuery)
    query = service.search_workflows(
        api_user(), scope=filters.scope, team_id=filters.team, enabled=filters.enabled, q=filters.q
    )
    query = query.options(selectinload(Workflow.created_by)).order_by(
        sa.func.lower(Workflow.name), Workflow.id
    )
    body = page_of(query, filters, WorkflowPage, workflow_out)
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "POST",
    "/workflows",
    summary="Create a workflow",
    description=(
        "A new workflow, disabled, as version 1. Without `definition` it starts with a "
        "manual trigger alone. Members create workflows for their own teams; only admins "
        "create global ones (`scopeType: global`)."
    ),
    tag=WORKFLOWS,
    body_model=WorkflowCreate,
    response_model=WorkflowOut,
    success_status=201,
    success_description="The workflow, created.",
    success_headers={"Location": "The new workflow's URL."},
    extra_errors=(403,),
)
def create_workflow() -> Response:
    data = parse_body(WorkflowCreate)
    with _definition_problems_under("definition"):
        workflow = service.create_workflow(
            api_user(),
            name=data.name,
            description=data.description,
            scope=data.scope_type,
            team_id=data.team_id,
            definition=data.definition,
        )
    location = url_for("api.get_workflow", id=workflow.id)
    return finish(_workflow_response(workflow.id, 201, Location=location))


@routes.operation(
    "GET",
    "/workflows/<id>",
    summary="Get a workflow",
    description="With its current definition and version.",
    tag=WORKFLOWS,
    response_model=WorkflowOut,
)
def get_workflow(id: str) -> Response:
    body = workflow_out(service.get_workflow(api_user(), id))
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "PUT",
    "/workflows/<id>/definition",
    summary="Save a new version of a workflow's definition",
    description=(
        "Stores the definition as the next version. `baseVersion` is the version you "
        "edited: if the workflow has been saved since, nothing is stored and the answer "
        "is 409 `version_conflict`. An enabled workflow must keep every secret it uses."
    ),
    tag=WORKFLOWS,
    body_model=DefinitionUpdate,
    response_model=WorkflowOut,
    success_description="The workflow, at its new version.",
    extra_errors=(403, 409),
)
def update_workflow_definition(id: str) -> Response:
    user = api_user()
    workflow = service.get_workflow(user, id, for_update=True)
    service.require_edit(user, workflow)  # 404, then 403, before anything about the body
    data = parse_body(DefinitionUpdate)
    if data.base_version != workflow.version:
        raise _stale_base(data.base_version, workflow.version)
    try:
        with _definition_problems_under("definition"):
            service.save_version(
                user,
                workflow,
                data.definition,
                base_version=data.base_version,
                change_note=data.change_note,
            )
    except Conflict:
        # Someone saved the same base version at the same moment (SQLite has no row lock).
        db.session.rollback()
        raise _stale_base(data.base_version, service.get_workflow(user, id).version) from None
    return finish(_workflow_response(id))


def _set_enabled(id: str, enabled: bool) -> Response:
    user = api_user()
    workflow = service.get_workflow(user, id, for_update=True)
    try:
        service.set_enabled(user, workflow, enabled)
    except (DefinitionInvalid, NotReady) as error:
        raise _cannot_enable(workflow, error) from None
    return finish(_workflow_response(id))


@routes.operation(
    "POST",
    "/workflows/<id>/enable",
    summary="Enable a workflow",
    description=(
        "Only a workflow whose definition validates and whose secrets are all set can be "
        "enabled; otherwise 422 lists each missing secret (`secrets.<name>`) and each "
        "problem (`definition.<location>`). Takes no body."
    ),
    tag=WORKFLOWS,
    response_model=WorkflowOut,
    success_description="The workflow, enabled.",
    extra_errors=(403, 422),
)
def enable_workflow(id: str) -> Response:
    return _set_enabled(id, True)


@routes.operation(
    "POST",
    "/workflows/<id>/disable",
    summary="Disable a workflow",
    description="Runs already in flight go on. Takes no body.",
    tag=WORKFLOWS,
    response_model=WorkflowOut,
    success_description="The workflow, disabled.",
    extra_errors=(403, 422),
)
def disable_workflow(id: str) -> Response:
    return _set_enabled(id, False)


@routes.operation(
    "DELETE",
    "/workflows/<id>",
    summary="Delete a workflow",
    description=(
        "With its versions, secrets and finished runs. Refused (409) while runs are in flight."
    ),
    tag=WORKFLOWS,
    success_status=204,
    success_description="Deleted.",
    extra_errors=(403, 409),
)
def delete_workflow(id: str) -> Response:
    user = api_user()
    workflow = service.get_workflow(user, id, for_update=True)
    service.delete_workflow(user, workflow)
    return finish(no_content())


# --- versions -------------------------------------------------------------------


@routes.operation(
    "GET",
    "/workflows/<id>/versions",
    summary="A workflow's versions",
    description=f"Newest first, without definitions, at most {MAX_PER_PAGE} per page.",
    tag=WORKFLOWS,
    query_model=VersionListQuery,
    response_model=VersionPage,
)
def list_workflow_versions(id: str) -> Response:
    filters = parse_query(VersionListQuery)
    workflow = service.get_workflow(api_user(), id)
    query = (
        sa.select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == workflow.id)
        .options(selectinload(WorkflowVersion.changed_by))
        .order_by(WorkflowVersion.version.desc())
    )
    body = page_of(query, filters, VersionPage, version_summary)
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "GET",
    "/workflows/<id>/versions/<number>",
    summary="Get one version of a workflow",
    description="With the definition as it was saved.",
    tag=WORKFLOWS,
    response_model=VersionOut,
)
def get_workflow_version(id: str, number: str) -> Response:
    workflow = service.get_workflow(api_user(), id)
    body = version_out(service.get_version(workflow, _version_number(number)))
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "POST",
    "/workflows/<id>/versions/<number>/rollback",
    summary="Roll a workflow back to a version",
    description=(
        "Saves the chosen version's definition as a new version; history is never "
        "rewritten. Takes no body."
    ),
    tag=WORKFLOWS,
    response_model=VersionOut,
    success_status=201,
    success_description="The new version, equal to the chosen one.",
    success_headers={"Location": "The new version's URL."},
    extra_errors=(403, 409, 422),
)
def rollback_workflow(id: str, number: str) -> Response:
    user = api_user()
    workflow = service.get_workflow(user, id, for_update=True)
    service.require_edit(user, workflow)
    with _definition_problems_under("definition"):
        version = service.rollback(user, workflow, _version_number(number))
    location = url_for("api.get_workflow_version", id=id, number=version.version)
    return finish(json_response(version_out(version), 201, {"Location": location}))


# --- backtest -------------------------------------------------------------------

_BACKTEST_DESCRIPTION = (
    "Replays the stored incident events of the last `days` days against a definition: "
    "which incidents would have started it, the path each would have taken (conditions "
    "read the incident as it was at the event, reconstructed from its event history), "
    "and for the first `sample` runs the requests it would have sent, secrets masked. "
    "Nothing is stored and nothing is sent."
)


def _backtest_answer(
    workflow: Workflow, definition: WorkflowDefinition, days: int, sample: int
) -> dict[str, object]:
    result = backtest.backtest(
        workflow, definition, now=utcnow(), days=days, sample=sample, clock=time
    )
    return {"workflowId": workflow.id, **backtest.to_json(result)}


@routes.operation(
    "GET",
    "/workflows/<id>/backtest",
    summary="Backtest a version of a workflow",
    description=_BACKTEST_DESCRIPTION + " The current version unless `version` is given.",
    tag=WORKFLOWS,
    query_model=BacktestQuery,
    response_model=BacktestOut,
)
def backtest_workflow(id: str) -> Response:
    query = parse_query(BacktestQuery)
    workflow = service.get_workflow(api_user(), id)
    stored = (
        workflow.definition
        if query.version is None
        else service.get_version(workflow, query.version).definition
    )
    with _definition_problems_under("definition"):
        try:
            definition = parse_definition(stored)
        except ValidationError as error:  # stored under older rules than today's
            raise DefinitionInvalid(error) from None
    body = _backtest_answer(workflow, definition, query.days, query.sample)
    body.update(source="version", version=query.version or workflow.version)
    db.session.commit()  # the token's last_used_at
    return json_response(BacktestOut.model_validate(body))


@routes.operation(
    "POST",
    "/workflows/<id>/backtest",
    summary="Backtest a definition (a draft) as this workflow",
    description=_BACKTEST_DESCRIPTION
    + " The definition is validated as on save, and not saved; the workflow gives the "
    "scope and the secrets.",
    tag=WORKFLOWS,
    body_model=BacktestIn,
    response_model=BacktestOut,
)
def backtest_definition(id: str) -> Response:
    workflow = service.get_workflow(api_user(), id)
    data = parse_body(BacktestIn)
    with _definition_problems_under("definition"):
        try:
            definition = parse_definition(data.definition)
        except ValidationError as error:
            raise DefinitionInvalid(error) from None
    body = _backtest_answer(workflow, definition, data.days, data.sample)
    body.update(source="definition", version=None)
    db.session.commit()  # the token's last_used_at
    return json_response(BacktestOut.model_validate(body))


# --- templates ------------------------------------------------------------------


@routes.operation(
    "GET",
    "/templates",
    summary="List templates",
    description=(
        "The template gallery: by category (Ticketing, Communication, Auto-resolution), "
        "then name. Retired templates are left out."
    ),
    tag=TEMPLATES,
    query_model=TemplateListQuery,
    response_model=TemplateList,
)
def list_templates() -> Response:
    filters = parse_query(TemplateListQuery)
    items = [
        workflow_out(template)
        for category, templates in service.templates_by_category().items()
        if filters.category in (None, category)
        for template in templates
        if template.retired_at is None
    ]
    db.session.commit()  # the token's last_used_at
    return json_response(TemplateList(items=items))


@routes.operation(
    "POST",
    "/templates/<id>/use",
    summary="Create a workflow from a template",
    description=(
        "A new, disabled workflow with the template's definition. Secrets are not "
        "copied unless `copySecrets` is true (a template saved from a workflow you may "
        "edit); otherwise set the ones it needs before enabling it."
    ),
    tag=TEMPLATES,
    body_model=TemplateUse,
    response_model=WorkflowOut,
    success_status=201,
    success_description="The workflow, created.",
    success_headers={"Location": "The new workflow's URL."},
    extra_errors=(403,),
)
def use_template(id: str) -> Response:
    user = api_user()
    template = service.get_workflow(user, id)
    if not template.is_template or template.retired_at is not None:
        raise NotFound("No such template.")
    data = parse_body(TemplateUse)
    workflow = service.use_template(
        user,
        template,
        scope=data.scope_type,
        team_id=data.team_id,
        name=data.name,
        copy_secrets=data.copy_secrets,
    )
    location = url_for("api.get_workflow", id=workflow.id)
    return finish(_workflow_response(workflow.id, 201, Location=location))


# --- secrets --------------------------------------------------------------------


@routes.operation(
    "GET",
    "/workflows/<id>/secrets",
    summary="A workflow's secrets",
    description=(
        "Names only, with the nodes that use each; values are write-only. `missing` lists "
        "the secrets the definition uses that are not set yet."
    ),
    tag=WORKFLOWS,
    response_model=SecretList,
)
def list_workflow_secrets(id: str) -> Response:
    workflow = service.get_workflow(api_user(), id)
    users = _secret_users(workflow)
    stored = _stored_secrets(workflow)
    names = {secret.name for secret in stored}
    body = SecretList(
        items=[_secret_out(secret, users) for secret in stored],
        missing=[
            MissingSecret(name=name, used_by=nodes)
            for name, nodes in users.items()
            if name not in names
        ],
    )
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "PUT",
    "/workflows/<id>/secrets/<name>",
    summary="Set a workflow secret",
    description=(
        "Adds or replaces the secret. The value is stored encrypted and never returned. "
        "Names are 1 to 64 lowercase letters, digits or '_', starting with a letter."
    ),
    tag=WORKFLOWS,
    body_model=SecretIn,
    response_model=SecretOut,
    success_description="The secret, set (without its value).",
    extra_errors=(403,),
)
def set_workflow_secret(id: str, name: str) -> Response:
    user = api_user()
    workflow = service.get_workflow(user, id, for_update=True)
    service.require_edit(user, workflow)
    data = parse_body(SecretIn)
    secret = secret_store.set_secret(workflow, name, data.value, actor=user)
    return finish(json_response(_secret_out(secret, _secret_users(workflow))))


@routes.operation(
    "DELETE",
    "/workflows/<id>/secrets/<name>",
    summary="Delete a workflow secret",
    description="Refused (409) while the workflow is enabled and one of its nodes uses it.",
    tag=WORKFLOWS,
    success_status=204,
    success_description="Deleted.",
    extra_errors=(403, 409),
)
def delete_workflow_secret(id: str, name: str) -> Response:
    user = api_user()
    workflow = service.get_workflow(user, id, for_update=True)
    service.require_edit(user, workflow)
    secret_store.delete_secret(workflow, name, actor=user)
    return finish(no_content())
