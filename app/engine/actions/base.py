"""Types shared by the actions: settings, a prepared request, an attempt's outcome.

A request is *prepared* (templates rendered, secrets filled in, body built)
separately from being *performed* (sent through the outbound guard), so a dry
run can show exactly what would be sent, with secrets masked.
"""

from __future__ import annotations

import json
import re
import ssl
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, Protocol

import httpx

from app.engine.actions.oauth import OAuthParams, TokenCache, default_token_cache
from app.engine.outbound import AllowList, OutboundGuard, Resolver
from app.engine.scrub import NOT_CREDENTIALS, Scrubber
from app.workflows.enums import ActionType

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_LINEAR_API_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "EXCERPT_BYTES",
    "REDACTED",
    "ActionClock",
    "ActionInputError",
    "ActionSettings",
    "AttemptOutcome",
    "Interpretation",
    "Lookup",
    "LookupFailed",
    "PreparedRequest",
    "Render",
    "ResponseData",
    "idempotency_key",
    "render_field",
    "sentence",
    "secret_from_reference",
    "credential_values",
]

DEFAULT_LINEAR_API_URL = "https://api.linear.app/graphql"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_REQUEST_TIMEOUT = 30.0
#: How much of a response is kept for the run's timeline.
EXCERPT_BYTES = 4 * 1024
#: How much of a response is read at all (enough for any JSON we parse).
MAX_RESPONSE_BYTES = 256 * 1024
#: A webhook response body at most this large is parsed into the result.
MAX_RESULT_BODY_BYTES = 16 * 1024
#: How much of a request body a preview shows.
MAX_PREVIEW_BODY_CHARS = 64 * 1024
REDACTED = "[redacted]"

#: The engine's sandboxed renderer: template source in, text out; raises a
#: ValueError subclass (TemplateRenderError) with a message for users.
Render = Callable[[str], str]

_SECRET_REFERENCE_RE = re.compile(r"^\{\{\s*secrets\.([a-z][a-z0-9_]{0,63})\s*\}\}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c0d8e-3c1b-5d2a-9a57-6e2f1f0b7c41")


class ActionClock(Protocol):
    """The part of the engine clock actions use (``app.engine.clock.Clock`` fits)."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going backwards."""
        ...


class ActionInputError(ValueError):
    """The action cannot be built from its definition and data (not retryable)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ActionSettings:
    """Instance settings for actions; ``from_config`` reads them from app.config.

    Keys: ``OUTBOUND_ALLOW`` (hosts and networks the guard lets through, a
    list or a comma string), ``OUTBOUND_CONNECT_TIMEOUT`` and
    ``OUTBOUND_REQUEST_TIMEOUT`` (seconds), ``LINEAR_API_URL``.
    """

    allow: AllowList = field(default_factory=AllowList)
    linear_api_url: str = DEFAULT_LINEAR_API_URL
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    token_cache: TokenCache = field(default=default_token_cache, repr=False)
    resolver: Resolver | None = field(default=None, repr=False)
    #: TLS trust for outgoing requests; None uses the certifi bundle.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> ActionSettings:
        values: dict[str, Any] = {"allow": AllowList.from_config(config)}
        if config.get("LINEAR_API_URL"):
            values["linear_api_url"] = str(config["LINEAR_API_URL"])
        if config.get("OUTBOUND_CONNECT_TIMEOUT") is not None:
            values["connect_timeout"] = float(config["OUTBOUND_CONNECT_TIMEOUT"])
        if config.get("OUTBOUND_REQUEST_TIMEOUT") is not None:
            values["request_timeout"] = float(config["OUTBOUND_REQUEST_TIMEOUT"])
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_current_app(cls) -> ActionSettings:
        """Settings from the Flask app in context, or the defaults outside one.

        ``app.config["ENGINE_ACTION_SETTINGS"]``, when it holds an
        ActionSettings, is used as it is (tests inject resolvers or TLS trust).
        Otherwise settings are built once per set of config values and reused
        (an attempt asks for them every time), so a changed config is seen at
        the next call.
        """
        from flask import current_app, has_app_context

        if not has_app_context():
            return _DEFAULT_SETTINGS
        config = current_app.config
        given = config.get("ENGINE_ACTION_SETTINGS")
        if isinstance(given, ActionSettings):
            return given
        key = _config_key(config)
        return cls.from_config(config) if key is None else _settings_for(key)

    def guard(self) -> OutboundGuard:
        return OutboundGuard(allow=self.allow, resolver=self.resolver, ssl_context=self.ssl_context)


_DEFAULT_SETTINGS = ActionSettings()
#: The config values ``ActionSettings.from_config`` reads.
_CONFIG_NAMES = (
    "OUTBOUND_ALLOW",
    "LINEAR_API_URL",
    "OUTBOUND_CONNECT_TIMEOUT",
    "OUTBOUND_REQUEST_TIMEOUT",
)


def _config_key(config: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The config values settings are built from, as a cache key; None if unhashable."""
    allow, *rest = (config.get(name) for name in _CONFIG_NAMES)
    key = (tuple(allow) if isinstance(allow, list) else allow, *rest)
    try:
        hash(key)
    except TypeError:
        return None
    return key


@lru_cache(maxsize=16)
def _settings_for(key: tuple[Any, ...]) -> ActionSettings:
    return ActionSettings.from_config(dict(zip(_CONFIG_NAMES, key, strict=True)))


def idempotency_key(execution_id: object, node_id: str) -> str:
    """A stable key for one node of one run: the same on every retry."""
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{execution_id}:{node_id}"))


class LookupFailed(Exception):
    """A lookup's answer could not be used: the action fails with ``message``."""

    def __init__(
        self, message: str, *, retryable: bool = False, response: ResponseData | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.response = response


@dataclass(frozen=True, eq=False)
class Lookup:
    """A read the request depends on, sent first with the same headers.

    Updates name things people know (a Jira transition called "Done", a Linear
    state) while the APIs want ids: the lookup reads them, and ``complete``
    turns its answer into the request's body and interpretation context, or
    raises LookupFailed. A lookup changes nothing on the other side.
    """

    method: str
    url: str
    body: bytes | None = field(repr=False)
    #: What is looked up, for a preview: "the issue's transitions".
    purpose: str
    complete: Callable[[ResponseData], tuple[bytes, Mapping[str, str]]] = field(repr=False)


@dataclass(frozen=True, eq=False)
class PreparedRequest:
    """A request ready to send. It holds credentials: show ``masked()``, never it."""

    action_type: ActionType
    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes | None = field(repr=False)
    #: Who the request is for, in messages: "Jira", "Linear" or the webhook host.
    target: str
    #: Lower-case names of headers whose values are credentials.
    sensitive_headers: frozenset[str] = frozenset()
    oauth: OAuthParams | None = None
    #: Values the response interpretation needs (e.g. the Jira site URL).
    context: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Every secret value of the workflow, masked wherever it appears.
    secret_values: tuple[str, ...] = field(default=(), repr=False)
    #: The credentials among them (and basic auth's encoded pair): scrubbed from
    #: what comes back before any of it is clipped or kept.
    scrub_values: tuple[str, ...] = field(default=(), repr=False)
    #: A read sent first; its answer completes ``body`` (see Lookup).
    lookup: Lookup | None = field(default=None, repr=False)

    def masked(self, secret_values: Iterable[str] = ()) -> dict[str, Any]:
        """The request as it would be sent, with credentials and secrets masked."""
        mask = Scrubber((*self.secret_values, *secret_values, *self.scrub_values), marker=REDACTED)
        headers: dict[str, str] = {}
        if self.oauth is not None:
            headers["Authorization"] = (
                f"Bearer {REDACTED} (OAuth2 token from {self.oauth.token_url})"
            )
        for name, value in self.headers.items():
            headers[name] = REDACTED if name.lower() in self.sensitive_headers else mask(value)
        view: dict[str, Any] = {"method": self.method, "url": mask(self.url), "headers": headers}
        if self.body is not None:
            # Masked first: a cut through a secret would leave its start visible.
            text = mask.text(self.body.decode("utf-8", errors="replace"))
            if len(text) > MAX_PREVIEW_BODY_CHARS:
                text = text[:MAX_PREVIEW_BODY_CHARS] + "…"
            view["body"] = text
        if self.lookup is not None:
            view["lookup"] = {
                "method": self.lookup.method,
                "url": mask(self.lookup.url),
                "purpose": self.lookup.purpose,
            }
        return view

    def __repr__(self) -> str:
        return f"PreparedRequest({self.masked()!r})"


@dataclass(frozen=True)
class ResponseData:
    """What was read of a response: status, headers and at most MAX_RESPONSE_BYTES."""

    status_code: int
    reason: str
    headers: httpx.Headers
    body: bytes
    truncated: bool
    #: Secret values scrubbed from the text before it is clipped (see PreparedRequest).
    scrub_values: tuple[str, ...] = field(default=(), repr=False)

    @cached_property
    def _visible(self) -> bytes:
        """The body with the secrets scrubbed, before any excerpt is cut from it."""
        if not self.scrub_values:
            return self.body
        text = self.body.decode("utf-8", errors="replace")
        return Scrubber(self.scrub_values).text(text).encode()

    def text(self, limit: int | None = None) -> str:
        data = self._visible if limit is None else self._visible[:limit]
        return data.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, or None when it is not (or was cut short)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def excerpt(self) -> dict[str, Any]:
        """A bounded copy for the run's timeline."""
        shown = self._visible[:EXCERPT_BYTES]
        kept = {
            name: value
            for name, value in self.headers.items()
            if name.lower()
            in ("content-type", "location", "retry-after", "x-request-id", "request-id")
        }
        return {
            "status": self.status_code,
            "headers": kept,
            "body": shown.decode("utf-8", errors="replace"),
            "truncated": self.truncated or len(self._visible) > EXCERPT_BYTES,
        }


@dataclass(frozen=True)
class Interpretation:
    """What an action made of a response."""

    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = False


@dataclass(frozen=True)
class AttemptOutcome:
    """One attempt of one action: what was sent, what came back, what it means."""

    ok: bool
    #: The HTTP status of the final response, None when there was none.
    status_code: int | None = None
    #: Parsed fields for later templates (``steps.<nodeId>.result``): Jira
    #: {"id","key","url","self"}, Linear {"id","identifier","url"},
    #: webhook {"status","body"}.
    result: dict[str, Any] | None = None
    #: A bounded copy of the response ({"status","headers","body","truncated"}).
    response: dict[str, Any] | None = None
    #: A message for users; None on success.
    error: str | None = None
    retryable: bool = False
    retry_after_seconds: float | None = None
    #: The attempt ran out of time (its total timeout or a socket timeout).
    timed_out: bool = False
    duration_ms: int = 0
    #: What was sent, credentials replaced by "[redacted]"; None if nothing was built.
    request: dict[str, Any] | None = None
    #: Nothing was sent: the destination already had its share of requests in flight.
    #: Not an attempt; the step is tried again in a moment.
    deferred: bool = False

    @property
    def response_excerpt(self) -> str | None:
        return None if self.response is None else str(self.response.get("body", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "statusCode": self.status_code,
            "result": self.result,
            "response": self.response,
            "error": self.error,
            "retryable": self.retryable,
            "retryAfterSeconds": self.retry_after_seconds,
            "timedOut": self.timed_out,
            "durationMs": self.duration_ms,
            "request": self.request,
        }


# --- Helpers for the action modules -----------------------------------------


def sentence(text: str) -> str:
    """``text`` ending with a full stop (unless it already ends with punctuation)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def render_field(render: Render, source: str, label: str) -> str:
    """Render one template field; a render error becomes an ActionInputError."""
    try:
        return render(source)
    except ValueError as exc:
        message = str(exc).strip() or "the template could not be rendered"
        raise ActionInputError(f"Could not render the {label}: {message}") from None


def credential_values(secrets: Mapping[str, str]) -> tuple[str, ...]:
    """The workflow's secret values that are credentials (not addresses such as Jira's site)."""
    return tuple(value for name, value in secrets.items() if value and name not in NOT_CREDENTIALS)


def secret_from_reference(reference: str, secrets: Mapping[str, str], label: str) -> str:
    """The value of a ``{{ secrets.<name> }}`` credential field."""
    match = _SECRET_REFERENCE_RE.fullmatch(reference.strip())
    if match is None:
        raise ActionInputError(
            f"The {label} must be a secret reference like {{{{ secrets.<name> }}}}."
        )
    return required_secret(match.group(1), secrets, label)


def required_secret(name: str, secrets: Mapping[str, str], label: str) -> str:
    value = secrets.get(name)
    if not value:
        raise ActionInputError(
            f"The {label} uses the secret '{name}', which this workflow does not have; "
            "add it under the workflow's secrets."
        )
    return value


def check_header_value(name: str, value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ActionInputError(
            f"The header '{name}' rendered to a value with a line break or control "
            "character; header values must be one line."
        )
    return value
