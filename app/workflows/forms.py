"""Editor forms: one WTForms form per node type, and the small forms around the graph.

WTForms renders the fields and collects what was typed; the definition schema
(``app.workflows.schema``) decides what is valid. Each node form maps both ways:
``from_node(node)`` fills the form from a node of the definition (wire names),
``to_node_data()`` builds the node's ``data`` from what was typed. Nothing is
validated here beyond turning text into the JSON types the schema expects, so a
wrong value reaches the schema and its message is shown next to the field.

Credentials typed into auth fields never become part of ``to_node_data()``:
the form puts a ``{{ secrets.<name> }}`` reference there and lists the typed
value in ``credentials`` for the drafts service to store encrypted. Secret
inputs are always rendered empty; a hidden field carries the secret's *name*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wtforms import (
    FieldList,
    Form,
    FormField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.widgets import NumberInput

from app.forms_support import TextPolicy
from app.incidents.enums import IncidentStatus
from app.workflows.enums import ActionType, NodeType, TriggerType

__all__ = [
    "NODE_FORMS",
    "PREFIX",
    "AddEdgeForm",
    "AddNodeForm",
    "ConditionForm",
    "Credential",
    "DelayForm",
    "JiraForm",
    "LinearForm",
    "NodeForm",
    "SaveForm",
    "SettingsForm",
    "Target",
    "TriggerForm",
    "WebhookForm",
    "auto_name",
    "form_class_for",
    "node_kind",
    "secret_reference",
]

PREFIX = "node-"
_REFERENCE_RE = re.compile(r"^\{\{\s*secrets\.([a-z][a-z0-9_]{0,63})\s*\}\}$")
_SECRET_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_INT_RE = re.compile(r"^[+-]?\d{1,12}$")
_LIST_SPLIT_RE = re.compile(r"[\s,]+")

Loc = tuple[str | int, ...]
Json = dict[str, Any]


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


def _secret_name_of(value: Any) -> str:
    """The name in a ``{{ secrets.<name> }}`` reference; '' for anything else."""
    match = _REFERENCE_RE.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else ""


def _secret_base(text: str) -> str:
    """A secret-name-safe version of a node id or header name."""
    base = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not base or not base[0].isalpha():
        base = f"s_{base}".rstrip("_")
    return base


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return str(value)


def _parse_int(text: str | None) -> int | str | None:
    """A whole number, None for nothing, or the text itself (the schema then says why)."""
    text = (text or "").strip()
    if not text:
        return None
    return int(text) if _INT_RE.fullmatch(text) else text


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _put(data: Json, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is None (the schema then reports a missing field)."""
    if value is not None:
        data[key] = value


NUMBER = NumberInput()


# --- rows -------------------------------------------------------------------


class HeaderRow(TextPolicy, Form):  # type: ignore[misc]
    name = StringField("Header name")
    value = StringField("Value")


class SecretHeaderRow(TextPolicy, Form):  # type: ignore[misc]
    name = StringField("Header name")
    value = PasswordField("Secret value", render_kw={"autocomplete": "new-password"})
    ref = HiddenField()


class ConditionRow(TextPolicy, Form):  # type: ignore[misc]
    field = StringField("Incident field")
    value = StringField("Equals")


# --- node forms --------------------------------------------------------------


class NodeForm(TextPolicy, Form):  # type: ignore[misc]
    """The fields every node has, and the mapping of schema locations to fields."""

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
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
        form = cls(data=cls.initial(_mapping(node.get("data")), **extra))
        form.node_id = _text(node.get("id"))
        return form

    @classmethod
    def from_formdata(cls, formdata: Any, node_id: str) -> NodeForm:
        form = cls(formdata=formdata)
        form.node_id = node_id
        return form

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        return {"name": _text(data.get("name"))}

    def to_node_data(self) -> Json:
        raise NotImplementedError

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
        return {"data": self.to_node_data()}

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


class _RetryMixin:
    """Retry settings, shared by the three actions."""

    retry_attempts = StringField("Attempts (including the first)", widget=NUMBER)
    retry_initial_delay_ms = StringField("First retry after (milliseconds)", widget=NUMBER)

    RETRY_FIELDS: ClassVar[dict[Loc, str]] = {
        ("data", "retry"): "retry_attempts",
        ("data", "retry", "attempts"): "retry_attempts",
        ("data", "retry", "initialDelayMs"): "retry_initial_delay_ms",
        ("data", "retry", "backoff"): "retry_attempts",
    }

    @staticmethod
    def retry_initial(data: Mapping[str, Any]) -> Json:
        retry = _mapping(data.get("retry"))
        return {
            "retry_attempts": _number_text(retry.get("attempts", 3)),
            "retry_initial_delay_ms": _number_text(retry.get("initialDelayMs", 1000)),
        }

    def retry_data(self) -> Json:
        retry: Json = {}
        _put(retry, "attempts", _parse_int(self.retry_attempts.data))
        retry["backoff"] = "exponential"
        _put(retry, "initialDelayMs", _parse_int(self.retry_initial_delay_ms.data))
        return retry


AUTH_CHOICES = [
    SelectChoice("none", "No authentication"),
    SelectChoice("bearer", "Bearer token"),
    SelectChoice("basic", "Basic (user name and password)"),
    SelectChoice("oauth2", "OAuth2 client credentials"),
    SelectChoice("custom", "Custom headers"),
]
METHOD_CHOICES = [SelectChoice(m) for m in ("POST", "PUT", "PATCH")]
SECRET_INPUT = {"autocomplete": "new-password"}


class WebhookForm(_RetryMixin, NodeForm):
    kind = "webhook"
    title = "Webhook"
    FIELDS = {
        **NodeForm.FIELDS,
        **_RetryMixin.RETRY_FIELDS,
        ("data", "config"): "url",
        ("data", "config", "url"): "url",
        ("data", "config", "method"): "method",
        ("data", "config", "body"): "body",
        ("data", "config", "auth"): "auth_type",
        ("data", "config", "auth", "type"): "auth_type",
        ("data", "config", "auth", "token"): "token",
        ("data", "config", "auth", "username"): "username",
        ("data", "config", "auth", "password"): "password",
        ("data", "config", "auth", "clientId"): "client_id",
        ("data", "config", "auth", "clientSecret"): "client_secret",
        ("data", "config", "auth", "tokenUrl"): "token_url",
    }
    ROWS = {
        ("data", "config", "headers"): "headers",
        ("data", "config", "auth", "customHeaders"): "custom_headers",
    }
    #: Secret inputs -> (location in data, hidden field with the secret's name, name suffix)
    SECRETS: ClassVar[dict[str, tuple[Loc, str, str]]] = {
        "token": (("config", "auth", "token"), "token_ref", "token"),
        "password": (("config", "auth", "password"), "password_ref", "password"),
        "client_secret": (("config", "auth", "clientSecret"), "client_secret_ref", "client_secret"),
    }

    url = StringField("URL")
    method = SelectField("Method", choices=METHOD_CHOICES, default="POST")
    headers = FieldList(FormField(HeaderRow), label="Headers")
    body = TextAreaField("JSON body")
    auth_type = SelectField("Authentication", choices=AUTH_CHOICES, default="none")
    token = PasswordField("Bearer token", render_kw=SECRET_INPUT)
    token_ref = HiddenField()
    username = StringField("User name")
    password = PasswordField("Password", render_kw=SECRET_INPUT)
    password_ref = HiddenField()
    client_id = StringField("Client id")
    client_secret = PasswordField("Client secret", render_kw=SECRET_INPUT)
    client_secret_ref = HiddenField()
    token_url = StringField("Token URL")
    custom_headers = FieldList(FormField(SecretHeaderRow), label="Authentication headers")

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        config = _mapping(data.get("config"))
        auth = _mapping(config.get("auth"))
        headers = _mapping(config.get("headers"))
        custom = _mapping(auth.get("customHeaders"))
        auth_type = _text(auth.get("type")) or "none"
        return {
            **super().initial(data),
            **cls.retry_initial(data),
            "url": _text(config.get("url")),
            "method": _text(config.get("method")) or "POST",
            "headers": [{"name": k, "value": _text(v)} for k, v in headers.items()],
            "body": _text(config.get("body")),
            "auth_type": auth_type,
            "token_ref": _secret_name_of(auth.get("token")),
            "username": _text(auth.get("username")),
            "password_ref": _secret_name_of(auth.get("password")),
            "client_id": _text(auth.get("clientId")),
            "client_secret_ref": _secret_name_of(auth.get("clientSecret")),
            "token_url": _text(auth.get("tokenUrl")),
            "custom_headers": [{"name": k, "ref": _secret_name_of(v)} for k, v in custom.items()],
        }

    def to_node_data(self) -> Json:
        self.credentials = []
        self.node_errors = []
        config: Json = {
            "url": (self.url.data or "").strip(),
            "method": self.method.data or "POST",
            "headers": self._header_rows(),
            "body": self.body.data or "",
            "auth": self._auth(),
        }
        return {
            "actionType": ActionType.WEBHOOK.value,
            "name": (self.name.data or "").strip(),
            "config": config,
            "retry": self.retry_data(),
        }

    def _header_rows(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for entry in self.headers.entries:
            name = (entry.form.name.data or "").strip()
            value = entry.form.value.data or ""
            if not name and not value:
                continue
            if name in headers:
                self.node_errors.append(
                    f"The header '{name}' was listed twice; the first value is kept."
                )
                continue
            headers[name] = value
        return headers

    def _auth(self) -> Json:
        kind = self.auth_type.data or "none"
        auth: Json = {"type": kind}
        if kind == "bearer":
            _put(auth, "token", self._credential("token"))
        elif kind == "basic":
            auth["username"] = (self.username.data or "").strip()
            _put(auth, "password", self._credential("password"))
        elif kind == "oauth2":
            auth["clientId"] = (self.client_id.data or "").strip()
            _put(auth, "clientSecret", self._credential("client_secret"))
            auth["tokenUrl"] = (self.token_url.data or "").strip()
        elif kind == "custom":
            auth["customHeaders"] = self._custom_header_rows()
        return auth

    def _credential(self, field_name: str) -> str | None:
        loc, ref_field, suffix = self.SECRETS[field_name]
        typed = self[field_name].data or ""
        known = self[ref_field].data or ""
        known = known if _SECRET_NAME_RE.fullmatch(known) else ""
        return self._reference(loc, typed, known, f"{_secret_base(self.node_id)}_{suffix}")

    def _reference(self, loc: Loc, typed: str, known: str, fallback: str) -> str | None:
        """The reference to store for a secret input: typed value -> secret, or the known one."""
        if typed.strip() and _REFERENCE_RE.fullmatch(typed.strip()):
            return typed.strip()  # a reference to an existing secret, typed by hand
        if typed:
            name = known or fallback[:64]
            self.credentials.append(Credential(loc, name, typed))
            return secret_reference(name)
        return secret_reference(known) if known else None

    def _custom_header_rows(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        used: set[str] = set()
        for entry in self.custom_headers.entries:
            name = (entry.form.name.data or "").strip()
            typed = entry.form.value.data or ""
            known = entry.form.ref.data or ""
            known = known if _SECRET_NAME_RE.fullmatch(known) else ""
            if not name and not typed and not known:
                continue
            if name in headers:
                self.node_errors.append(
                    f"The header '{name}' was listed twice; the first value is kept."
                )
                continue
            fallback = f"{_secret_base(self.node_id)}_{_secret_base(name or 'header')}"[:64]
            while fallback in used:
                fallback = f"{fallback[:60]}_{len(used)}"
            used.add(fallback)
            reference = self._reference(
                ("config", "auth", "customHeaders", name), typed, known, fallback
            )
            headers[name] = reference or ""
        return headers


JIRA_OPERATIONS = [
    SelectChoice("create", "Create an issue"),
    SelectChoice("transition", "Transition an issue (change its status)"),
    SelectChoice("comment", "Comment on an issue"),
]
LINEAR_OPERATIONS = [
    SelectChoice("create", "Create an issue"),
    SelectChoice("update", "Move an issue to another state"),
]


class JiraForm(_RetryMixin, NodeForm):
    kind = "jira"
    title = "Jira issue"
    FIELDS = {
        **NodeForm.FIELDS,
        **_RetryMixin.RETRY_FIELDS,
        ("data", "config"): "project_key",
        ("data", "config", "projectKey"): "project_key",
        ("data", "config", "issueType"): "issue_type",
        ("data", "config", "summary"): "summary",
        ("data", "config", "description"): "description",
        ("data", "config", "priority"): "priority",
        ("data", "config", "labels"): "labels",
        ("data", "config", "operation"): "operation",
        ("data", "config", "issueKey"): "issue_key",
        ("data", "config", "transition"): "transition",
        ("data", "config", "body"): "comment",
    }

    operation = SelectField("Operation", choices=JIRA_OPERATIONS, default="create")
    project_key = StringField("Project key")
    issue_type = StringField("Issue type")
    summary = StringField("Summary")
    description = TextAreaField("Description")
    priority = StringField("Priority (optional)")
    labels = StringField("Labels (optional, separated by spaces or commas)")
    issue_key = StringField("Issue key")
    transition = StringField("Transition")
    comment = TextAreaField("Comment")

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        config = _mapping(data.get("config"))
        labels = config.get("labels")
        return {
            **super().initial(data),
            **cls.retry_initial(data),
            "operation": _text(config.get("operation")) or "create",
            "issue_key": _text(config.get("issueKey")),
            "transition": _text(config.get("transition")),
            "comment": _text(config.get("body")),
            "project_key": _text(config.get("projectKey")),
            "issue_type": _text(config.get("issueType")),
            "summary": _text(config.get("summary")),
            "description": _text(config.get("description")),
            "priority": _text(config.get("priority")),
            "labels": ", ".join(map(str, labels)) if isinstance(labels, list) else "",
        }

    def to_node_data(self) -> Json:
        operation = self.operation.data or "create"
        if operation in ("transition", "comment"):
            config: Json = {"operation": operation, "issueKey": self.issue_key.data or ""}
            if operation == "transition":
                config["transition"] = (self.transition.data or "").strip()
            else:
                config["body"] = self.comment.data or ""
            return {
                "actionType": ActionType.JIRA.value,
                "name": (self.name.data or "").strip(),
                "config": config,
                "retry": self.retry_data(),
            }
        config = {
            "projectKey": (self.project_key.data or "").strip(),
            "issueType": (self.issue_type.data or "").strip(),
            "summary": self.summary.data or "",
            "description": self.description.data or "",
        }
        _put(config, "priority", (self.priority.data or "").strip() or None)
        labels = [label for label in _LIST_SPLIT_RE.split(self.labels.data or "") if label]
        _put(config, "labels", labels or None)
        return {
            "actionType": ActionType.JIRA.value,
            "name": (self.name.data or "").strip(),
            "config": config,
            "retry": self.retry_data(),
        }


LINEAR_PRIORITIES = [
    SelectChoice("", "Not set"),
    SelectChoice("0", "0 – No priority"),
    SelectChoice("1", "1 – Urgent"),
    SelectChoice("2", "2 – High"),
    SelectChoice("3", "3 – Medium"),
    SelectChoice("4", "4 – Low"),
]


class LinearForm(_RetryMixin, NodeForm):
    kind = "linear"
    title = "Linear issue"
    FIELDS = {
        **NodeForm.FIELDS,
        **_RetryMixin.RETRY_FIELDS,
        ("data", "config"): "team_id",
        ("data", "config", "teamId"): "team_id",
        ("data", "config", "title"): "issue_title",
        ("data", "config", "description"): "description",
        ("data", "config", "priority"): "priority",
        ("data", "config", "labelIds"): "label_ids",
        ("data", "config", "operation"): "operation",
        ("data", "config", "issueId"): "issue_id",
        ("data", "config", "state"): "state",
    }

    operation = SelectField("Operation", choices=LINEAR_OPERATIONS, default="create")
    issue_id = StringField("Issue id or identifier")
    state = StringField("State")
    team_id = StringField("Team id")
    issue_title = StringField("Title")
    description = TextAreaField("Description")
    priority = SelectField("Priority", choices=LINEAR_PRIORITIES, default="")
    label_ids = StringField("Label ids (optional, separated by spaces or commas)")

    @classmethod
    def initial(cls, data: Mapping[str, Any], **extra: Any) -> Json:
        config = _mapping(data.get("config"))
        labels = config.get("labelIds")
        return {
            **super().initial(data),
            **cls.retry_initial(data),
            "operation": _text(config.get("operation")) or "create",
            "issue_id": _text(config.get("issueId")),
            "state": _text(config.get("state")),
            "team_id": _text(config.get("teamId")),
            "issue_title": _text(config.get("title")),
            "description": _text(config.get("description")),
            "priority": _number_text(config.get("priority")),
            "label_ids": ", ".join(map(str, labels)) if isinstance(labels, list) else "",
        }

    def to_node_data(self) -> Json:
        if self.operation.data == "update":
            return {
                "actionType": ActionType.LINEAR.value,
                "name": (self.name.data or "").strip(),
                "config": {
                    "operation": "update",
                    "issueId": self.issue_id.data or "",
                    "state": (self.state.data or "").strip(),
                },
                "retry": self.retry_data(),
            }
        config: Json = {
            "teamId": (self.team_id.data or "").strip(),
            "title": self.issue_title.data or "",
            "description": self.description.data or "",
        }
        _put(config, "priority", _parse_int(self.priority.data))
        labels = [label for label in _LIST_SPLIT_RE.split(self.label_ids.data or "") if label]
        _put(config, "labelIds", labels or None)
        return {
            "actionType": ActionType.LINEAR.value,
            "name": (self.name.data or "").strip(),
            "config": config,
            "retry": self.retry_data(),
        }


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


def _minutes(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return "1 minute" if value == 1 else f"{value} minutes"


def auto_name(kind: str, values: Mapping[str, Any]) -> str | None:
    """The name the editor gives a node from its settings (``values()`` shape), or None
    for kinds whose name does not describe a setting. A node keeps following its
    settings until the user gives it another name."""
    data = _mapping(values.get("data"))
    if kind == "delay":
        minutes = _minutes(data.get("durationMinutes"))
        return f"Wait {minutes}" if minutes else None
    if kind == "condition":
        field_name, value = _text(data.get("field")), _text(data.get("value"))
        if not field_name or not value:
            return None
        return f"Is it a {value}?" if field_name == "priority" else f"Is {field_name} {value}?"
    if kind == "trigger":
        trigger = _mapping(values.get("trigger"))
        kind_of = _text(trigger.get("type"))
        if kind_of == TriggerType.STATE_CHANGED.value:
            to = _text(_mapping(trigger.get("stateTransition")).get("to"))
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


# --- the forms around the graph ----------------------------------------------

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
        settings = _mapping(definition.get("settings"))
        form = cls(
            data={
                "name": _text(definition.get("name")),
                "description": _text(definition.get("description")),
                "timeout": _text(settings.get("timeout")) or "5min",
                "run_limit": (
                    "once"
                    if settings.get("oncePerIncident") is True
                    else "window"
                    if "oncePerIncidentMinutes" in settings
                    else ""
                ),
                "run_limit_minutes": _number_text(settings.get("oncePerIncidentMinutes")),
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
            minutes = _parse_int(self.run_limit_minutes.data)
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
