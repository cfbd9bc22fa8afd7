"""The Jira Cloud action (REST API v3): create, transition or comment on an issue.

* create (the default): ``POST /rest/api/3/issue`` with ``{"fields": {...}}``
  (project key, issue type name, summary, the description as an Atlassian
  Document Format document, priority name and labels). Jira answers 201 with
  ``{"id", "key", "self"}``.
* transition: ``GET /rest/api/3/issue/{key}/transitions`` lists the transitions
  the issue can take now (``{"transitions": [{"id", "name", "to": {"name"}}]}``);
  the one named like the config's ``transition`` (its name or its target
  status, case-insensitive; or its id) is sent as
  ``POST /rest/api/3/issue/{key}/transitions`` ``{"transition": {"id"}}``,
  which Jira answers 204 No Content.
* comment: ``POST /rest/api/3/issue/{key}/comment`` with ``{"body": <ADF>}``;
  Jira answers 201 with the comment (``{"id", "self", ...}``).

Authentication is HTTP basic with the account email and an API token. Errors
come back as ``{"errorMessages": [...], "errors": {field: message}}``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from app.definition import JiraAction, JiraCommentConfig, JiraConfig
from app.engine.actions.base import (
    ActionInputError,
    Interpretation,
    Lookup,
    LookupFailed,
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

__all__ = [
    "CREATE_ISSUE_PATH",
    "MAX_SUMMARY_LENGTH",
    "RESULT_SHAPE",
    "adf_document",
    "interpret",
    "prepare_jira",
]

CREATE_ISSUE_PATH = "/rest/api/3/issue"
#: An issue key (PROJECT-123) or a numeric issue id: what may go into a path.
_ISSUE_KEY_RE = re.compile(r"^(?:[A-Z][A-Z0-9_]{1,9}-[1-9][0-9]{0,17}|[1-9][0-9]{0,17})$")
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


def _site(secrets: Mapping[str, str]) -> str:
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
    return site


def _headers(secrets: Mapping[str, str]) -> dict[str, str]:
    email = required_secret("jira_email", secrets, "Jira action").strip()
    token = required_secret("jira_api_token", secrets, "Jira action").strip()
    credentials = base64.b64encode(f"{email}:{token}".encode()).decode("ascii")
    return {
        "Authorization": f"Basic {credentials}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }


def prepare_jira(
    action: JiraAction, *, render: Render, secrets: Mapping[str, str]
) -> PreparedRequest:
    """Build the request of the action's operation. Raises ActionInputError."""
    config = action.config
    site = _site(secrets)
    headers = _headers(secrets)
    if not isinstance(config, JiraConfig):
        key = _issue_key(render, config.issue_key)
        issue_url = f"{site}{CREATE_ISSUE_PATH}/{key}"
        common: dict[str, Any] = {
            "action_type": ActionType.JIRA,
            "method": "POST",
            "headers": headers,
            "target": "Jira",
            "sensitive_headers": frozenset({"authorization"}),
            "secret_values": tuple(value for value in secrets.values() if value),
            "scrub_values": credential_values(secrets),
        }
        if isinstance(config, JiraCommentConfig):
            text = render_field(render, config.body, "comment")
            document = adf_document(text)
            if not document["content"]:
                raise ActionInputError("The comment rendered to empty text; Jira needs a comment.")
            return PreparedRequest(
                url=f"{issue_url}/comment",
                body=json.dumps({"body": document}, ensure_ascii=False).encode("utf-8"),
                context={"site": site, "operation": "comment", "key": key},
                **common,
            )
        wanted = config.transition.strip()
        # Shown by dry runs; the lookup's answer completes it before anything is sent.
        preview = {"transition": {"id": f"<the id of the transition '{wanted}'>"}}
        return PreparedRequest(
            url=f"{issue_url}/transitions",
            body=json.dumps(preview, ensure_ascii=False).encode("utf-8"),
            context={"site": site, "operation": "transition", "key": key},
            lookup=Lookup(
                method="GET",
                url=f"{issue_url}/transitions",
                body=None,
                purpose=f"the transitions {key} can take now, to find '{wanted}'",
                complete=lambda answer: _choose_transition(answer, key, wanted, site),
            ),
            **common,
        )

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

    return PreparedRequest(
        action_type=ActionType.JIRA,
        method="POST",
        url=site + CREATE_ISSUE_PATH,
        headers=headers,
        body=json.dumps({"fields": fields}, ensure_ascii=False).encode("utf-8"),
        target="Jira",
        sensitive_headers=frozenset({"authorization"}),
        context={"site": site},
        secret_values=tuple(value for value in secrets.values() if value),
        scrub_values=credential_values(secrets),
    )


def _issue_key(render: Render, source: str) -> str:
    key = render_field(render, source, "issue key").strip()
    if not key:
        raise ActionInputError(
            "The issue key rendered to empty text: no earlier step gave one (did the run "
            "that opens the issue happen on this incident?)."
        )
    if not _ISSUE_KEY_RE.fullmatch(key):
        shown = key if len(key) <= 40 else key[:39] + "…"
        raise ActionInputError(
            f"The issue key rendered to '{shown}', which is not a Jira issue key such as "
            "OPS-12 (or a numeric issue id)."
        )
    return key


def _choose_transition(
    answer: ResponseData, key: str, wanted: str, site: str
) -> tuple[bytes, Mapping[str, str]]:
    """The transitions request's body, for the transition named (or leading to) ``wanted``."""
    if not 200 <= answer.status_code < 300:
        failure = _failure(answer, Scrubber(()), "read the transitions of " + key)
        raise LookupFailed(failure.error or "", retryable=failure.retryable, response=answer)
    payload = answer.json()
    listed = payload.get("transitions") if isinstance(payload, dict) else None
    if not isinstance(listed, list):
        raise LookupFailed(
            f"Jira's list of transitions for {key} could not be read.", response=answer
        )
    options: list[tuple[str, str, str]] = []  # (id, name, target status)
    for item in listed:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            target = item.get("to")
            to_name = target.get("name") if isinstance(target, dict) else None
            options.append((item["id"], str(item.get("name") or ""), str(to_name or "")))
    folded = wanted.casefold()
    chosen = next((o for o in options if o[0] == wanted), None)
    chosen = chosen or next((o for o in options if o[1].casefold() == folded), None)
    chosen = chosen or next((o for o in options if o[2].casefold() == folded), None)
    if chosen is None:
        available = ", ".join(f"'{name}' (to {to})" for _id, name, to in options) or "none"
        raise LookupFailed(
            f"{key} has no transition named '{wanted}' or leading to a status of that "
            f"name right now; the transitions it can take are: {available}. "
            "(Is it already in that status?)",
            response=answer,
        )
    transition_id, name, to_name = chosen
    body = json.dumps({"transition": {"id": transition_id}}).encode("utf-8")
    return body, {"transition": name, "transitionId": transition_id, "status": to_name}


def interpret(response: ResponseData, prepared: PreparedRequest) -> Interpretation:
    status = response.status_code
    operation = prepared.context.get("operation", "create")
    if operation != "create":
        if not 200 <= status < 300:
            return _failure(
                response, Scrubber(prepared.scrub_values), f"{operation} {prepared.context['key']}"
            )
        updated = prepared.context["key"]
        result: dict[str, Any] = {
            "key": updated,
            "url": f"{prepared.context['site']}/browse/{updated}",
        }
        if operation == "transition":
            result.update(
                transition=prepared.context.get("transition", ""),
                transitionId=prepared.context.get("transitionId", ""),
                status=prepared.context.get("status", ""),
            )
        else:
            payload = response.json()
            answer = response.json()
            comment_id = answer.get("id") if isinstance(answer, dict) else None
            result["commentId"] = str(comment_id or "")
        return Interpretation(ok=True, result=result)
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
    return _failure(response, Scrubber(prepared.scrub_values), None)


def _failure(response: ResponseData, scrubber: Scrubber, doing: str | None) -> Interpretation:
    """A failed answer, explained; ``doing`` names an update ("transition OPS-12")."""
    status = response.status_code
    messages = _error_messages(response.json(), scrubber)
    hint = {
        401: "check the jira_email and jira_api_token secrets",
        403: "the account may not create issues in this project"
        if doing is None
        else "the account may not change this issue",
        404: "check the jira_base_url secret (your site, like https://your-company.atlassian.net)"
        if doing is None
        else "the issue does not exist, or the account may not see it",
    }.get(status)
    parts = [part for part in (messages, hint) if part]
    detail = f": {'; '.join(parts)}" if parts else ""
    trying = f" (trying to {doing})" if doing else ""
    return Interpretation(
        ok=False,
        error=sentence(f"Jira answered {status} {response.reason}{trying}{detail}"),
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
