"""API fixtures: tokens, a client that sends them, and checks on what was committed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jsonschema  # installed with openapi-spec-validator
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.auth.models import User
from app.auth.tokens import create_token
from app.extensions import db
from app.incidents.models import Incident, IncidentEvent


@pytest.fixture
def make_token(app: Flask) -> Callable[..., str]:
    """Factory: a committed API token for a user; returns the plain token."""

    def make(user: User, name: str = "monitoring") -> str:
        _, plain = create_token(user, name)
        db.session.commit()
        return plain

    return make


class ApiClient:
    """The test client with ``Authorization: Bearer <token>`` on every request."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def open(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("PATCH", path, **kwargs)


@pytest.fixture
def api_as(client: FlaskClient, make_token: Callable[..., str]) -> Callable[[User], ApiClient]:
    """Factory: an API client authenticated as the given user."""

    def make(user: User) -> ApiClient:
        return ApiClient(client, make_token(user))

    return make


def committed_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Incident and event rows as another connection sees them: committed data only."""
    with db.engine.connect() as conn:
        return {
            "incident": [
                tuple(row)
                for row in conn.execute(sa.select(Incident.__table__).order_by(Incident.id))
            ],
            "incident_event": [
                tuple(row)
                for row in conn.execute(
                    sa.select(IncidentEvent.__table__).order_by(IncidentEvent.id)
                )
            ],
        }


def committed_events(incident_id: str) -> list[dict[str, Any]]:
    """The committed events of an incident, oldest first, as plain dicts."""
    table = IncidentEvent.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.type, table.c.changes, table.c.source, table.c.actor_id)
            .where(table.c.incident_id == incident_id)
            .order_by(table.c.id)
        ).mappings()
        return [dict(row) for row in rows]


@contextmanager
def nothing_changes() -> Iterator[None]:
    """Assert that what happens inside changes no incident or event row.

    After the block, the test commits the session the request used: if the API
    left a half-done change in it instead of rolling back, the commit would
    persist it and the comparison fails.
    """
    before = committed_rows()
    yield
    db.session.commit()
    assert committed_rows() == before


@pytest.fixture
def openapi_document(client: FlaskClient) -> dict[str, Any]:
    """The API's OpenAPI document, as served."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


@pytest.fixture
def assert_documented(
    openapi_document: dict[str, Any],
) -> Callable[[TestResponse, str, str], None]:
    """Check a response against what the document says that operation answers."""

    def check(response: TestResponse, method: str, path: str) -> None:
        operation = openapi_document["paths"][path][method.lower()]
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, f"{method} {path} does not document {response.status}"
        if "$ref" in documented:
            name = documented["$ref"].rsplit("/", 1)[1]
            documented = openapi_document["components"]["responses"][name]
        schema = documented["content"]["application/json"]["schema"]
        jsonschema.validate(
            response.get_json(),
            {**schema, "components": openapi_document["components"]},
            cls=jsonschema.Draft202012Validator,
        )

    return check
