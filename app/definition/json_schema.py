"""The JSON Schema (draft 2020-12) of a definition, served as a static file."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from app.definition.models import WorkflowDefinition


@lru_cache(maxsize=1)
def _json_schema() -> dict[str, Any]:
    schema = WorkflowDefinition.model_json_schema(by_alias=True, mode="validation")
    schema.pop("title", None)
    schema.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "IncidentFlow workflow definition",
        "description": (
            "A workflow definition as stored, imported and exported by IncidentFlow. "
            "Besides this schema, a definition must satisfy rules JSON Schema cannot "
            "express: node and edge ids are unique; exactly one node has type "
            "'trigger' and no edge leads into it; every edge connects existing, "
            "distinct nodes; the graph has no cycles; edges leaving a condition node "
            "carry sourceHandle 'true' or 'false' (one edge per handle) and no other "
            "edge has one; every node is reachable from the trigger; an 'age' trigger "
            "sets ageThresholdMinutes and a 'state_changed' trigger sets "
            "stateTransition ('from' differs from 'to'), and no other trigger sets "
            "them; trigger conditions use distinct fields; templates are valid Jinja2 "
            "and only use incident, assignee, team, workflow, steps.<nodeId> of an "
            "action that always runs before the node, and secrets.<name> of an "
            "existing workflow secret."
        ),
        **schema,
    }


def definition_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a definition."""
    return copy.deepcopy(_json_schema())
