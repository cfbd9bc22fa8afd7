"""A property-based fuzzer driven by the OpenAPI document: every operation, with bodies,
paths, queries and headers generated from the document (valid and not), never answers
500, and every answer is one the document lists, in the shape it gives.

Ids in the path are real objects half of the time, so operations get past their 404s.
Kept to a few examples per operation so the whole sweep stays well under a minute.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.extensions import db
from tests.factories import SIMPLE_DEFINITION

# API_FUZZ_EXAMPLES=200 for a deeper, randomised search on your machine.
EXAMPLES_PER_OPERATION = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = "API_FUZZ_EXAMPLES" not in os.environ
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_world(app: Flask, make_user, make_team, make_incident, make_workflow, make_execution):
    """A member with a token, and an incident, a workflow and a run of their team."""
    team = make_team("Payments")
    member = make_user("member@example.com", teams=[team])
    incident = make_incident(team=team)
    manual = {**SIMPLE_DEFINITION, "trigger": {"type": "manual", "conditions": []}}
    workflow = make_workflow(team=team, created_by=member, definition=manual)
    run = make_execution(workflow, incident)
    from app.auth.tokens import create_token

    _, token = create_token(member, "fuzz")
    db.session.commit()
    return {
        "token": token,
        "ids": {
            "incidents": incident.id,
            "workflows": workflow.id,
            "runs": run.id,
            "templates": workflow.id,
        },
    }


def _real_ids(case: Any, ids: dict[str, str]) -> None:
    """Put a real object's id in the path for about half of the cases (chosen stably)."""
    if "id" not in (case.path_parameters or {}):
        return
    coin = hashlib.sha256(repr(sorted(case.path_parameters.items())).encode()).digest()[0]
    if coin % 2:
        return
    collection = case.path.strip("/").split("/")[0]
    if collection in ids:
        case.path_parameters["id"] = ids[collection]
    if "number" in case.path_parameters:
        case.path_parameters["number"] = "1"


def test_no_operation_answers_500_and_answers_match_the_document(
    app: Flask, fuzz_world: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {fuzz_world['token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,  # in CI, the same cases every run: failures reproduce
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def fuzz(case: Any) -> None:
            _real_ids(case, fuzz_world["ids"])
            response = case.call(headers=headers)
            db.session.rollback()  # the test's session must not keep what the request saw
            case.validate_response(response, checks=CHECKS)

        fuzz()
