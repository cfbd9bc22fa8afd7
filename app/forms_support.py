"""Putting errors from the pydantic schemas and the services next to their form fields."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from app.definition.messages import plain_message
from app.errors import ServiceError


def _field_for(form: Any, loc: str) -> Any:
    head = loc.split(".")[0].split("[")[0]
    for name in form._fields:
        if head in (name, to_camel(name)):
            return form[name]
    return None


def attach_errors(form: Any, error: ValidationError | ServiceError) -> list[str]:
    """Attach each problem to its field; return the ones that belong to no field."""
    if isinstance(error, ValidationError):
        problems = [
            (".".join(str(part) for part in e["loc"]), plain_message(e))
            for e in error.errors(include_url=False)
        ]
    else:
        problems = [(p.loc, p.message) for p in error.problems] or [("", error.message)]
    unplaced: list[str] = []
    for loc, message in problems:
        field = _field_for(form, loc) if loc else None
        if field is None:
            unplaced.append(message)
        else:
            field.errors = [*field.errors, message]
    return unplaced
