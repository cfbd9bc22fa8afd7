"""Putting errors from the pydantic schemas and the services next to their form fields."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from wtforms import FieldList, FormField

from app import input_policy
from app.errors import ServiceError

FRIENDLY = {
    "missing": "This field is required.",
    "string_too_short": "This field cannot be empty.",
}


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
            (".".join(str(part) for part in e["loc"]), FRIENDLY.get(e["type"], e["msg"]))
            for e in error.errors()
        ]
    else:
        problems = [(p.loc, p.message) for p in error.problems] or [("", error.message)]
    unplaced: list[str] = []
    for loc, message in problems:
        field = _field_for(form, loc) if loc else None
        if field is None:
            unplaced.append(message)
        else:
            field.errors = [*field.errors, message.removeprefix("Value error, ")]
    return unplaced


# --- the input policy on page forms -----------------------------------------------------


def _leaves(field: Any) -> list[Any]:
    """The fields holding typed text: rows of a list one by one; a sub-form checks itself."""
    if isinstance(field, FieldList):
        return [leaf for entry in field.entries for leaf in _leaves(entry)]
    if isinstance(field, FormField):
        return []
    return [field]


def place_text_problems(form: Any) -> bool:
    """Put a NUL or lone surrogate found in a field's input as an error at that field.

    The error is a processing error, so ``validate()`` fails on it; it is also shown
    by a form that is never validated. Returns whether any field had one.
    """
    placed = input_policy.deferred_form_problems()
    found = False
    for field in form:
        for leaf in _leaves(field):
            for value in leaf.raw_data or ():
                problem = input_policy.text_problem(value) if isinstance(value, str) else None
                if problem is None:
                    continue
                message = f"This field {problem}"
                if message not in leaf.process_errors:
                    leaf.process_errors.append(message)
                leaf.errors = list(leaf.process_errors)
                placed.discard(leaf.name)
                found = True
                break
    return found


class TextPolicy:
    """Mixin for every page form (before ``FlaskForm`` or ``Form`` in the bases).

    ``text_problems`` says whether the submitted data had a NUL or a lone surrogate;
    each is shown at its field, and ``validate()`` fails.
    """

    text_problems: bool = False

    def process(self, *args: Any, **kwargs: Any) -> None:
        super().process(*args, **kwargs)  # type: ignore[misc]
        placed = place_text_problems(self)
        self.text_problems = placed or any(sub.text_problems for sub in _sub_forms(self))


def _sub_forms(form: Any) -> list[Any]:
    found: list[Any] = []
    for field in form:
        entries = field.entries if isinstance(field, FieldList) else [field]
        found += [entry.form for entry in entries if isinstance(entry, FormField)]
    return [sub for sub in found if isinstance(sub, TextPolicy)]
