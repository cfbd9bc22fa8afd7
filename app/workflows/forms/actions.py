"""The action nodes' forms: webhook, Jira issue, Linear issue (and their retry settings)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
from app.workflows.forms.base import NUMBER, Credential, NodeForm, secret_reference
from app.workflows.forms.mapping import (
    AS_TYPED,
    NUMBER_TEXT,
    OPTIONAL_TEXT,
    WORDS,
    Built,
    Entry,
    Fixed,
    Json,
    Key,
    Loc,
    Secret,
    as_mapping,
    choice,
    secret_name_of,
    text,
    unless,
    when,
)


def _secret_base(text: str) -> str:
    """A secret-name-safe version of a node id or header name."""
    base = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not base or not base[0].isalpha():
        base = f"s_{base}".rstrip("_")
    return base


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


RETRY_KEYS: tuple[Entry, ...] = (
    Key("retry_attempts", ("data", "retry", "attempts"), NUMBER_TEXT, absent=3),
    Fixed(("data", "retry", "backoff"), "exponential", field="retry_attempts"),
    Key("retry_initial_delay_ms", ("data", "retry", "initialDelayMs"), NUMBER_TEXT, absent=1000),
)
RETRY_GROUPS: dict[Loc, str] = {("data", "retry"): "retry_attempts"}
CONFIG = ("data", "config")
AUTH = (*CONFIG, "auth")


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
    KEYS = (
        Fixed(("data", "actionType"), ActionType.WEBHOOK.value),
        Key("name", ("data", "name")),
        Key("url", (*CONFIG, "url")),
        Key("method", (*CONFIG, "method"), choice("POST")),
        Built((*CONFIG, "headers"), lambda form: form.header_rows(), rows="headers"),
        Key("body", (*CONFIG, "body"), AS_TYPED),
        Key("auth_type", (*AUTH, "type"), choice("none")),
        Secret("token", "token_ref", (*AUTH, "token"), "token", when("auth_type", "bearer")),
        Key("username", (*AUTH, "username"), when=when("auth_type", "basic")),
        Secret(
            "password", "password_ref", (*AUTH, "password"), "password", when("auth_type", "basic")
        ),
        Key("client_id", (*AUTH, "clientId"), when=when("auth_type", "oauth2")),
        Secret(
            "client_secret",
            "client_secret_ref",
            (*AUTH, "clientSecret"),
            "client_secret",
            when("auth_type", "oauth2"),
        ),
        Key("token_url", (*AUTH, "tokenUrl"), when=when("auth_type", "oauth2")),
        Built(
            (*AUTH, "customHeaders"),
            lambda form: form.custom_header_rows(),
            when("auth_type", "custom"),
            rows="custom_headers",
        ),
        *RETRY_KEYS,
    )
    GROUPS = {**RETRY_GROUPS, CONFIG: "url", AUTH: "auth_type"}

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
        """The mapped fields, and the rows of the two header lists (irregular: a dict
        shown as rows, each secret header by its secret's name)."""
        config = as_mapping(data.get("config"))
        headers = as_mapping(config.get("headers"))
        custom = as_mapping(as_mapping(config.get("auth")).get("customHeaders"))
        return {
            **super().initial(data, **extra),
            "headers": [{"name": k, "value": text(v)} for k, v in headers.items()],
            "custom_headers": [{"name": k, "ref": secret_name_of(v)} for k, v in custom.items()],
        }

    def values(self) -> Json:
        # Each reading lists the typed credentials and repeated headers afresh.
        self.credentials = []
        self.node_errors = []
        return super().values()

    def header_rows(self) -> dict[str, str]:
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

    def credential(self, secret: Secret) -> str | None:
        """The reference a secret input writes (a typed value becomes a credential)."""
        typed = self[secret.field].data or ""
        known = self[secret.ref].data or ""
        known = known if SECRET_NAME_RE.fullmatch(known) else ""
        fallback = f"{_secret_base(self.node_id)}_{secret.suffix}"
        return self._reference(secret.path[1:], typed, known, fallback)

    def _reference(self, loc: Loc, typed: str, known: str, fallback: str) -> str | None:
        """The reference to store for a secret input: typed value -> secret, or the known one."""
        if typed.strip() and SECRET_REFERENCE_RE.fullmatch(typed.strip()):
            return typed.strip()  # a reference to an existing secret, typed by hand
        if typed:
            name = known or fallback[:64]
            self.credentials.append(Credential(loc, name, typed))
            return secret_reference(name)
        return secret_reference(known) if known else None

    def custom_header_rows(self) -> dict[str, str]:
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


ON_ISSUE = when("operation", "transition", "comment")
CREATE_ISSUE = unless("operation", "transition", "comment")


class JiraForm(_RetryMixin, NodeForm):
    kind = "jira"
    title = "Jira issue"
    KEYS = (
        Fixed(("data", "actionType"), ActionType.JIRA.value),
        Key("name", ("data", "name")),
        Key("operation", (*CONFIG, "operation"), choice("create"), when=ON_ISSUE),
        Key("issue_key", (*CONFIG, "issueKey"), AS_TYPED, when=ON_ISSUE),
        Key("transition", (*CONFIG, "transition"), when=when("operation", "transition")),
        Key("comment", (*CONFIG, "body"), AS_TYPED, when=when("operation", "comment")),
        Key("project_key", (*CONFIG, "projectKey"), when=CREATE_ISSUE),
        Key("issue_type", (*CONFIG, "issueType"), when=CREATE_ISSUE),
        Key("summary", (*CONFIG, "summary"), AS_TYPED, when=CREATE_ISSUE),
        Key("description", (*CONFIG, "description"), AS_TYPED, when=CREATE_ISSUE),
        Key("priority", (*CONFIG, "priority"), OPTIONAL_TEXT, when=CREATE_ISSUE),
        Key("labels", (*CONFIG, "labels"), WORDS, when=CREATE_ISSUE),
        *RETRY_KEYS,
    )
    GROUPS = {**RETRY_GROUPS, CONFIG: "project_key"}

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


LINEAR_PRIORITIES = [
    SelectChoice("", "Not set"),
    SelectChoice("0", "0 – No priority"),
    SelectChoice("1", "1 – Urgent"),
    SelectChoice("2", "2 – High"),
    SelectChoice("3", "3 – Medium"),
    SelectChoice("4", "4 – Low"),
]


UPDATE_ISSUE = when("operation", "update")
NEW_ISSUE = unless("operation", "update")


class LinearForm(_RetryMixin, NodeForm):
    kind = "linear"
    title = "Linear issue"
    KEYS = (
        Fixed(("data", "actionType"), ActionType.LINEAR.value),
        Key("name", ("data", "name")),
        Key("operation", (*CONFIG, "operation"), choice("create"), when=UPDATE_ISSUE),
        Key("issue_id", (*CONFIG, "issueId"), AS_TYPED, when=UPDATE_ISSUE),
        Key("state", (*CONFIG, "state"), when=UPDATE_ISSUE),
        Key("team_id", (*CONFIG, "teamId"), when=NEW_ISSUE),
        Key("issue_title", (*CONFIG, "title"), AS_TYPED, when=NEW_ISSUE),
        Key("description", (*CONFIG, "description"), AS_TYPED, when=NEW_ISSUE),
        Key("priority", (*CONFIG, "priority"), NUMBER_TEXT, when=NEW_ISSUE),
        Key("label_ids", (*CONFIG, "labelIds"), WORDS, when=NEW_ISSUE),
        *RETRY_KEYS,
    )
    GROUPS = {**RETRY_GROUPS, CONFIG: "team_id"}

    operation = SelectField("Operation", choices=LINEAR_OPERATIONS, default="create")
    issue_id = StringField("Issue id or identifier")
    state = StringField("State")
    team_id = StringField("Team id")
    issue_title = StringField("Title")
    description = TextAreaField("Description")
    priority = SelectField("Priority", choices=LINEAR_PRIORITIES, default="")
    label_ids = StringField("Label ids (optional, separated by spaces or commas)")
