"""The forms of the workflow pages (list filter, new, import, copy, secret, templates).

The editor's forms are in the package's other modules. These are plain page forms:
WTForms collects what was typed, the services decide what is valid, and
``forms_support.attach_errors`` puts their refusals next to the fields.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField

from app.forms_support import TextPolicy
from app.workflows.enums import ScopeType, TemplateCategory

__all__ = [
    "CATEGORY_CHOICES",
    "GLOBAL_OWNER",
    "CopyForm",
    "ImportForm",
    "NewWorkflowForm",
    "SaveAsTemplateForm",
    "SecretForm",
    "TemplateForm",
    "WorkflowFilterForm",
]

CATEGORY_CHOICES = [SelectChoice(c.value, c.value) for c in TemplateCategory]
#: The owner choice for a global workflow (the others are team ids).
GLOBAL_OWNER = "global"


class WorkflowFilterForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False  # a GET search form

    q = StringField("Search names")
    scope = SelectField(
        "Scope",
        choices=[
            SelectChoice("", "Any scope"),
            SelectChoice(ScopeType.TEAM.value, "Team"),
            SelectChoice(ScopeType.GLOBAL.value, "Global"),
        ],
    )
    team = SelectField("Team", choices=[])
    enabled = SelectField(
        "State",
        choices=[
            SelectChoice("", "Enabled or not"),
            SelectChoice("yes", "Enabled"),
            SelectChoice("no", "Disabled"),
        ],
    )
    category = SelectField(
        "Category", choices=[SelectChoice("", "Any category"), *CATEGORY_CHOICES]
    )


def _owner_field(label: str = "Belongs to") -> Any:
    # Choices are checked by the service (a member choosing "global" gets 403, not 422).
    return SelectField(label, choices=[], validate_choice=False)


def _category_field() -> Any:
    return SelectField(
        "Category", choices=[SelectChoice("", "None"), *CATEGORY_CHOICES], default=""
    )


class NewWorkflowForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Name")
    description = TextAreaField("Description")
    owner = _owner_field()
    category = _category_field()


class ImportForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    file = FileField("JSON file")
    text = TextAreaField("Or paste the JSON")
    owner = _owner_field()
    category = _category_field()


class CopyForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    """Duplicate a workflow, or make one from a template."""

    name = StringField("Name of the new workflow")
    owner = _owner_field()
    # Offered only when the user may edit the workflow the secrets come from.
    copy_secrets = BooleanField("Copy its secrets")


class SecretForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Name")
    # Rendered by hand in the template: the value is never written back into a page.
    value = StringField("Value")


class TemplateForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Name")
    description = TextAreaField("Description")
    category = SelectField("Category", choices=CATEGORY_CHOICES)


class SaveAsTemplateForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField("Template name")
    category = SelectField("Category", choices=CATEGORY_CHOICES)
