"""The editor's node forms map to and from the definition schema, for every node type.

Each round trip starts from what a browser posts, builds the node's data, has the
schema validate it inside a whole definition, fills a fresh form from that node
and reads the same data (and the same field values) back.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from app.definition import definition_errors, parse_definition
from app.definition.builders import LABEL_ID, TEAM_ID, definition, edge, trigger_node
from app.workflows.drafts.checks import parse_loc
from app.workflows.forms.actions import JiraForm, LinearForm, WebhookForm
from app.workflows.forms.base import NodeForm
from app.workflows.forms.nodes import ConditionForm, DelayForm, TriggerForm, form_class_for

Json = dict[str, Any]
NODE_TYPES = {
    WebhookForm: "action",
    JiraForm: "action",
    LinearForm: "action",
    ConditionForm: "condition",
    DelayForm: "delay",
}


def post(fields: Json) -> MultiDict[str, str]:
    """What the browser sends: every field with the node form's prefix."""
    return MultiDict({f"node-{name}": value for name, value in fields.items()})


def wrap(node_id: str, node_type: str, data: Json) -> Json:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 120}, "data": data}


def validated_node(node: Json) -> Json:
    """The node as stored after the schema accepted it in a whole definition."""
    defn = definition([trigger_node("start"), node], [edge("start", node["id"])])
    return parse_definition(defn).to_json()["nodes"][1]


def formdata_of(form: NodeForm) -> dict[str, str]:
    """Render-free: the name/value pairs the form's inputs would submit."""
    pairs: dict[str, str] = {}
    for field in form:
        if hasattr(field, "entries"):
            for entry in field.entries:
                for sub in entry.form:
                    pairs[sub.name] = "" if sub.type == "PasswordField" else (sub.data or "")
        elif field.type == "PasswordField":
            pairs[field.name] = ""
        else:
            pairs[field.name] = "" if field.data is None else str(field.data)
    return pairs


def round_trip(form_class: type[NodeForm], fields: Json, node_id: str = "step") -> Json:
    """form data -> node data -> schema -> form -> the same data and field values."""
    form = form_class.from_formdata(post(fields), node_id)
    data = form.to_node_data()
    stored = validated_node(wrap(node_id, NODE_TYPES[form_class], data))
    assert stored["data"] == data, "the schema changed the data the form produced"
    again = form_class.from_node(stored)
    assert again.to_node_data() == data
    shown = formdata_of(again)
    for name, value in fields.items():
        secret_input = name in SECRET_INPUTS or (
            name.startswith("custom_headers") and name.endswith("-value")
        )
        assert shown[f"node-{name}"] == ("" if secret_input else value), name
    return data


RETRY = {"retry_attempts": "4", "retry_initial_delay_ms": "2000"}
SECRET_INPUTS = ("token", "password", "client_secret")


def test_webhook_without_auth_round_trips() -> None:
    data = round_trip(
        WebhookForm,
        {
            "name": "Notify",
            "url": "https://hooks.example.com/incidents/{{ incident.id }}",
            "method": "PUT",
            "headers-0-name": "Content-Type",
            "headers-0-value": "application/json",
            "headers-1-name": "X-Team",
            "headers-1-value": "{{ team.name }}",
            "body": '{"title": {{ incident.title | tojson }}}',
            "auth_type": "none",
            **RETRY,
        },
    )
    assert data["config"]["headers"] == {
        "Content-Type": "application/json",
        "X-Team": "{{ team.name }}",
    }
    assert data["config"]["auth"] == {"type": "none"}
    assert data["retry"] == {"attempts": 4, "backoff": "exponential", "initialDelayMs": 2000}


def test_webhook_bearer_token_typed_in_becomes_a_secret_reference() -> None:
    form = WebhookForm.from_formdata(
        post(
            {
                "name": "Page",
                "url": "https://x.example.com",
                "auth_type": "bearer",
                "token": "tok-very-secret",
                "body": "{}",
                **RETRY,
            }
        ),
        "page-team",
    )
    data = form.to_node_data()
    assert data["config"]["auth"] == {"type": "bearer", "token": "{{ secrets.page_team_token }}"}
    assert [(c.loc, c.secret_name, c.value) for c in form.credentials] == [
        (("config", "auth", "token"), "page_team_token", "tok-very-secret")
    ]
    assert "tok-very-secret" not in repr(form.credentials)
    stored = validated_node(wrap("page-team", "action", data))
    again = WebhookForm.from_node(stored)
    assert again.token_ref.data == "page_team_token"
    assert 'value=""' in str(again.token())
    # Submitting again with the input left empty keeps the reference, and stores nothing.
    kept = WebhookForm.from_formdata(MultiDict(formdata_of(again)), "page-team")
    assert kept.to_node_data() == data
    assert kept.credentials == []


@pytest.mark.parametrize(
    ("auth_fields", "expected_auth"),
    [
        ({"auth_type": "none"}, {"type": "none"}),
        (
            {"auth_type": "bearer", "token": "{{ secrets.api_token }}"},
            {"type": "bearer", "token": "{{ secrets.api_token }}"},
        ),
        (
            {"auth_type": "basic", "username": "bot-{{ team.name }}", "password_ref": "bot_pw"},
            {
                "type": "basic",
                "username": "bot-{{ team.name }}",
                "password": "{{ secrets.bot_pw }}",
            },
        ),
        (
            {
                "auth_type": "oauth2",
                "client_id": "incidentflow",
                "client_secret_ref": "oauth_secret",
                "token_url": "https://auth.example.com/oauth/token",
            },
            {
                "type": "oauth2",
                "clientId": "incidentflow",
                "clientSecret": "{{ secrets.oauth_secret }}",
                "tokenUrl": "https://auth.example.com/oauth/token",
            },
        ),
        (
            {
                "auth_type": "custom",
                "custom_headers-0-name": "X-Api-Key",
                "custom_headers-0-ref": "api_key",
                "custom_headers-1-name": "X-Signature",
                "custom_headers-1-ref": "signature",
            },
            {
                "type": "custom",
                "customHeaders": {
                    "X-Api-Key": "{{ secrets.api_key }}",
                    "X-Signature": "{{ secrets.signature }}",
                },
            },
        ),
    ],
    ids=["none", "bearer", "basic", "oauth2", "custom"],
)
def test_webhook_round_trips_with_every_auth_type(auth_fields: Json, expected_auth: Json) -> None:
    fields = {
        "name": "Call",
        "url": "https://hooks.example.com/x",
        "method": "POST",
        "body": "{}",
        **auth_fields,
        **RETRY,
    }
    if auth_fields.get("token"):  # a typed reference is shown as the stored secret's name
        fields = {**fields, "token": ""}
        form = WebhookForm.from_formdata(post({**fields, "token": auth_fields["token"]}), "call")
        assert form.to_node_data()["config"]["auth"] == expected_auth
        assert form.credentials == []
        again = WebhookForm.from_node(validated_node(wrap("call", "action", form.to_node_data())))
        assert again.token_ref.data == "api_token"
        assert again.to_node_data()["config"]["auth"] == expected_auth
        return
    data = round_trip(WebhookForm, fields, node_id="call")
    assert data["config"]["auth"] == expected_auth


def test_webhook_credentials_typed_for_every_secret_input() -> None:
    form = WebhookForm.from_formdata(
        post(
            {
                "name": "Call",
                "url": "https://h.example.com",
                "body": "{}",
                "auth_type": "custom",
                "custom_headers-0-name": "X-Api-Key",
                "custom_headers-0-value": "k-123",
                "custom_headers-1-name": "X-Other",
                "custom_headers-1-ref": "other",
                "custom_headers-1-value": "rotated",
                **RETRY,
            }
        ),
        "n1",
    )
    data = form.to_node_data()
    assert data["config"]["auth"]["customHeaders"] == {
        "X-Api-Key": "{{ secrets.n1_x_api_key }}",
        "X-Other": "{{ secrets.other }}",  # a new value for a known secret keeps its name
    }
    assert {(c.secret_name, c.value) for c in form.credentials} == {
        ("n1_x_api_key", "k-123"),
        ("other", "rotated"),
    }
    validated_node(wrap("n1", "action", data))

    basic = WebhookForm.from_formdata(
        post(
            {
                "name": "B",
                "url": "https://h.example.com",
                "body": "{}",
                "auth_type": "basic",
                "username": "u",
                "password": "pw",
                **RETRY,
            }
        ),
        "B-2",
    )
    assert basic.to_node_data()["config"]["auth"]["password"] == "{{ secrets.b_2_password }}"
    oauth = WebhookForm.from_formdata(
        post(
            {
                "name": "O",
                "url": "https://h.example.com",
                "body": "{}",
                "auth_type": "oauth2",
                "client_id": "c",
                "client_secret": "cs",
                "token_url": "https://a.example.com/t",
                **RETRY,
            }
        ),
        "9lives",
    )
    assert oauth.to_node_data()["config"]["auth"]["clientSecret"] == (
        "{{ secrets.s_9lives_client_secret }}"
    )


def test_jira_round_trips() -> None:
    data = round_trip(
        JiraForm,
        {
            "name": "Ticket",
            "project_key": "OPS",
            "issue_type": "Bug",
            "summary": "[{{ incident.priority }}] {{ incident.title }}",
            "description": "{{ incident.description }}",
            "priority": "High",
            "labels": "incident, p1",
            **RETRY,
        },
    )
    assert data["config"]["labels"] == ["incident", "p1"]
    assert data["config"]["priority"] == "High"


def test_jira_optional_fields_are_left_out_when_empty() -> None:
    data = round_trip(
        JiraForm,
        {
            "name": "Ticket",
            "project_key": "OPS",
            "issue_type": "Task",
            "summary": "{{ incident.title }}",
            "description": "",
            "priority": "",
            "labels": "",
            **RETRY,
        },
    )
    assert "labels" not in data["config"] and "priority" not in data["config"]


def test_linear_round_trips() -> None:
    data = round_trip(
        LinearForm,
        {
            "name": "Issue",
            "team_id": TEAM_ID,
            "issue_title": "{{ incident.title }}",
            "description": "Opened by {{ workflow.name }}",
            "priority": "2",
            "label_ids": LABEL_ID,
            **RETRY,
        },
    )
    assert data["config"]["priority"] == 2
    assert data["config"]["labelIds"] == [LABEL_ID]


def test_condition_round_trips() -> None:
    data = round_trip(
        ConditionForm, {"name": "Still open?", "field": "status", "value": "TRIGGERED"}
    )
    assert data == {"field": "status", "operator": "=", "value": "TRIGGERED", "name": "Still open?"}


def test_delay_round_trips() -> None:
    data = round_trip(DelayForm, {"name": "Wait", "duration_minutes": "15"})
    assert data == {"durationMinutes": 15, "name": "Wait"}


TRIGGER_CASES = {
    "incident_created": (
        {
            "conditions-0-field": "priority",
            "conditions-0-value": "P1",
            "conditions-1-field": "metadata.region",
            "conditions-1-value": "eu",
        },
        {
            "type": "incident_created",
            "conditions": [
                {"field": "priority", "value": "P1"},
                {"field": "metadata.region", "value": "eu"},
            ],
        },
    ),
    "state_changed": (
        {"state_from": "TRIGGERED", "state_to": "RESOLVED"},
        {
            "type": "state_changed",
            "conditions": [],
            "stateTransition": {"from": "TRIGGERED", "to": "RESOLVED"},
        },
    ),
    "escalation": (
        {"conditions-0-field": "service", "conditions-0-value": "db"},
        {"type": "escalation", "conditions": [{"field": "service", "value": "db"}]},
    ),
    "manual": ({}, {"type": "manual", "conditions": []}),
    "age": (
        {"age_threshold_minutes": "90"},
        {"type": "age", "conditions": [], "ageThresholdMinutes": 90},
    ),
}


@pytest.mark.parametrize("trigger_type", list(TRIGGER_CASES))
def test_trigger_round_trips_for_every_trigger_type(trigger_type: str) -> None:
    fields, expected = TRIGGER_CASES[trigger_type]
    fields = {"name": "Start", "trigger_type": trigger_type, **fields}
    form = TriggerForm.from_formdata(post(fields), "start")
    node_data, trigger = form.to_node_data(), form.to_trigger()
    assert trigger == expected
    defn = definition([wrap("start", "trigger", node_data)], [], trigger)
    stored = parse_definition(defn).to_json()
    assert stored["trigger"] == trigger
    again = TriggerForm.from_node(stored["nodes"][0], trigger=stored["trigger"])
    assert again.to_node_data() == node_data and again.to_trigger() == trigger
    shown = formdata_of(again)
    for name, value in fields.items():
        assert shown[f"node-{name}"] == value, name


def test_trigger_settings_of_another_type_are_dropped() -> None:
    form = TriggerForm.from_formdata(
        post(
            {
                "name": "S",
                "trigger_type": "manual",
                "age_threshold_minutes": "10",
                "state_to": "RESOLVED",
            }
        ),
        "s",
    )
    assert form.to_trigger() == {"type": "manual", "conditions": []}


def test_blank_rows_are_dropped_and_a_duplicate_header_is_reported() -> None:
    form = WebhookForm.from_formdata(
        post(
            {
                "name": "W",
                "url": "https://h.example.com",
                "body": "",
                "auth_type": "none",
                "headers-0-name": "X-A",
                "headers-0-value": "1",
                "headers-1-name": "",
                "headers-1-value": "",
                "headers-2-name": "X-A",
                "headers-2-value": "2",
                **RETRY,
            }
        ),
        "w",
    )
    assert form.to_node_data()["config"]["headers"] == {"X-A": "1"}
    assert form.node_errors == ["The header 'X-A' was listed twice; the first value is kept."]


def test_text_in_a_number_field_reaches_the_schema_and_is_explained() -> None:
    form = DelayForm.from_formdata(post({"name": "Wait", "duration_minutes": "ten"}), "d")
    data = form.to_node_data()
    assert data["durationMinutes"] == "ten"
    errors = _errors(wrap("d", "delay", data))
    assert ("nodes[1].data.durationMinutes", "Expected a whole number.") in errors


def _errors(node: Json) -> list[tuple[str, str]]:
    defn = definition([trigger_node("start"), node], [edge("start", node["id"])])
    with pytest.raises(ValidationError) as caught:
        parse_definition(defn)
    return [(e.loc, e.message) for e in definition_errors(caught.value)]


def _attach_schema_errors(form: NodeForm, node: Json, index: int = 1) -> None:
    defn = definition([trigger_node("start"), node], [edge("start", node["id"])])
    with pytest.raises(ValidationError) as caught:
        parse_definition(defn)
    for error in definition_errors(caught.value):
        loc = parse_loc(error.loc)
        assert loc[:2] == ("nodes", index)
        form.attach(loc[2:], error.code, error.message)


def test_schema_errors_land_next_to_their_fields() -> None:
    form = WebhookForm.from_formdata(
        post(
            {
                "name": "W",
                "url": "ftp://nope",
                "body": "",
                "auth_type": "bearer",
                "headers-0-name": "Bad Header",
                "headers-0-value": "x",
                "headers-1-name": "X-Ok",
                "headers-1-value": "line\nbreak",
                "retry_attempts": "0",
                "retry_initial_delay_ms": "1000",
            }
        ),
        "w",
    )
    node = wrap("w", "action", form.to_node_data())
    _attach_schema_errors(form, node)
    assert form.url.errors and "http://" in form.url.errors[0]
    assert form.token.errors == ["This field is required."]
    assert form.retry_attempts.errors == ["Must be at least 1."]
    assert form.headers.entries[0].form.name.errors  # an invalid header name
    assert "one line" in form.headers.entries[1].form.value.errors[0]
    assert form.node_errors == []


def test_trigger_errors_land_next_to_their_fields() -> None:
    form = TriggerForm.from_formdata(
        post(
            {
                "name": "",
                "trigger_type": "state_changed",
                "state_from": "RESOLVED",
                "state_to": "RESOLVED",
                "conditions-0-field": "colour",
                "conditions-0-value": "red",
            }
        ),
        "start",
    )
    defn = definition([wrap("start", "trigger", form.to_node_data())], [], form.to_trigger())
    with pytest.raises(ValidationError) as caught:
        parse_definition(defn)
    for error in definition_errors(caught.value):
        loc = parse_loc(error.loc)
        form.attach(loc[2:] if loc[0] == "nodes" else loc, error.code, error.message)
    assert form.name.errors
    assert form.conditions.entries[0].form.field.errors
    assert form.anchor_for(("trigger", "conditions", 0, "field")) == "node-conditions-0-field"
    assert form.anchor_for(("data", "config", "url")) is None


def test_trigger_state_error_after_fields_pass() -> None:
    form = TriggerForm.from_formdata(
        post(
            {
                "name": "S",
                "trigger_type": "state_changed",
                "state_from": "RESOLVED",
                "state_to": "RESOLVED",
            }
        ),
        "start",
    )
    defn = definition([wrap("start", "trigger", form.to_node_data())], [], form.to_trigger())
    with pytest.raises(ValidationError) as caught:
        parse_definition(defn)
    for error in definition_errors(caught.value):
        form.attach(parse_loc(error.loc), error.code, error.message)
    assert form.state_to.errors and "different" in form.state_to.errors[0]


def test_secret_inputs_never_render_a_value() -> None:
    form = WebhookForm.from_formdata(
        post(
            {
                "name": "W",
                "url": "https://h.example.com",
                "auth_type": "custom",
                "token": "tok-secret",
                "password": "pw-secret",
                "client_secret": "cs-secret",
                "custom_headers-0-name": "X-Key",
                "custom_headers-0-value": "hdr-secret",
            }
        ),
        "w",
    )
    html = "".join(str(field()) for field in (form.token, form.password, form.client_secret)) + str(
        form.custom_headers.entries[0].form.value()
    )
    for secret in ("tok-secret", "pw-secret", "cs-secret", "hdr-secret"):
        assert secret not in html


def test_form_class_for_every_node_kind() -> None:
    assert form_class_for({"type": "trigger"}) is TriggerForm
    assert form_class_for({"type": "condition"}) is ConditionForm
    assert form_class_for({"type": "delay"}) is DelayForm
    for action, cls in (("webhook", WebhookForm), ("jira", JiraForm), ("linear", LinearForm)):
        assert form_class_for({"type": "action", "data": {"actionType": action}}) is cls
    assert form_class_for({"type": "action", "data": {"actionType": "fax"}}) is None


def test_placeholders_are_marked_on_their_fields() -> None:
    node = validated_node(
        wrap(
            "w", "action", copy.deepcopy(_webhook_with_url("https://h.example.com/<<fill: path>>"))
        )
    )
    form = WebhookForm.from_node(node)
    form.mark(("data", "config", "url"), "path")
    assert form.url.must_fill == "path"


def _webhook_with_url(url: str) -> Json:
    return {
        "actionType": "webhook",
        "name": "W",
        "config": {
            "url": url,
            "method": "POST",
            "headers": {},
            "body": "",
            "auth": {"type": "none"},
        },
        "retry": {"attempts": 1, "backoff": "exponential", "initialDelayMs": 100},
    }


def test_parse_loc_reads_the_schema_locations() -> None:
    assert parse_loc('nodes[2].data.config.headers["X.Y"]') == (
        "nodes",
        2,
        "data",
        "config",
        "headers",
        "X.Y",
    )
    assert parse_loc("trigger.conditions[0].value") == ("trigger", "conditions", 0, "value")
    assert parse_loc('nodes[0].data.config.headers["0"]')[-1] == "0"


PREVIOUS_KEY = "{{ incident.previous['Jira issue for P1 incidents'].create_jira.result.key }}"


@pytest.mark.parametrize(
    ("fields", "config"),
    [
        (
            {"operation": "transition", "issue_key": PREVIOUS_KEY, "transition": "Done"},
            {"operation": "transition", "issueKey": PREVIOUS_KEY, "transition": "Done"},
        ),
        (
            {"operation": "comment", "issue_key": "OPS-12", "comment": "Resolved."},
            {"operation": "comment", "issueKey": "OPS-12", "body": "Resolved."},
        ),
    ],
)
def test_jira_update_operations_round_trip(fields: Json, config: Json) -> None:
    data = round_trip(JiraForm, {"name": "Follow up", **fields, **RETRY})
    assert data["config"] == config


def test_linear_update_round_trips() -> None:
    data = round_trip(
        LinearForm,
        {
            "name": "Done",
            "operation": "update",
            "issue_id": "ENG-12",
            "state": "Done",
            **RETRY,
        },
    )
    assert data["config"] == {"operation": "update", "issueId": "ENG-12", "state": "Done"}


def test_a_transition_without_its_fields_is_explained_next_to_them() -> None:
    form = JiraForm.from_formdata(
        post({"name": "Close", "operation": "transition", "issue_key": "", **RETRY}), "close"
    )
    _attach_schema_errors(form, wrap("close", "action", form.to_node_data()))
    assert form.issue_key.errors == ["This field must not be empty."]
    assert form.transition.errors == ["This field must not be empty."]
