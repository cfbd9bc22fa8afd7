"""The other nodes' forms: condition, delay and the trigger; which form edits a node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wtforms import FieldList, Form, FormField, SelectChoice, SelectField, StringField

from app.forms_support import TextPolicy
from app.incidents.enums import IncidentStatus
from app.workflows.enums import NodeType, TriggerType
from app.workflows.forms.actions import JiraForm, LinearForm, WebhookForm
from app.workflows.forms.base import (
    NUMBER,
    Json,
    NodeForm,
    _mapping,
    _number_text,
    _parse_int,
    _put,
    _text,
)


class ConditionRow(TextPolicy, Form):  # type: ignore[misc]
    field = StringField("Incident field")
    value = StringField("Equals")


class ConditionForm(NodeForm):
    kind = "condition"
    title = "Condition"
    FIELDS = {
        **NodeForm.FIELDS,
        ("data", "field"): "field",
        ("data", "operator"): "field",
        ("data", "value"): "value",
    }

    field = StringField("Incident field")
    value = StringField("Equals")

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        return {
            **super().initial(data),
            "field": _text(data.get("field")),
            "value": _text(data.get("value")),
        }

    def to_node_data(self) -> Json:
        return {
            "field": (self.field.data or "").strip(),
            "operator": "=",
            "value": (self.value.data or "").strip(),
            "name": (self.name.data or "").strip(),
        }


class DelayForm(NodeForm):
    kind = "delay"
    title = "Delay"
    FIELDS = {**NodeForm.FIELDS, ("data", "durationMinutes"): "duration_minutes"}

    duration_minutes = StringField("Wait (minutes)", widget=NUMBER)

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        return {
            **super().initial(data),
            "duration_minutes": _number_text(data.get("durationMinutes")),
        }

    def to_node_data(self) -> Json:
        data: Json = {}
        _put(data, "durationMinutes", _parse_int(self.duration_minutes.data))
        data["name"] = (self.name.data or "").strip()
        return data


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
    FIELDS = {
        **NodeForm.FIELDS,
        ("trigger",): "trigger_type",
        ("trigger", "type"): "trigger_type",
        ("trigger", "ageThresholdMinutes"): "age_threshold_minutes",
        ("trigger", "stateTransition"): "state_to",
        ("trigger", "stateTransition", "to"): "state_to",
        ("trigger", "stateTransition", "from"): "state_from",
        ("trigger", "workflowIds"): "workflow_ids",
        ("trigger", "minFailures"): "min_failures",
    }
    ROWS = {("trigger", "conditions"): "conditions"}

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
        trigger = _mapping(extra.get("trigger"))
        transition = _mapping(trigger.get("stateTransition"))
        conditions = trigger.get("conditions")
        rows = [_mapping(row) for row in conditions] if isinstance(conditions, list) else []
        return {
            **super().initial(data),
            "trigger_type": _text(trigger.get("type")) or TriggerType.MANUAL.value,
            "conditions": [
                {"field": _text(row.get("field")), "value": _text(row.get("value"))} for row in rows
            ],
            "age_threshold_minutes": _number_text(trigger.get("ageThresholdMinutes")),
            "state_from": _text(transition.get("from")),
            "state_to": _text(transition.get("to")) or IncidentStatus.ACKNOWLEDGED.value,
            "min_failures": _number_text(trigger.get("minFailures")),
            "workflow_ids": ", ".join(
                str(i) for i in trigger.get("workflowIds") or [] if isinstance(i, str)
            ),
        }

    @classmethod
    def from_node(cls, node: Mapping[str, Any], **extra: Any) -> NodeForm:
        """``trigger=`` is the definition's trigger settings."""
        return super().from_node(node, **extra)

    def to_node_data(self) -> Json:
        return {"name": (self.name.data or "").strip()}

    def values(self) -> Json:
        return {"data": self.to_node_data(), "trigger": self.to_trigger()}

    def to_trigger(self) -> Json:
        kind = self.trigger_type.data or TriggerType.MANUAL.value
        trigger: Json = {"type": kind, "conditions": []}
        for entry in self.conditions.entries:
            field_name = (entry.form.field.data or "").strip()
            value = (entry.form.value.data or "").strip()
            if field_name or value:
                trigger["conditions"].append({"field": field_name, "value": value})
        if kind == TriggerType.AGE.value:
            _put(trigger, "ageThresholdMinutes", _parse_int(self.age_threshold_minutes.data))
        if kind == TriggerType.STATE_CHANGED.value:
            transition: Json = {"to": self.state_to.data or ""}
            _put(transition, "from", self.state_from.data or None)
            trigger["stateTransition"] = transition
        if kind == TriggerType.WORKFLOW_FAILED.value:
            ids = [part.strip() for part in (self.workflow_ids.data or "").split(",")]
            if any(ids):
                trigger["workflowIds"] = [i for i in ids if i]
            _put(trigger, "minFailures", _parse_int(self.min_failures.data))
        return trigger


NODE_FORMS: dict[str, type[NodeForm]] = {
    form.kind: form
    for form in (TriggerForm, WebhookForm, JiraForm, LinearForm, ConditionForm, DelayForm)
}


def node_kind(node: Mapping[str, Any]) -> str:
    """'trigger', 'condition', 'delay' or the action type ('webhook', 'jira', 'linear')."""
    kind = _text(node.get("type"))
    if kind == NodeType.ACTION.value:
        return _text(_mapping(node.get("data")).get("actionType"))
    return kind


def form_class_for(node: Mapping[str, Any]) -> type[NodeForm] | None:
    return NODE_FORMS.get(node_kind(node))
