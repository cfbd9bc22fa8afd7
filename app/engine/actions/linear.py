"""The Linear action: the GraphQL ``issueCreate`` mutation.

Personal API keys go in the ``Authorization`` header as they are (no
"Bearer"). GraphQL reports most problems as an ``errors`` array, often in a
200 response; any such error, or ``success: false``, fails the step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.engine.actions.base import (
    ActionInputError,
    Interpretation,
    PreparedRequest,
    Render,
    ResponseData,
    credential_values,
    render_field,
    required_secret,
    sentence,
)
from app.engine.retry import retryable_status
from app.engine.scrub import Scrubber, clip
from app.workflows.enums import ActionType
from app.workflows.schema import LinearAction

__all__ = ["ISSUE_CREATE_MUTATION", "RESULT_SHAPE", "interpret", "prepare_linear"]

ISSUE_CREATE_MUTATION = (
    "mutation IssueCreate($input: IssueCreateInput!) {\n"
    "  issueCreate(input: $input) {\n"
    "    success\n"
    "    issue { id identifier url }\n"
    "  }\n"
    "}"
)

_RATE_LIMIT_CODES = frozenset({"ratelimited", "rate_limited"})


#: What a successful step returns as ``steps.<id>.result`` (field -> meaning); later
#: nodes' templates and the editor's variable list use it. ``interpret`` returns these keys.
RESULT_SHAPE: dict[str, str] = {
    "id": "the issue's id",
    "identifier": "the issue's identifier, e.g. ENG-42",
    "url": "the issue's page in Linear",
}


def prepare_linear(
    action: LinearAction, *, render: Render, secrets: Mapping[str, str], endpoint: str
) -> PreparedRequest:
    """Build the issueCreate request for ``endpoint``. Raises ActionInputError."""
    config = action.config
    api_key = required_secret("linear_api_key", secrets, "Linear action").strip()
    title = " ".join(render_field(render, config.title, "title").split())
    if not title:
        raise ActionInputError("The title rendered to empty text; Linear needs a title.")
    issue: dict[str, Any] = {"teamId": config.team_id, "title": title}
    if config.description:
        description = render_field(render, config.description, "description")
        if description.strip():
            issue["description"] = description
    if config.priority is not None:
        issue["priority"] = config.priority
    if config.label_ids:
        issue["labelIds"] = list(config.label_ids)
    body = {
        "query": ISSUE_CREATE_MUTATION,
        "operationName": "IssueCreate",
        "variables": {"input": issue},
    }
    return PreparedRequest(
        action_type=ActionType.LINEAR,
        method="POST",
        url=endpoint,
        headers={
            "Authorization": api_key,
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        target="Linear",
        sensitive_headers=frozenset({"authorization"}),
        secret_values=tuple(value for value in secrets.values() if value),
        scrub_values=credential_values(secrets),
    )


def interpret(response: ResponseData, prepared: PreparedRequest) -> Interpretation:
    status = response.status_code
    payload = response.json()
    errors, rate_limited = _graphql_errors(payload, Scrubber(prepared.scrub_values))
    if 200 <= status < 300:
        if errors:
            return Interpretation(
                ok=False,
                error=sentence(f"Linear refused the issue: {errors}"),
                retryable=rate_limited,
            )
        created = _dig(payload, "data", "issueCreate")
        issue = _dig(created, "issue")
        if not isinstance(created, dict) or created.get("success") is not True:
            return Interpretation(
                ok=False, error="Linear answered that the issue was not created (success: false)."
            )
        identifier = _dig(issue, "identifier")
        url = _dig(issue, "url")
        if not isinstance(identifier, str) or not isinstance(url, str):
            return Interpretation(ok=False, error="Linear's answer has no issue identifier or URL.")
        return Interpretation(
            ok=True,
            result={"id": str(_dig(issue, "id") or ""), "identifier": identifier, "url": url},
        )
    hint = {
        401: "check the linear_api_key secret",
        403: "the API key may not create issues in this team",
    }.get(status)
    parts = [part for part in (errors, hint) if part]
    detail = f": {'; '.join(parts)}" if parts else ""
    return Interpretation(
        ok=False,
        error=sentence(f"Linear answered {status} {response.reason}{detail}"),
        retryable=retryable_status(status) or rate_limited,
    )


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _graphql_errors(payload: Any, scrubber: Scrubber) -> tuple[str, bool]:
    """The errors' messages (user-presentable ones preferred) and whether one is a rate limit."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list) or not errors:
        return "", False
    messages: list[str] = []
    rate_limited = False
    for error in errors:
        if not isinstance(error, dict):
            continue
        extensions = error.get("extensions")
        extensions = extensions if isinstance(extensions, dict) else {}
        code = str(extensions.get("code") or extensions.get("type") or "").lower()
        rate_limited = rate_limited or code in _RATE_LIMIT_CODES
        message = extensions.get("userPresentableMessage") or error.get("message")
        if message:
            messages.append(str(message).rstrip("."))
    text = "; ".join(dict.fromkeys(messages)) or "the GraphQL request failed"
    return clip(text, 500, scrubber), rate_limited  # scrubbed, then clipped
