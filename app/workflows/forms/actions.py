"""The action nodes' forms: webhook, Jira issue, Linear issue (and their retry settings)."""

from __future__ import annotations

from collections.abc import Mapping
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

from app.definition.limits import SECRET_NAME_RE, SECRET_REFERENCE_RE
from app.forms_support import TextPolicy
from app.workflows.enums import ActionType
from app.workflows.forms.base import (
    _LIST_SPLIT_RE,
    NUMBER,
    Credential,
    Json,
    Loc,
    NodeForm,
    _mapping,
    _number_text,
    _parse_int,
    _put,
    _secret_base,
    _secret_name_of,
    _text,
    secret_reference,
)

# --- rows -------------------------------------------------------------------


class HeaderRow(TextPolicy, Form):  # type: ignore[misc]
    name = StringField("Header name")
    value = StringField("Value")


class SecretHeaderRow(TextPolicy, Form):  # type: ignore[misc]
    name = StringField("Header name")
    value = PasswordField("Secret value", render_kw={"autocomplete": "new-password"})
    ref = HiddenField()


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
        known = known if SECRET_NAME_RE.fullmatch(known) else ""
        return self._reference(loc, typed, known, f"{_secret_base(self.node_id)}_{suffix}")

    def _reference(self, loc: Loc, typed: str, known: str, fallback: str) -> str | None:
        """The reference to store for a secret input: typed value -> secret, or the known one."""
        if typed.strip() and SECRET_REFERENCE_RE.fullmatch(typed.strip()):
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
            known = known if SECRET_NAME_RE.fullmatch(known) else ""
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
