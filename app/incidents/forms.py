"""Incident forms. WTForms renders and collects; the pydantic schemas decide what is valid."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import ValidationError

from app import input_policy
from app.errors import InvalidInput
from app.forms_support import TextPolicy
from app.incidents.enums import IncidentPriority, IncidentStatus

PRIORITY_CHOICES = [SelectChoice(p.value) for p in IncidentPriority]
STATUS_CHOICES = [SelectChoice(s.value, s.value.title()) for s in IncidentStatus]


def _json_object(_form: Any, field: Any) -> None:
    text = (field.data or "").strip()
    if not text:
        field.parsed = {}
        return
    try:
        value = input_policy.loads(text, prefix="metadata")
    except input_policy.JsonSyntaxError as error:
        raise ValidationError(f"This is not valid JSON ({error.message}).") from error
    except InvalidInput as error:
        raise ValidationError(" ".join(f"{p.loc}: {p.message}" for p in error.problems)) from None
    if not isinstance(value, dict):
        raise ValidationError('Metadata must be a JSON object, like {"region": "eu-west-1"}.')
    field.parsed = value


class IncidentForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    title = StringField("Title")
    description = TextAreaField("Description")
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="P3")
    service = StringField("Service")
    team_id = SelectField("Team", choices=[])
    assignee_id = SelectField("Assignee", choices=[])
    metadata = TextAreaField("Metadata (JSON object)", validators=[_json_object])

    def payload(self) -> dict[str, Any]:
        """The fields as the pydantic input models expect them (python names)."""
        data: dict[str, Any] = {
            "title": self.title.data or "",
            "description": self.description.data or "",
            "priority": self.priority.data,
            "service": self.service.data or None,
            "metadata": getattr(self.metadata, "parsed", {}),
            "assignee_id": self.assignee_id.data or None,
        }
        if "team_id" in self._fields:
            data["team_id"] = self.team_id.data or None
        return data


class IncidentFilterForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False  # a GET search form

    q = StringField("Search titles")
    team = SelectField("Team", choices=[])
    status = SelectField("Status", choices=[SelectChoice("", "Any status"), *STATUS_CHOICES])
    priority = SelectField(
        "Priority", choices=[SelectChoice("", "Any priority"), *PRIORITY_CHOICES]
    )
    service = StringField("Service")
