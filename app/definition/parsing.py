"""Parsing: a JSON-like value or JSON text validated as a workflow definition."""

from __future__ import annotations

from collections.abc import Collection

from app.definition.limits import MAX_DEFINITION_JSON_LENGTH
from app.definition.messages import error_detail, validation_error
from app.definition.models import WorkflowDefinition


def parse_definition(
    data: object, *, secret_names: Collection[str] | None = None
) -> WorkflowDefinition:
    """Validate a JSON-like value as a workflow definition.

    ``secret_names``, when given, are the workflow's secrets: every secret a
    template uses, and those Jira and Linear actions need, must be among them.
    Raises ``pydantic.ValidationError`` and nothing else for bad input.
    """
    context = None if secret_names is None else {"secret_names": frozenset(secret_names)}
    return WorkflowDefinition.model_validate(data, context=context)


def parse_definition_json(
    text: str | bytes, *, secret_names: Collection[str] | None = None
) -> WorkflowDefinition:
    """Like parse_definition, from JSON text. Raises only ValidationError."""
    if not isinstance(text, str | bytes | bytearray):
        raise validation_error(
            [error_detail((), "json_type", "Expected JSON text.", type(text).__name__)]
        )
    if len(text) > MAX_DEFINITION_JSON_LENGTH:
        raise validation_error(
            [
                error_detail(
                    (),
                    "too_large",
                    f"The definition is too large ({len(text):,} characters); "
                    f"the limit is {MAX_DEFINITION_JSON_LENGTH:,}.",
                    len(text),
                )
            ]
        )
    context = None if secret_names is None else {"secret_names": frozenset(secret_names)}
    return WorkflowDefinition.model_validate_json(text, context=context)
