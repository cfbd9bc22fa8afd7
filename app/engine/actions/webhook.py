"""The webhook action: a templated HTTP request with a JSON body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.engine.actions.base import (
    EXCERPT_BYTES,
    MAX_RESULT_BODY_BYTES,
    ActionInputError,
    Interpretation,
    PreparedRequest,
    Render,
    ResponseData,
    check_header_value,
    credential_values,
    render_field,
    secret_from_reference,
)
from app.engine.actions.oauth import OAuthParams
from app.engine.guards import RUN_HEADER
from app.engine.outbound import InvalidDestination, target_url
from app.engine.retry import retryable_status
from app.engine.scrub import Scrubber, basic_credentials, clip
from app.workflows.enums import ActionType
from app.workflows.schema import (
    BasicAuth,
    BearerAuth,
    CustomHeaderAuth,
    NoAuth,
    OAuth2Auth,
    WebhookAction,
)

__all__ = ["MAX_REQUEST_BODY_BYTES", "RESULT_SHAPE", "interpret", "prepare_webhook"]

#: A rendered body larger than this is refused (templates can loop).
MAX_REQUEST_BODY_BYTES = 1024 * 1024


#: What a successful step returns as ``steps.<id>.result`` (field -> meaning); later
#: nodes' templates and the editor's variable list use it. ``interpret`` returns these keys.
RESULT_SHAPE: dict[str, str] = {
    "status": "the HTTP status code, e.g. 200",
    "body": "the response body: parsed JSON, or the text",
}


def prepare_webhook(
    action: WebhookAction,
    *,
    render: Render,
    secrets: Mapping[str, str],
    idempotency_key: str,
    run_marker: str | None = None,
) -> PreparedRequest:
    """Render the URL, headers and body, and add the credentials. Raises ActionInputError.

    ``run_marker``: sent as X-IncidentFlow-Run, so that changes this request makes
    through IncidentFlow's own API are linked to the run (the loop guard).
    """
    config = action.config
    url = render_field(render, config.url, "URL").strip()
    try:
        host = target_url(url).host
    except InvalidDestination as exc:
        # Scrubbed before it is clipped: a cut through a secret would show its start.
        shown = clip(url, 120, Scrubber(secrets.values()))
        raise ActionInputError(f"The URL rendered to '{shown}': {exc.message}") from None
    extra_scrub: tuple[str, ...] = ()

    headers: dict[str, str] = {}
    sensitive: set[str] = set()
    for name, source in config.headers.items():
        value = render_field(render, source, f"header '{name}'")
        headers[name] = check_header_value(name, value)

    oauth: OAuthParams | None = None
    auth = config.auth
    if isinstance(auth, BearerAuth):
        token = secret_from_reference(auth.token, secrets, "bearer token")
        headers["Authorization"] = check_header_value("Authorization", f"Bearer {token}")
        sensitive.add("authorization")
    elif isinstance(auth, BasicAuth):
        username = render_field(render, auth.username, "basic auth user name")
        if ":" in username:
            raise ActionInputError("The basic auth user name must not contain ':'.")
        password = secret_from_reference(auth.password, secrets, "basic auth password")
        encoded = basic_credentials(username, password)
        headers["Authorization"] = f"Basic {encoded}"
        extra_scrub = (encoded,)
        sensitive.add("authorization")
    elif isinstance(auth, OAuth2Auth):
        client_id = render_field(render, auth.client_id, "OAuth2 client id").strip()
        if not client_id:
            raise ActionInputError("The OAuth2 client id rendered to empty text.")
        oauth = OAuthParams(
            token_url=auth.token_url,
            client_id=client_id,
            client_secret=secret_from_reference(
                auth.client_secret, secrets, "OAuth2 client secret"
            ),
        )
        sensitive.add("authorization")
    elif isinstance(auth, CustomHeaderAuth):
        for name, reference in auth.custom_headers.items():
            value = secret_from_reference(reference, secrets, f"auth header '{name}'")
            headers[name] = check_header_value(name, value)
            sensitive.add(name.lower())
    else:
        assert isinstance(auth, NoAuth)

    body: bytes | None = None
    if config.body.strip():
        text = render_field(render, config.body, "body")
        body = text.encode("utf-8")
        if len(body) > MAX_REQUEST_BODY_BYTES:
            raise ActionInputError(
                f"The body rendered to {len(body):,} bytes; the limit is "
                f"{MAX_REQUEST_BODY_BYTES:,}. Send less data (for example fewer loop items)."
            )
        check_json(text)

    present = {name.lower() for name in headers}
    if body is not None and "content-type" not in present:
        headers["Content-Type"] = "application/json"
    if "idempotency-key" not in present:
        headers["Idempotency-Key"] = check_header_value("Idempotency-Key", idempotency_key)
    if run_marker is not None and RUN_HEADER.lower() not in present:
        headers[RUN_HEADER] = run_marker

    return PreparedRequest(
        action_type=ActionType.WEBHOOK,
        method=config.method,
        url=url,
        headers=headers,
        body=body,
        target=f"The webhook at {host}",
        sensitive_headers=frozenset(sensitive),
        oauth=oauth,
        secret_values=tuple(value for value in secrets.values() if value),
        scrub_values=credential_values(secrets) + extra_scrub,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def check_json(text: str) -> None:
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ActionInputError(
            f"The body did not render to valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno}). Use the tojson filter to "
            "insert values, as in {{ incident.title | tojson }}."
        ) from None
    except ValueError as exc:
        raise ActionInputError(f"The body did not render to valid JSON: {exc}.") from None


def interpret(response: ResponseData, prepared: PreparedRequest) -> Interpretation:
    """Any 2xx is a success; the result carries the status and the (JSON) body."""
    status = response.status_code
    if 200 <= status < 300:
        body: Any = None
        if response.body:
            parsed = response.json() if len(response.body) <= MAX_RESULT_BODY_BYTES else None
            body = parsed if parsed is not None else response.text(EXCERPT_BYTES)
        return Interpretation(ok=True, result={"status": status, "body": body})
    snippet = " ".join(response.text(300).split())
    detail = f": {snippet}" if snippet else ""
    return Interpretation(
        ok=False,
        error=f"{prepared.target} answered {status} {response.reason}{detail}",
        retryable=retryable_status(status),
    )
