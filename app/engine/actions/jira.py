"""The Jira Cloud action: ``POST /rest/api/3/issue`` (REST API v3).

The request body is ``{"fields": {...}}`` with the project key, issue type
name, summary, the description as an Atlassian Document Format document,
priority name and labels. Authentication is HTTP basic with the account
email and an API token. Jira answers 201 with ``{"id", "key", "self"}`` or an
error collection ``{"errorMessages": [...], "errors": {field: message}}``.
"""

from __future__ import annotations

import base64
import json
import re
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
from app.engine.outbound import InvalidDestination, target_url
from app.engine.retry import retryable_status
from app.engine.scrub import Scrubber, clip
from app.workflows.enums import ActionType
from app.workflows.schema import JiraAction

__all__ = [
    "CREATE_ISSUE_PATH",
    "MAX_SUMMARY_LENGTH",
    "RESULT_SHAPE",
    "adf_document",
    "interpret",
    "prepare_jira",
]

CREATE_ISSUE_PATH = "/rest/api/3/issue"
#: Jira refuses longer summaries.
MAX_SUMMARY_LENGTH = 255


#: What a successful step returns as ``steps.<id>.result`` (field -> meaning); later
#: nodes' templates and the editor's variable list use it. ``interpret`` returns these keys.
RESULT_SHAPE: dict[str, str] = {
    "id": "the issue's id",
    "key": "the issue key, e.g. OPS-123",
    "self": "the issue's REST API URL",
    "url": "the issue's page in Jira",
}


def adf_document(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document.

    Blank lines separate paragraphs; single line breaks become hardBreak
    nodes. ADF text nodes must not be empty, so empty lines are dropped.
    """
    content: list[dict[str, Any]] = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        inline: list[dict[str, Any]] = []
        for line in lines:
            if inline:
                inline.append({"type": "hardBreak"})
            inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def prepare_jira(
    action: JiraAction, *, render: Render, secrets: Mapping[str, str]
) -> PreparedRequest:
    """Build the create-issue request. Raises ActionInputError."""
    config = action.config
    site = required_secret("jira_base_url", secrets, "Jira action").strip().rstrip("/")
    try:
        parsed = target_url(site)
    except InvalidDestination as exc:
        raise ActionInputError(
            f"The jira_base_url secret is not a usable site address: {exc.message} "
            "Use your site, like https://your-company.atlassian.net."
        ) from None
    if parsed.query or parsed.fragment:
        raise ActionInputError(
            "The jira_base_url secret must be the site address only, like "
            "https://your-company.atlassian.net (no query or fragment)."
        )
    email = required_secret("jira_email", secrets, "Jira action").strip()
    token = required_secret("jira_api_token", secrets, "Jira action").strip()

    # Jira summaries are one line of at most 255 characters.
    summary = " ".join(render_field(render, config.summary, "summary").split())
    if not summary:
        raise ActionInputError("The summary rendered to empty text; Jira needs a summary.")
    if len(summary) > MAX_SUMMARY_LENGTH:
        summary = summary[: MAX_SUMMARY_LENGTH - 1] + "…"
    fields: dict[str, Any] = {
        "project": {"key": config.project_key},
        "issuetype": {"name": config.issue_type},
        "summary": summary,
    }
    if config.description:
        description = render_field(render, config.description, "description")
        document = adf_document(description)
        if document["content"]:
            fields["description"] = document
    if config.priority:
        fields["priority"] = {"name": config.priority}
    if config.labels:
        fields["labels"] = list(config.labels)

    credentials = base64.b64encode(f"{email}:{token}".encode()).decode("ascii")
    return PreparedRequest(
        action_type=ActionType.JIRA,
        method="POST",
        url=site + CREATE_ISSUE_PATH,
        headers={
            "Authorization": f"Basic {credentials}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        body=json.dumps({"fields": fields}, ensure_ascii=False).encode("utf-8"),
        target="Jira",
        sensitive_headers=frozenset({"authorization"}),
        context={"site": site},
        secret_values=tuple(value for value in secrets.values() if value),
        scrub_values=credential_values(secrets),
    )


def interpret(response: ResponseData, prepared: PreparedRequest) -> Interpretation:
    status = response.status_code
    payload = response.json()
    if 200 <= status < 300:
        key = payload.get("key") if isinstance(payload, dict) else None
        if not isinstance(key, str) or not key:
            return Interpretation(
                ok=False, error=f"Jira answered {status} but the response has no issue key."
            )
        assert isinstance(payload, dict)
        return Interpretation(
            ok=True,
            result={
                "id": str(payload.get("id", "")),
                "key": key,
                "self": str(payload.get("self", "")),
                "url": f"{prepared.context['site']}/browse/{key}",
            },
        )
    messages = _error_messages(payload, Scrubber(prepared.scrub_values))
    hint = {
        401: "check the jira_email and jira_api_token secrets",
        403: "the account may not create issues in this project",
        404: "check the jira_base_url secret (your site, like https://your-company.atlassian.net)",
    }.get(status)
    parts = [part for part in (messages, hint) if part]
    detail = f": {'; '.join(parts)}" if parts else ""
    return Interpretation(
        ok=False,
        error=sentence(f"Jira answered {status} {response.reason}{detail}"),
        retryable=retryable_status(status),
    )


def _error_messages(payload: Any, scrubber: Scrubber) -> str:
    """The messages of a Jira error collection, fields named."""
    if not isinstance(payload, dict):
        return ""
    found: list[str] = []
    messages = payload.get("errorMessages")
    if isinstance(messages, list):
        found.extend(str(message).rstrip(".") for message in messages if message)
    errors = payload.get("errors")
    if isinstance(errors, dict):
        found.extend(f"{name}: {str(message).rstrip('.')}" for name, message in errors.items())
    return clip("; ".join(found), 500, scrubber)  # scrubbed, then clipped
