"""The JSON API, /api/v1: bearer API tokens, JSON errors, OpenAPI document.

Each view parses the request, calls the incident service (the same one the
pages use), commits, and picks the response. Anything that goes wrong is an
exception that the handlers in ``app.api.errors`` roll back and turn into JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import jsonify, url_for
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from app.api.auth import api_actor, api_user
from app.api.blueprint import IDEMPOTENT, bp, routes
from app.api.idempotency import finish
from app.api.openapi import build_document
from app.api.parsing import parse_body, parse_query
from app.api.responses import json_response, page_of
from app.api.schemas import (
    MAX_PER_PAGE,
    IncidentEventList,
    IncidentListQuery,
    IncidentPage,
    event_out,
    incident_out,
)
from app.extensions import db
from app.incidents import service
from app.incidents.models import Incident, IncidentEvent
from app.incidents.schemas import IncidentCreate, IncidentOut, IncidentUpdate


def _incident_response(incident: Incident, status: int = 200, **headers: str) -> Response:
    """The incident as flushed, built before the commit: the service just wrote every
    field, and its team and assignee are already in the session (no query again)."""
    return json_response(incident_out(incident), status, headers)


@routes.operation(
    "POST",
    "/incidents",
    summary="Open an incident",
    description="`teamId` may be left out by a user who belongs to exactly one team." + IDEMPOTENT,
    body_model=IncidentCreate,
    response_model=IncidentOut,
    success_status=201,
    success_description="The incident, opened.",
    success_headers={"Location": "The new incident's URL."},
    extra_errors=(403,),
    idempotent=True,
)
def create_incident() -> Response:
    data = parse_body(IncidentCreate)
    incident = service.create_incident(api_actor(), data)
    location = url_for("api.get_incident", id=incident.id)
    return finish(_incident_response(incident, 201, Location=location))


@routes.operation(
    "GET",
    "/incidents",
    summary="List incidents",
    description=(
        "The incidents of your teams (all, for an admin), newest first, "
        f"at most {MAX_PER_PAGE} per page."
    ),
    query_model=IncidentListQuery,
    response_model=IncidentPage,
)
def list_incidents() -> Response:
    filters = parse_query(IncidentListQuery)
    query = service.search_incidents(
        api_user(),
        team=filters.team,
        status=filters.status,
        priority=filters.priority,
        service=filters.service,
        q=filters.q,
    )
    body = page_of(query, filters, IncidentPage, incident_out)
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "GET",
    "/incidents/<id>",
    summary="Get an incident",
    response_model=IncidentOut,
)
def get_incident(id: str) -> Response:
    body = incident_out(service.get_incident(api_user(), id))
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "GET",
    "/incidents/<id>/events",
    summary="An incident's timeline",
    description="Every change to the incident, oldest first.",
    response_model=IncidentEventList,
)
def list_incident_events(id: str) -> Response:
    incident = service.get_incident(api_user(), id)
    events = db.session.scalars(
        sa.select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id)
        .options(selectinload(IncidentEvent.actor))
        .order_by(IncidentEvent.id)
    )
    body = IncidentEventList(items=[event_out(event) for event in events])
    db.session.commit()  # the token's last_used_at
    return json_response(body)


@routes.operation(
    "PATCH",
    "/incidents/<id>",
    summary="Change an incident's details",
    description="Only the fields sent are changed. Status changes have their own operations.",
    body_model=IncidentUpdate,
    response_model=IncidentOut,
    extra_errors=(409,),
)
def update_incident(id: str) -> Response:
    data = parse_body(IncidentUpdate)
    incident = service.get_incident(api_user(), id, for_update=True)
    service.update_incident(api_actor(), incident, data)
    return finish(_incident_response(incident))


def _status_change(action: str) -> Callable[[str], Response]:
    def change(id: str) -> Response:
        incident = service.get_incident(api_user(), id, for_update=True)
        if action == "escalate":
            service.escalate(api_actor(), incident)
        else:
            service.change_status(api_actor(), incident, action)
        return finish(_incident_response(incident))

    return change


STATUS_CHANGES = {
    "acknowledge": ("Acknowledge an incident", "Only a triggered incident can be acknowledged."),
    "resolve": ("Resolve an incident", "A triggered or acknowledged incident can be resolved."),
    "reopen": ("Reopen an incident", "Only a resolved incident can be reopened."),
    "escalate": ("Escalate an incident", "Raises the escalation level; not when resolved."),
}

for _action, (_summary, _description) in STATUS_CHANGES.items():
    routes.add(
        _status_change(_action),
        "POST",
        f"/incidents/<id>/{_action}",
        endpoint=f"{_action}_incident",
        summary=_summary,
        description=_description + " Takes no body." + IDEMPOTENT,
        response_model=IncidentOut,
        success_description="The incident, changed.",
        extra_errors=(409,),
        idempotent=True,
    )


@cache
def _document() -> dict[str, Any]:
    return build_document(routes.operations, server_url=bp.url_prefix or "")


@routes.operation(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tag="Meta",
    success_description="The OpenAPI document.",
    public=True,
)
def openapi() -> Response:
    return jsonify(_document())
