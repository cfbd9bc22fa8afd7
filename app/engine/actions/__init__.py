"""Actions: build a request from an action node, send it through the guard, read the answer.

``prepare`` renders templates and fills in credentials (nothing is sent);
``perform`` sends a prepared request once (one attempt, including an OAuth2
token fetch and a single retry after a 401 with a refreshed token) and
never raises for network or HTTP problems; ``attempt`` is both, turning bad
input into a failed, non-retryable outcome. The caller decides about retries
(``app.engine.retry``) and scrubs secrets from what it stores.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import httpx

from app.engine.actions import jira, linear, webhook
from app.engine.actions.base import (
    MAX_RESPONSE_BYTES,
    ActionClock,
    ActionInputError,
    ActionSettings,
    AttemptOutcome,
    Interpretation,
    LookupFailed,
    PreparedRequest,
    Render,
    ResponseData,
    idempotency_key,
)
from app.engine.actions.oauth import TokenRequestFailed
from app.engine.driver import DestinationSlots
from app.engine.outbound import (
    DestinationRefused,
    DestinationUnresolved,
    InvalidDestination,
    OutboundError,
    target_url,
)
from app.engine.retry import parse_retry_after
from app.engine.scrub import Scrubber, clip
from app.workflows.enums import ActionType
from app.workflows.schema import JiraAction, LinearAction, WebhookAction

__all__ = [
    "ActionClock",
    "ActionInputError",
    "ActionSettings",
    "AttemptOutcome",
    "RESULT_SHAPES",
    "PreparedRequest",
    "attempt",
    "idempotency_key",
    "perform",
    "prepare",
    "preview",
]

_Action = WebhookAction | JiraAction | LinearAction


#: Action type -> the fields of its result (``steps.<id>.result.<field>``).
RESULT_SHAPES: dict[str, dict[str, str]] = {
    "webhook": webhook.RESULT_SHAPE,
    "jira": jira.RESULT_SHAPE,
    "linear": linear.RESULT_SHAPE,
}


def prepare(
    action: _Action,
    *,
    render: Render,
    secrets: Mapping[str, str],
    idempotency_key: str,
    settings: ActionSettings | None = None,
    run_marker: str | None = None,
) -> PreparedRequest:
    """Build the request ``action`` would send. Nothing goes over the network.

    Raises ActionInputError (a ValueError) with a message for users when a
    template does not render, the webhook body is not JSON, a secret is
    missing or the rendered URL cannot be used.
    """
    if isinstance(action, WebhookAction):
        return webhook.prepare_webhook(
            action,
            render=render,
            secrets=secrets,
            idempotency_key=idempotency_key,
            run_marker=run_marker,
        )
    if isinstance(action, JiraAction):
        return jira.prepare_jira(action, render=render, secrets=secrets)
    settings = settings or ActionSettings.from_current_app()
    return linear.prepare_linear(
        action, render=render, secrets=secrets, endpoint=settings.linear_api_url
    )


def preview(
    action: _Action,
    *,
    render: Render,
    secrets: Mapping[str, str],
    idempotency_key: str,
    settings: ActionSettings | None = None,
) -> dict[str, Any]:
    """For dry runs: ``{"request": <masked request>}`` or ``{"error": <message>}``."""
    try:
        prepared = prepare(
            action,
            render=render,
            secrets=secrets,
            idempotency_key=idempotency_key,
            settings=settings,
        )
    except ActionInputError as exc:
        return {"error": exc.message}
    return {"request": prepared.masked()}


def attempt(
    action: _Action,
    *,
    render: Render,
    secrets: Mapping[str, str],
    idempotency_key: str,
    clock: ActionClock,
    timeout: float | None = None,
    settings: ActionSettings | None = None,
    slots: DestinationSlots | None = None,
    run_marker: str | None = None,
) -> AttemptOutcome:
    """Prepare and perform one attempt. Never raises for bad input, network or HTTP errors.

    With ``slots``, a destination that has its share of requests in flight gets
    none more: the outcome is ``deferred`` and nothing is sent."""
    settings = settings or ActionSettings.from_current_app()
    started = clock.monotonic()
    try:
        prepared = prepare(
            action,
            render=render,
            secrets=secrets,
            idempotency_key=idempotency_key,
            settings=settings,
            run_marker=run_marker,
        )
    except ValueError as exc:  # ActionInputError, or a renderer's own error
        message = exc.message if isinstance(exc, ActionInputError) else str(exc)
        return AttemptOutcome(
            ok=False, error=message, retryable=False, duration_ms=_ms(clock, started)
        )
    return perform(prepared, clock=clock, timeout=timeout, settings=settings, slots=slots)


def perform(
    prepared: PreparedRequest,
    *,
    clock: ActionClock,
    timeout: float | None = None,
    settings: ActionSettings | None = None,
    slots: DestinationSlots | None = None,
    run_marker: str | None = None,
) -> AttemptOutcome:
    """Send ``prepared`` once through the outbound guard and interpret the answer.

    ``timeout`` (seconds, default ``settings.request_timeout``) bounds the
    whole attempt: token fetch, connection, request and response.
    """
    settings = settings or ActionSettings.from_current_app()
    total = settings.request_timeout if timeout is None else max(timeout, 0.001)
    started = clock.monotonic()
    sent = prepared.masked()

    def failed(
        error: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
        response: dict[str, Any] | None = None,
    ) -> AttemptOutcome:
        return AttemptOutcome(
            ok=False,
            status_code=status_code,
            response=response,
            error=error,
            retryable=retryable,
            retry_after_seconds=retry_after,
            timed_out=timed_out,
            duration_ms=_ms(clock, started),
            request=sent,
        )

    target = prepared.target
    try:
        url = target_url(prepared.url)
    except InvalidDestination as exc:
        return failed(_not_sent(target, exc.message), retryable=False)

    guard = settings.guard()
    held = ExitStack()
    if slots is not None:
        destination = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        if not held.enter_context(slots.hold(destination)):
            return AttemptOutcome(
                ok=False,
                deferred=True,
                retryable=True,
                error=f"{target} already has {slots.limit} requests in flight; waiting for one.",
            )
    try:
        with (
            held,
            guard.client(
                connect_timeout=settings.connect_timeout,
                total_timeout=total,
                monotonic=clock.monotonic,
            ) as client,
        ):
            response, prepared = _exchange(client, prepared, url, settings, clock)
        sent = prepared.masked()  # with the body the lookup completed
    except LookupFailed as exc:
        return failed(
            exc.message,
            retryable=exc.retryable,
            status_code=exc.response.status_code if exc.response else None,
            response=exc.response.excerpt() if exc.response else None,
        )
    except DestinationRefused as exc:
        return failed(_not_sent(target, exc.message), retryable=False)
    except DestinationUnresolved as exc:
        return failed(exc.message, retryable=True)
    except OutboundError as exc:
        return failed(exc.message, retryable=False)
    except TokenRequestFailed as exc:
        return failed(
            exc.message,
            retryable=exc.retryable,
            status_code=exc.status_code,
            retry_after=exc.retry_after_seconds,
            timed_out=exc.timed_out,
        )
    except httpx.ConnectTimeout:
        return failed(
            f"{target} could not be reached within "
            f"{min(settings.connect_timeout, total):g} s (connection timed out).",
            retryable=True,
            timed_out=True,
        )
    except httpx.TimeoutException:
        return failed(
            f"{target} did not answer within {total:g} s (timed out).",
            retryable=True,
            timed_out=True,
        )
    except httpx.RemoteProtocolError:
        return failed(
            f"The connection to {_lower(target)} was closed before a complete answer arrived.",
            retryable=True,
        )
    except httpx.ConnectError as exc:
        if _is_certificate_error(exc):
            return failed(
                f"The TLS certificate of {_lower(target)} could not be verified ({exc}).",
                retryable=False,
            )
        return failed(f"Could not connect to {_lower(target)}: {exc}.", retryable=True)
    except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
        return failed(f"The request could not be sent: {exc}.", retryable=False)
    except httpx.TransportError as exc:
        return failed(f"The connection to {_lower(target)} failed: {exc}.", retryable=True)

    excerpt = response.excerpt()
    if 300 <= response.status_code < 400:
        location = response.headers.get("Location", "")
        where = f" to {clip(location, 200, Scrubber(prepared.scrub_values))}" if location else ""
        return failed(
            f"{target} answered {response.status_code} {response.reason} with a redirect"
            f"{where}; redirects are not followed, so use the final address in the action.",
            retryable=False,
            status_code=response.status_code,
            response=excerpt,
        )
    interpretation = _interpret(response, prepared)
    if not interpretation.ok:
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After"), clock.now())
            if interpretation.retryable
            else None
        )
        return failed(
            interpretation.error or f"{target} answered {response.status_code}.",
            retryable=interpretation.retryable,
            status_code=response.status_code,
            retry_after=retry_after,
            response=excerpt,
        )
    return AttemptOutcome(
        ok=True,
        status_code=response.status_code,
        result=interpretation.result,
        response=excerpt,
        duration_ms=_ms(clock, started),
        request=sent,
    )


def _exchange(
    client: httpx.Client,
    prepared: PreparedRequest,
    url: httpx.URL,
    settings: ActionSettings,
    clock: ActionClock,
) -> tuple[ResponseData, PreparedRequest]:
    """Send the request (after its lookup, if it has one): the answer and what was sent."""
    headers = dict(prepared.headers)
    token: str | None = None
    if prepared.oauth is not None:
        token = settings.token_cache.token(client, prepared.oauth, now=clock.now)
        headers["Authorization"] = f"Bearer {token}"
    if prepared.lookup is not None:
        lookup = prepared.lookup
        try:
            lookup_url = target_url(lookup.url)
        except InvalidDestination as exc:
            raise LookupFailed(_not_sent(prepared.target, exc.message)) from None
        answer = _send(client, prepared, lookup_url, headers, lookup.method, lookup.body)
        body, context = lookup.complete(answer)
        prepared = replace(
            prepared, body=body, context={**prepared.context, **context}, lookup=None
        )
    response = _send(client, prepared, url, headers)
    if response.status_code == 401 and prepared.oauth is not None:
        # The token may have been revoked or expired early: renew it once.
        token = settings.token_cache.token(client, prepared.oauth, now=clock.now, rejected=token)
        headers["Authorization"] = f"Bearer {token}"
        response = _send(client, prepared, url, headers)
    return response, prepared


def _send(
    client: httpx.Client,
    prepared: PreparedRequest,
    url: httpx.URL,
    headers: dict[str, str],
    method: str | None = None,
    content: bytes | None = None,
) -> ResponseData:
    """Send ``prepared`` (or, given ``method``, another request with its headers)."""
    request = client.build_request(
        method or prepared.method,
        url,
        headers=headers,
        content=prepared.body if method is None else content,
    )
    response = client.send(request, stream=True)
    try:
        body = bytearray()
        truncated = False
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > MAX_RESPONSE_BYTES:
                truncated = True
                break
    finally:
        response.close()
    return ResponseData(
        status_code=response.status_code,
        reason=response.reason_phrase,
        headers=response.headers,
        body=bytes(body[:MAX_RESPONSE_BYTES]),
        truncated=truncated,
        scrub_values=prepared.scrub_values,
    )


def _interpret(response: ResponseData, prepared: PreparedRequest) -> Interpretation:
    if prepared.action_type == ActionType.JIRA:
        return jira.interpret(response, prepared)
    if prepared.action_type == ActionType.LINEAR:
        return linear.interpret(response, prepared)
    return webhook.interpret(response, prepared)


def _is_certificate_error(exc: httpx.ConnectError) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _not_sent(target: str, reason: str) -> str:
    return f"The request to {_lower(target)} was not sent: {reason}"


def _lower(target: str) -> str:
    """'The webhook at x' reads 'the webhook at x' inside a sentence; names stay."""
    return target[:1].lower() + target[1:] if target.startswith("The ") else target


def _ms(clock: ActionClock, started: float) -> int:
    return max(int(round((clock.monotonic() - started) * 1000)), 0)
