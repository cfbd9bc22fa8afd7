"""The Linear action: the GraphQL ``issueCreate`` and ``issueUpdate`` mutations.

An update moves an issue to another workflow state. The API wants the state's
id, so a lookup reads the issue and its team's states first
(``issue(id:) { team { states { nodes { id name type position } } } }``;
``issue`` accepts the issue's id or its identifier such as ENG-12), then
``issueUpdate(id:, input: {stateId})`` is sent.

Personal API keys go in the ``Authorization`` header as they are (no
"Bearer"). GraphQL reports most problems as an ``errors`` array, often in a
200 response; any such error, or ``success: false``, fails the step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from app.definition import LinearAction, LinearConfig, LinearUpdateConfig
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
from app.engine.retry import retryable_status
from app.engine.scrub import Scrubber, clip
from app.workflows.enums import ActionType

__all__ = [
    "ISSUE_CREATE_MUTATION",
    "ISSUE_STATES_QUERY",
    "ISSUE_UPDATE_MUTATION",
    "RESULT_SHAPE",
    "interpret",
    "prepare_linear",
]

ISSUE_CREATE_MUTATION = (
    "mutation IssueCreate($input: IssueCreateInput!) {\n"
    "  issueCreate(input: $input) {\n"
    "    success\n"
    "    issue { id identifier url }\n"
    "  }\n"
    "}"
)

ISSUE_STATES_QUERY = (
    "query IssueStates($id: String!) {\n"
    "  issue(id: $id) {\n"
    "    id identifier\n"
    "    team { states { nodes { id name type position } } }\n"
    "  }\n"
    "}"
)
ISSUE_UPDATE_MUTATION = (
    "mutation IssueUpdate($id: String!, $input: IssueUpdateInput!) {\n"
    "  issueUpdate(id: $id, input: $input) {\n"
    "    success\n"
    "    issue { id identifier url state { name } }\n"
    "  }\n"
    "}"
)
#: Linear's workflow state types.
STATE_TYPES = ("triage", "backlog", "unstarted", "started", "completed", "canceled")
#: A Linear issue id (UUID) or identifier (ENG-12): what goes into the query.
_ISSUE_REF_RE = re.compile(
    r"^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|[A-Za-z][A-Za-z0-9]{0,9}-[1-9][0-9]{0,17})$"
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
    """Build the request of the action's operation for ``endpoint``. Raises ActionInputError."""
    config = action.config
    api_key = required_secret("linear_api_key", secrets, "Linear action").strip()
    if isinstance(config, LinearUpdateConfig):
        return _prepare_update(config, render, secrets, endpoint, api_key)
    assert isinstance(config, LinearConfig)
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
        headers=_headers(api_key),
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        target="Linear",
        sensitive_headers=frozenset({"authorization"}),
        secret_values=tuple(value for value in secrets.values() if value),
        scrub_values=credential_values(secrets),
    )


def _headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": api_key,
        "Accept": "application/json",
        "Content-Type": "application/json",
    }


def _prepare_update(
    config: LinearUpdateConfig,
    render: Render,
    secrets: Mapping[str, str],
    endpoint: str,
    api_key: str,
) -> PreparedRequest:
    issue = render_field(render, config.issue_id, "issue id").strip()
    if not issue:
        raise ActionInputError(
            "The issue id rendered to empty text: no earlier step gave one (did the run "
            "that opens the issue happen on this incident?)."
        )
    if not _ISSUE_REF_RE.fullmatch(issue):
        shown = issue if len(issue) <= 40 else issue[:39] + "…"
        raise ActionInputError(
            f"The issue id rendered to '{shown}', which is neither a Linear issue id (a UUID) "
            "nor an identifier such as ENG-12."
        )
    wanted = config.state.strip()
    # Shown by dry runs; the lookup's answer completes it before anything is sent.
    preview = {
        "query": ISSUE_UPDATE_MUTATION,
        "operationName": "IssueUpdate",
        "variables": {"id": issue, "input": {"stateId": f"<the id of the state '{wanted}'>"}},
    }
    lookup_body = {
        "query": ISSUE_STATES_QUERY,
        "operationName": "IssueStates",
        "variables": {"id": issue},
    }
    scrub_values = credential_values(secrets)
    return PreparedRequest(
        action_type=ActionType.LINEAR,
        method="POST",
        url=endpoint,
        headers=_headers(api_key),
        body=json.dumps(preview, ensure_ascii=False).encode("utf-8"),
        target="Linear",
        sensitive_headers=frozenset({"authorization"}),
        context={"operation": "update", "issue": issue},
        secret_values=tuple(value for value in secrets.values() if value),
        scrub_values=scrub_values,
        lookup=Lookup(
            method="POST",
            url=endpoint,
            body=json.dumps(lookup_body, ensure_ascii=False).encode("utf-8"),
            purpose=f"the states of {issue}'s team, to find '{wanted}'",
            complete=lambda answer: _choose_state(answer, issue, wanted, scrub_values),
        ),
    )


def _choose_state(
    answer: ResponseData, issue: str, wanted: str, scrub_values: tuple[str, ...]
) -> tuple[bytes, Mapping[str, str]]:
    payload = answer.json()
    errors, rate_limited = _graphql_errors(payload, Scrubber(scrub_values))
    if errors or not 200 <= answer.status_code < 300:
        detail = f": {errors}" if errors else ""
        raise LookupFailed(
            sentence(
                f"Linear answered {answer.status_code} {answer.reason} when asked for "
                f"{issue} and its team's states{detail}"
            ),
            retryable=retryable_status(answer.status_code) or rate_limited,
            response=answer,
        )
    found = _dig(payload, "data", "issue")
    nodes = _dig(found, "team", "states", "nodes")
    if not isinstance(found, dict) or not isinstance(nodes, list):
        raise LookupFailed(f"Linear found no issue {issue}.", response=answer)
    states = [
        node
        for node in nodes
        if isinstance(node, dict) and isinstance(node.get("id"), str) and node.get("name")
    ]
    folded = wanted.casefold()
    chosen = next((s for s in states if str(s["name"]).casefold() == folded), None)
    if chosen is None and folded in STATE_TYPES:
        of_type = [s for s in states if s.get("type") == folded]
        of_type.sort(key=_position)
        chosen = of_type[0] if of_type else None
    if chosen is None:
        available = ", ".join(f"'{s['name']}' ({s.get('type')})" for s in states) or "none"
        raise LookupFailed(
            f"The team of {issue} has no workflow state named '{wanted}'; its states are: "
            f"{available}.",
            response=answer,
        )
    issue_id = str(found.get("id") or issue)
    body = {
        "query": ISSUE_UPDATE_MUTATION,
        "operationName": "IssueUpdate",
        "variables": {"id": issue_id, "input": {"stateId": chosen["id"]}},
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8"), {"state": str(chosen["name"])}


def _position(state: dict[str, Any]) -> float:
    position = state.get("position")
    return float(position) if isinstance(position, int | float) else 0.0


def interpret(response: ResponseData, prepared: PreparedRequest) -> Interpretation:
    status = response.status_code
    payload = response.json()
    errors, rate_limited = _graphql_errors(payload, Scrubber(prepared.scrub_values))
    if 200 <= status < 300 and prepared.context.get("operation") == "update":
        if errors:
            return Interpretation(
                ok=False,
                error=sentence(f"Linear refused the update: {errors}"),
                retryable=rate_limited,
            )
        updated = _dig(payload, "data", "issueUpdate")
        if not isinstance(updated, dict) or updated.get("success") is not True:
            return Interpretation(
                ok=False, error="Linear answered that the issue was not updated (success: false)."
            )
        issue = _dig(updated, "issue")
        return Interpretation(
            ok=True,
            result={
                "id": str(_dig(issue, "id") or ""),
                "identifier": str(_dig(issue, "identifier") or prepared.context["issue"]),
                "url": str(_dig(issue, "url") or ""),
                "state": str(_dig(issue, "state", "name") or prepared.context.get("state", "")),
            },
        )
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
