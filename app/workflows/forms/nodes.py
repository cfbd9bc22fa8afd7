"""The other nodes' forms: condition, delay and the trigger; which form edits a node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wtforms import FieldList, Form, FormField, SelectChoice, SelectField, StringField

from app.forms_support import TextPolicy
from app.incidents.enums import IncidentStatus
from app.workflows.enums import NodeType, TriggerType
from app.workflows.forms.actions import JiraForm, LinearForm, WebhookForm
from app.workflows.forms.base import NUMBER, NodeForm
from app.workflows.forms.mapping import (
    NUMBER_TEXT,
    Built,
    Convert,
    Fixed,
    Json,
    Key,
    as_mapping,
    choice,
    text,
    when,
)


def _workflow_ids(typed: str | None) -> list[str] | None:
    ids = [part.strip() for part in (typed or "").split(",")]
    return [i for i in ids if i] or None


#: Workflow ids separated by commas; only string ids are shown.
WORKFLOW_IDS = Convert(
    lambda ids: ", ".join(str(i) for i in ids or [] if isinstance(i, str)), _workflow_ids
)


class ConditionRow(TextPolicy, Form):  # type: ignore[misc]
    field = StringField("Incident field")
    value = StringField("Equals")


class ConditionForm(NodeForm):
    kind = "condition"
    title = "Condition"
    KEYS = (
        Key("field", ("data", "field")),
        Fixed(("data", "operator"), "=", field="field"),
        Key("value", ("data", "value")),
        Key("name", ("data", "name")),
    )

    field = StringField("Incident field")
    value = StringField("Equals")


class DelayForm(NodeForm):
    kind = "delay"
    title = "Delay"
    KEYS = (
        Key("duration_minutes", ("data", "durationMinutes"), NUMBER_TEXT),
        Key("name", ("data", "name")),
    )

    duration_minutes = StringField("Wait (minutes)", widget=NUMBER)


TRIGGER_CHOICES = [
    SelectChoice(TriggerType.INCIDENT_CREATED.value, "An incident is created"),
    SelectChoice(TriggerType.STATE_CHANGED.value, "An incident changes state"),
    SelectChoice(TriggerType.ESCALATION.value, "An incident is escalated"),
    SelectChoice(TriggerType.AGE.value, "An unresolved incident grows old"),
    SelectChoice(TriggerType.MANUAL.value, "Someone clicks Run"),
    SelectChoice(TriggerType.WORKFLOW_FAILED.value, "A workflow run fails"),
]
STATUS_CHOICES = [SelectChoice(s.value, s.value.title()) for s in IncidentStatus]


class TriggerForm(NodeForm):
    """The trigger node's name and the definition's trigger settings."""

    kind = "trigger"
    title = "Trigger"
    KEYS = (
        Key("name", ("data", "name")),
        Key("trigger_type", ("trigger", "type"), choice(TriggerType.MANUAL.value)),
        Built(("trigger", "conditions"), lambda form: form.condition_rows(), rows="conditions"),
        Key(
            "age_threshold_minutes",
            ("trigger", "ageThresholdMinutes"),
            NUMBER_TEXT,
            when=when("trigger_type", TriggerType.AGE.value),
        ),
        Key(
            "state_to",
            ("trigger", "stateTransition", "to"),
            Convert(lambda to: text(to) or IncidentStatus.ACKNOWLEDGED.value, lambda to: to or ""),
            when=when("trigger_type", TriggerType.STATE_CHANGED.value),
        ),
        Key(
            "state_from",
            ("trigger", "stateTransition", "from"),
            Convert(text, lambda since: since or None),
            when=when("trigger_type", TriggerType.STATE_CHANGED.value),
        ),
        Key(
            "workflow_ids",
            ("trigger", "workflowIds"),
            WORKFLOW_IDS,
            when=when("trigger_type", TriggerType.WORKFLOW_FAILED.value),
        ),
        Key(
            "min_failures",
            ("trigger", "minFailures"),
            NUMBER_TEXT,
            when=when("trigger_type", TriggerType.WORKFLOW_FAILED.value),
        ),
    )
    GROUPS = {("trigger",): "trigger_type", ("trigger", "stateTransition"): "state_to"}

    trigger_type = SelectField("Starts when", choices=TRIGGER_CHOICES, default="manual")
    conditions = FieldList(FormField(ConditionRow), label="Only if all of these match")
    age_threshold_minutes = StringField("Older than (minutes)", widget=NUMBER)
    state_from = SelectField(
        "From status", choices=[SelectChoice("", "Any status"), *STATUS_CHOICES], default=""
    )
    state_to = SelectField("To status", choices=STATUS_CHOICES, default="ACKNOWLEDGED")
    workflow_ids = StringField("Only for these workflows")
    min_failures = StringField("Only after this many failures in 24 hours", widget=NUMBER)

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        """The mapped fields, and the conditions as rows (irregular: blank rows are
        dropped when read back)."""
        conditions = as_mapping(extra.get("trigger")).get("conditions")
        rows = [as_mapping(row) for row in conditions] if isinstance(conditions, list) else []
        return {
            **super().initial(data, **extra),
            "conditions": [
                {"field": text(row.get("field")), "value": text(row.get("value"))} for row in rows
            ],
        }

    @classmethod
    def from_node(cls, node: Mapping[str, Any], **extra: Any) -> NodeForm:
        """``trigger=`` is the definition's trigger settings."""
        return super().from_node(node, **extra)

    def to_trigger(self) -> Json:
        trigger: Json = self.values()["trigger"]
        return trigger

    def condition_rows(self) -> list[Json]:
        rows = []
        for entry in self.conditions.entries:
            field_name = (entry.form.field.data or "").strip()
            value = (entry.form.value.data or "").strip()
            if field_name or value:
                rows.append({"field": field_name, "value": value})
        return rows


NODE_FORMS: dict[str, type[NodeForm]] = {
    form.kind: form
    for form in (TriggerForm, WebhookForm, JiraForm, LinearForm, ConditionForm, DelayForm)
}


def node_kind(node: Mapping[str, Any]) -> str:
    """'trigger', 'condition', 'delay' or the action type ('webhook', 'jira', 'linear')."""
    kind = text(node.get("type"))
    if kind == NodeType.ACTION.value:
        return text(as_mapping(node.get("data")).get("actionType"))
    return kind


def form_class_for(node: Mapping[str, Any]) -> type[NodeForm] | None:
    return NODE_FORMS.get(node_kind(node))
