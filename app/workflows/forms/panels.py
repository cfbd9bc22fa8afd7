"""The editor's forms around the graph: add a node or an edge, the workflow's settings,
save as a new version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from wtforms import Form, SelectChoice, SelectField, StringField, TextAreaField

from app.forms_support import TextPolicy
from app.workflows.forms.mapping import Loc, as_mapping, number_text, parse_int, text

KIND_CHOICES = [
    SelectChoice("webhook", "Webhook call"),
    SelectChoice("jira", "Jira issue"),
    SelectChoice("linear", "Linear issue"),
    SelectChoice("condition", "Condition (true/false branch)"),
    SelectChoice("delay", "Delay"),
]
HANDLE_CHOICES = [SelectChoice("true", "If true"), SelectChoice("false", "If false")]
TIMEOUT_CHOICES = [
    SelectChoice("1min", "1 minute"),
    SelectChoice("5min", "5 minutes"),
    SelectChoice("15min", "15 minutes"),
]


PLACEMENT_CHOICES = [
    SelectChoice("insert", "Between it and the node that follows it"),
    SelectChoice("branch", "As a new branch of its own"),
]


class AddNodeForm(TextPolicy, Form):  # type: ignore[misc]
    kind = SelectField("New node", choices=KIND_CHOICES, default="webhook")
    after = SelectField("After node", choices=[])
    handle = SelectField("On the branch", choices=HANDLE_CHOICES, default=None)
    placement = SelectField("Place it", choices=PLACEMENT_CHOICES, default="insert")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix="add-", **kwargs)


class AddEdgeForm(TextPolicy, Form):  # type: ignore[misc]
    source = SelectField("From", choices=[])
    target = SelectField("To", choices=[])
    handle = SelectField("Branch", choices=HANDLE_CHOICES, default=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix="edge-", **kwargs)


RUN_LIMIT_CHOICES = [
    SelectChoice("", "Every matching event"),
    SelectChoice("once", "Once per incident"),
    SelectChoice("window", "Once per incident per N minutes"),
]


class SettingsForm(TextPolicy, Form):  # type: ignore[misc]
    name = StringField("Workflow name")
    description = TextAreaField("Description")
    timeout = SelectField("Time limit per run", choices=TIMEOUT_CHOICES, default="5min")
    run_limit = SelectField("Runs per incident", choices=RUN_LIMIT_CHOICES, default="")
    run_limit_minutes = StringField("Minutes between runs on one incident")

    FIELDS: ClassVar[dict[Loc, str]] = {
        ("name",): "name",
        ("description",): "description",
        ("settings",): "timeout",
        ("settings", "timeout"): "timeout",
        ("settings", "enabled"): "timeout",
        ("settings", "oncePerIncident"): "run_limit",
        ("settings", "oncePerIncidentMinutes"): "run_limit_minutes",
    }

    LABELS: ClassVar[dict[str, str]] = {
        "name": "Workflow name",
        "description": "Description",
        "timeout": "Time limit per run",
        "run_limit": "Runs per incident",
        "run_limit_minutes": "Minutes between runs on one incident",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix="settings-", **kwargs)
        self.form_revision = ""
        self.form_origin = ""
        self.conflicts: list[tuple[str, str, str]] = []

    def as_dict(self) -> dict[str, str]:
        """Every field as text: the unit edits from two tabs are merged in."""
        name, description, timeout = self.values()
        return {
            "name": name,
            "description": description,
            "timeout": timeout,
            "run_limit": self.run_limit.data or "",
            "run_limit_minutes": (self.run_limit_minutes.data or "").strip(),
        }

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> SettingsForm:
        settings = as_mapping(definition.get("settings"))
        form = cls(
            data={
                "name": text(definition.get("name")),
                "description": text(definition.get("description")),
                "timeout": text(settings.get("timeout")) or "5min",
                "run_limit": (
                    "once"
                    if settings.get("oncePerIncident") is True
                    else "window"
                    if "oncePerIncidentMinutes" in settings
                    else ""
                ),
                "run_limit_minutes": number_text(settings.get("oncePerIncidentMinutes")),
            }
        )
        return form

    def values(self) -> tuple[str, str, str]:
        return (
            (self.name.data or "").strip(),
            (self.description.data or "").strip(),
            self.timeout.data or "5min",
        )

    def run_limit_settings(self) -> dict[str, Any]:
        """The definition's run limit settings as chosen (none: every event starts a run)."""
        if self.run_limit.data == "once":
            return {"oncePerIncident": True}
        if self.run_limit.data == "window":
            minutes = parse_int(self.run_limit_minutes.data)
            # Nothing typed: the schema says a number is needed, next to the field.
            return {"oncePerIncidentMinutes": "" if minutes is None else minutes}
        return {}

    def field_for(self, loc: Loc) -> Any:
        for prefix, name in sorted(self.FIELDS.items(), key=lambda item: -len(item[0])):
            if loc[: len(prefix)] == prefix:
                return self[name]
        return None

    def attach(self, loc: Loc, message: str) -> None:
        found = self.field_for(loc)
        if found is not None:
            found.errors = [*found.errors, message]


class SaveForm(TextPolicy, Form):  # type: ignore[misc]
    change_note = StringField("Change note (optional)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix="save-", **kwargs)
