"""The node forms' common ground: ``NodeForm`` (fill from a node, read back, put schema
problems at their fields), the names the editor generates, and small conversions.

WTForms renders the fields and collects what was typed; the definition schema
(``app.definition``) decides what is valid. Each node form maps both ways, with one
declarative mapping (``KEYS``, see ``mapping``): ``from_node(node)`` fills the form
from a node of the definition (wire names), ``to_node_data()`` builds the node's
``data`` from what was typed. Nothing is
validated here beyond turning text into the JSON types the schema expects, so a
wrong value reaches the schema and its message is shown next to the field.

Credentials typed into auth fields never become part of ``to_node_data()``:
the form puts a ``{{ secrets.<name> }}`` reference there and lists the typed
value in ``credentials`` for the drafts service to store encrypted. Secret
inputs are always rendered empty; a hidden field carries the secret's *name*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wtforms import FieldList, Form, HiddenField, StringField
from wtforms.widgets import NumberInput

from app.forms_support import TextPolicy
from app.workflows.enums import TriggerType
from app.workflows.forms.mapping import (
    Entry,
    Json,
    Key,
    Loc,
    as_mapping,
    error_fields,
    error_rows,
    fill,
    read_back,
    text,
)

PREFIX = "node-"


@dataclass(frozen=True)
class Target:
    """Where an error goes in a form: a field, a row of a field list, or the whole list."""

    name: str
    row: str | int | None = None
    sub: str | None = None


@dataclass(frozen=True)
class Credential:
    """A credential typed into the form, to be stored as the secret ``secret_name``."""

    loc: Loc  # where the reference goes, relative to the node's data
    secret_name: str
    value: str = field(repr=False)


def format_path(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def secret_reference(name: str) -> str:
    return "{{ secrets." + name + " }}"


NUMBER = NumberInput()


# --- node forms --------------------------------------------------------------


class NodeForm(TextPolicy, Form):  # type: ignore[misc]
    """The fields every node has, and the mapping of schema locations to fields."""

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: The field <-> definition mapping: fills the form, reads it back, places problems.
    KEYS: ClassVar[tuple[Entry, ...]] = (Key("name", ("data", "name")),)
    #: Locations of a group of keys (``config``, ``retry``) -> the field for its problems.
    GROUPS: ClassVar[dict[Loc, str]] = {}
    #: Schema location (relative to the node) -> field name. Longest prefix wins.
    FIELDS: ClassVar[dict[Loc, str]] = {("data", "name"): "name"}
    #: Locations of dict or list values shown as rows -> the FieldList's name.
    ROWS: ClassVar[dict[Loc, str]] = {}
    #: Error codes that concern a row's key (header name) rather than its value.
    KEY_CODES: ClassVar[frozenset[str]] = frozenset(
        {"invalid_header_name", "reserved_header", "auth_header", "duplicate_header"}
    )

    name = StringField("Name")
    #: The name the editor generated for the settings shown, while the user has not
    #: renamed the node: the name then follows the settings.
    generated_name = HiddenField()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.FIELDS = {**cls.GROUPS, **error_fields(cls.KEYS)}
        cls.ROWS = error_rows(cls.KEYS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix=PREFIX, **kwargs)
        self.node_id = ""
        self.credentials: list[Credential] = []
        self.node_errors: list[str] = []
        self.group_errors: dict[str, list[str]] = {}
        #: The draft revision and node content (JSON) this form was rendered from.
        self.form_revision = ""
        self.form_origin = ""
        #: Fields another change touched too: (label, the draft's value, the form's value).
        self.conflicts: list[tuple[str, str, str]] = []
        self.notice = ""

    # -- both ways ------------------------------------------------------------

    @classmethod
    def from_node(cls, node: Mapping[str, Any], **extra: Any) -> NodeForm:
        form = cls(data=cls.initial(as_mapping(node.get("data")), **extra))
        form.node_id = text(node.get("id"))
        return form

    @classmethod
    def from_formdata(cls, formdata: Any, node_id: str) -> NodeForm:
        form = cls(formdata=formdata)
        form.node_id = node_id
        return form

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        """The form's data for a node's ``data`` (``trigger=``: the definition's trigger)."""
        return fill(cls.KEYS, {"data": data, "trigger": extra.get("trigger")})

    def to_node_data(self) -> Json:
        data: Json = self.values()["data"]
        return data

    def follow_settings(self) -> None:
        """While the name is the generated one, generate it again for the settings shown."""
        generated = self.generated_name.data or ""
        if generated and (self.name.data or "").strip() == generated:
            fresh = auto_name(self.kind, self.values())
            if fresh:
                self.name.data = self.generated_name.data = fresh
        elif not generated and (self.name.data or "").strip() == auto_name(
            self.kind, self.values()
        ):
            self.generated_name.data = (self.name.data or "").strip()

    def values(self) -> Json:
        """What the form stands for in the definition: ``{"data": …}`` (the trigger form
        adds ``"trigger"``), the unit that edits from two tabs are merged in."""
        return read_back(self, self.KEYS)

    @classmethod
    def label_for(cls, loc: Loc) -> str:
        """A field's label for a location in ``values()``, for messages."""
        target = cls.target_for(loc)
        if target is None:
            return format_path(loc)
        field = cls._unbound_fields_by_name().get(target.name)
        label: Any = target.name
        if field is not None:
            label = field.kwargs.get("label") or next(
                (arg for arg in field.args if isinstance(arg, str)), target.name
            )
        if target.row is not None:
            return f"{label}: {target.row}" if isinstance(target.row, str) else label
        return str(label)

    @classmethod
    def _unbound_fields_by_name(cls) -> dict[str, Any]:
        return {
            name: value for name in dir(cls) if hasattr(value := getattr(cls, name), "field_class")
        }

    # -- errors and hints ---------------------------------------------------------

    @classmethod
    def target_for(cls, loc: Loc, code: str = "") -> Target | None:
        """The field a schema location (relative to the node) belongs to, if any."""
        for prefix, name in sorted(cls.ROWS.items(), key=lambda item: -len(item[0])):
            if loc[: len(prefix)] == prefix:
                rest = loc[len(prefix) :]
                if not rest:
                    return Target(name)
                row = rest[0]
                if isinstance(row, int):
                    sub = rest[1] if len(rest) > 1 and isinstance(rest[1], str) else None
                    return Target(name, row, sub)
                return Target(name, row, "name" if code in cls.KEY_CODES else "value")
        best: tuple[int, str] | None = None
        for prefix, name in cls.FIELDS.items():
            if loc[: len(prefix)] == prefix and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
        return Target(best[1]) if best else None

    @classmethod
    def anchor_for(cls, loc: Loc, code: str = "") -> str | None:
        """The id of the input a problem belongs to (rows resolve to the list)."""
        target = cls.target_for(loc, code)
        if target is None:
            return None
        if isinstance(target.row, int) and target.sub:
            return f"{PREFIX}{target.name}-{target.row}-{target.sub}"
        return f"{PREFIX}{target.name}"

    def attach(self, loc: Loc, code: str, message: str) -> None:
        """Show a schema problem next to its field (or above the form)."""
        target = self.target_for(loc, code)
        if target is None or target.name not in self._fields:
            self.node_errors.append(message)
            return
        found = self._find(target)
        if found is None or isinstance(found, FieldList):
            self.group_errors.setdefault(target.name, []).append(message)
        else:
            found.errors = [*found.errors, message]

    def mark(self, loc: Loc, hint: str) -> None:
        """Highlight the field at a schema location as one the user must fill in."""
        found = self._find(self.target_for(loc))
        if found is not None:
            found.must_fill = hint

    def _find(self, target: Target | None) -> Any:
        if target is None or target.name not in self._fields:
            return None
        found = self._fields[target.name]
        if target.row is None:
            return found
        entries = list(found.entries)
        if isinstance(target.row, int):
            index = target.row if 0 <= target.row < len(entries) else -1
        else:
            names = [(entry.form.name.data or "").strip() for entry in entries]
            index = names.index(target.row) if target.row in names else -1
        if index < 0 or not target.sub:
            return found
        return entries[index].form._fields.get(target.sub)

    def rows(self, name: str) -> FieldList:
        return self._fields[name]


def _minutes(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return "1 minute" if value == 1 else f"{value} minutes"


def auto_name(kind: str, values: Mapping[str, Any]) -> str | None:
    """The name the editor gives a node from its settings (``values()`` shape), or None
    for kinds whose name does not describe a setting. A node keeps following its
    settings until the user gives it another name."""
    data = as_mapping(values.get("data"))
    if kind == "delay":
        minutes = _minutes(data.get("durationMinutes"))
        return f"Wait {minutes}" if minutes else None
    if kind == "condition":
        field_name, value = text(data.get("field")), text(data.get("value"))
        if not field_name or not value:
            return None
        return f"Is it a {value}?" if field_name == "priority" else f"Is {field_name} {value}?"
    if kind == "trigger":
        trigger = as_mapping(values.get("trigger"))
        kind_of = text(trigger.get("type"))
        if kind_of == TriggerType.STATE_CHANGED.value:
            to = text(as_mapping(trigger.get("stateTransition")).get("to"))
            return f"Incident becomes {to.lower()}" if to else None
        if kind_of == TriggerType.AGE.value:
            minutes = _minutes(trigger.get("ageThresholdMinutes"))
            return f"Unresolved for {minutes}" if minutes else None
        return TRIGGER_NAMES.get(kind_of)
    return None


TRIGGER_NAMES = {
    TriggerType.INCIDENT_CREATED.value: "Incident created",
    TriggerType.ESCALATION.value: "Incident escalated",
    TriggerType.MANUAL.value: "Run by hand",
}
