"""Real HTTP servers on 127.0.0.1 standing in for a webhook receiver, Jira, Linear
and an OAuth2 token endpoint.

Each runs ``http.server.ThreadingHTTPServer`` on an ephemeral port in a
thread and records every request. Jira, Linear and the token endpoint check
requests the way the real APIs document them (path, method, headers,
authentication, body shape) and answer like them. Any server can be told
what to answer next with ``reply(...)`` — a status, headers, body, a delay,
or a dropped connection — which takes precedence over its own behaviour.

Use the pytest fixtures at the bottom (``webhook_receiver``, ``fake_jira``,
``fake_linear``, ``fake_oauth``); register this module as a plugin
(``pytest_plugins = ["tests.fakes.servers"]``) or import the fixtures.
The engine reaches them only when ``OUTBOUND_ALLOW`` lets 127.0.0.1 through.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import ssl
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

__all__ = [
    "FakeJira",
    "FakeLinear",
    "FakeOAuth",
    "FakeServer",
    "LINEAR_TEAM_ID",
    "LINEAR_LABEL_ID",
    "RecordedRequest",
    "Reply",
    "WebhookReceiver",
    "fake_jira",
    "fake_linear",
    "fake_oauth",
    "webhook_receiver",
]

JSONish = dict[str, Any] | list[Any]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    target: str
    headers: Message
    body: bytes
    server_name: str | None = None  # the TLS SNI name, when served over TLS

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    """What to answer: ``body`` may be bytes, text or a JSON-able value."""

    status: int = 200
    body: bytes | str | JSONish | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (slowness)
    drop: bool = False  # close the connection without answering

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            data = b""
        elif isinstance(self.body, bytes):
            data = self.body
        elif isinstance(self.body, str):
            data = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json")
        return data, headers


def json_reply(status: int, body: JSONish, **headers: str) -> Reply:
    return Reply(status=status, body=body, headers=dict(headers))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            target=self.path,
            headers=self.headers,
            body=body,
            server_name=getattr(self.connection, "_fake_sni", None),
        )
        fake = self.server.fake
        reply = fake._record_and_choose(request)
        if reply.delay and fake._stopping.wait(reply.delay):
            return
        if reply.drop:
            self.close_connection = True
            # RST instead of FIN: the client sees the connection vanish.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()
            return
        data, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the connection was dropped on purpose
            super().finish()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Workers open dozens of connections at once; the default backlog of 5 would
    # drop connection attempts on a busy machine and make them time out.
    request_queue_size = 128
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are expected here


class FakeServer:
    """A recording HTTP server on ``host`` (default 127.0.0.1), ephemeral port."""

    def __init__(
        self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None, port: int = 0
    ) -> None:
        self.requests: list[RecordedRequest] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # A port of a server stopped before: the same address comes back (an outage ends).
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self.tls = tls is not None
        if tls is not None:
            tls.sni_callback = _remember_sni
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.host = host
        self.port = int(self._server.server_address[1])
        # A short poll interval lets stop() return at once.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}:{self.port}",
        )
        self._thread.daemon = True

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order, before the default."""
        with self._lock:
            self._replies.extend(replies)

    def _record_and_choose(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            queued = self._replies.popleft() if self._replies else None
        return queued if queued is not None else self.handle(request)

    def handle(self, request: RecordedRequest) -> Reply:
        """The server's own answer (override); the receiver answers 200 {"ok": true}."""
        return json_reply(200, {"ok": True})

    @property
    def last(self) -> RecordedRequest:
        assert self.requests, "the server received no request"
        return self.requests[-1]


def _remember_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: Any) -> None:
    sock._fake_sni = name  # type: ignore[union-attr]


class WebhookReceiver(FakeServer):
    """A webhook endpoint: records requests, answers 200 unless told otherwise."""

    def rate_limit(self, retry_after: str = "1") -> None:
        self.reply(json_reply(429, {"error": "slow down"}, **{"Retry-After": retry_after}))

    def redirect(self, location: str, status: int = 302) -> None:
        self.reply(Reply(status=status, headers={"Location": location}))

    def slow(self, seconds: float) -> None:
        self.reply(Reply(status=200, body={"ok": True}, delay=seconds))

    def drop(self) -> None:
        self.reply(Reply(drop=True))


# --- Jira Cloud ---------------------------------------------------------------

_JIRA_FIELDS = {"project", "issuetype", "summary", "description", "priority", "labels"}
_ADF_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard"}
_ADF_BLOCKS = {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "rule"}


#: The fake's issue workflow: status -> transitions (id, name, target status).
JIRA_WORKFLOW: dict[str, tuple[tuple[str, str, str], ...]] = {
    "To Do": (("21", "Start progress", "In Progress"), ("31", "Done", "Done")),
    "In Progress": (("11", "Stop progress", "To Do"), ("31", "Done", "Done")),
    "Done": (("41", "Reopen", "To Do"),),
}
_ISSUE_PATH_RE = re.compile(r"^/rest/api/3/issue/(?P<key>[^/]+)/(?P<what>transitions|comment)$")


class FakeJira(FakeServer):
    """Jira Cloud's REST v3 issue endpoints, checked as the API documents them.

    ``POST /rest/api/3/issue`` creates (status "To Do"); ``GET`` and ``POST
    /rest/api/3/issue/{key}/transitions`` list the transitions the issue can take
    now and take one by id (204); ``POST /rest/api/3/issue/{key}/comment`` adds an
    ADF comment (201). Issues follow JIRA_WORKFLOW.
    """

    def __init__(
        self,
        *,
        email: str = "automation@example.com",
        api_token: str = "jira-api-token-123",
        projects: tuple[str, ...] = ("OPS", "SEC"),
        issue_types: tuple[str, ...] = ("Task", "Bug", "Incident"),
        priorities: tuple[str, ...] = ("Highest", "High", "Medium", "Low", "Lowest"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.email = email
        self.api_token = api_token
        self.projects = projects
        self.issue_types = issue_types
        self.priorities = priorities
        self.issues: list[dict[str, Any]] = []

    def secrets(self) -> dict[str, str]:
        """The workflow secrets a Jira action needs to reach this server."""
        return {
            "jira_base_url": self.url,
            "jira_email": self.email,
            "jira_api_token": self.api_token,
        }

    def issue(self, key: str) -> dict[str, Any] | None:
        return next((i for i in self.issues if key in (i["key"], i["id"])), None)

    def handle(self, request: RecordedRequest) -> Reply:
        update = _ISSUE_PATH_RE.match(request.path)
        if request.path != "/rest/api/3/issue" and update is None:
            return json_reply(404, {"errorMessages": ["Not found"], "errors": {}})
        allowed = ("GET", "POST") if update and update["what"] == "transitions" else ("POST",)
        if request.method not in allowed:
            return json_reply(405, {"errorMessages": ["Method Not Allowed"], "errors": {}})
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        if request.header("Authorization") != f"Basic {expected}":
            return Reply(401, "Client must be authenticated to access this resource.")
        if update is not None:
            issue = self.issue(update["key"])
            if issue is None:
                return json_reply(
                    404,
                    {
                        "errorMessages": [
                            "Issue does not exist or you do not have permission to see it."
                        ],
                        "errors": {},
                    },
                )
            if request.method == "GET":
                return json_reply(
                    200, {"expand": "transitions", "transitions": self._listed(issue)}
                )
        if (request.header("Content-Type") or "").split(";")[0].strip() != "application/json":
            return json_reply(415, {"errorMessages": ["Unsupported Media Type"], "errors": {}})
        try:
            payload = request.json()
        except ValueError:
            return json_reply(400, {"errorMessages": ["Unexpected character"], "errors": {}})
        if update is not None:
            if update["what"] == "transitions":
                return self._transition(issue, payload)
            return self._comment(issue, payload)
        fields = payload.get("fields") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            return json_reply(400, {"errorMessages": ["fields are required"], "errors": {}})
        errors = self._field_errors(fields)
        if errors:
            return json_reply(400, {"errorMessages": [], "errors": errors})
        number = len(self.issues) + 1
        issue_id = str(10_000 + number)
        key = f"{fields['project']['key']}-{number}"
        self.issues.append(
            {"id": issue_id, "key": key, "fields": fields, "status": "To Do", "comments": []}
        )
        return json_reply(
            201, {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/3/issue/{issue_id}"}
        )

    def _listed(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": transition_id,
                "name": name,
                "to": {"id": str(100 + len(target)), "name": target, "self": self.url},
                "hasScreen": False,
                "isAvailable": True,
            }
            for transition_id, name, target in JIRA_WORKFLOW[issue["status"]]
        ]

    def _transition(self, issue: dict[str, Any], payload: Any) -> Reply:
        transition = payload.get("transition") if isinstance(payload, dict) else None
        wanted = transition.get("id") if isinstance(transition, dict) else None
        if not isinstance(wanted, str):
            return json_reply(
                400, {"errorMessages": [], "errors": {"transition": "Transition id is required"}}
            )
        for transition_id, _name, target in JIRA_WORKFLOW[issue["status"]]:
            if transition_id == wanted:
                issue["status"] = target
                return Reply(204)
        return json_reply(
            400,
            {
                "errorMessages": [f"Transition id '{wanted}' is not valid for this issue."],
                "errors": {},
            },
        )

    def _comment(self, issue: dict[str, Any], payload: Any) -> Reply:
        body = payload.get("body") if isinstance(payload, dict) else None
        if not _is_adf(body):
            return json_reply(
                400,
                {
                    "errorMessages": [],
                    "errors": {"comment": "Comment body must be an Atlassian Document."},
                },
            )
        comment_id = str(20_000 + sum(len(i["comments"]) for i in self.issues) + 1)
        issue["comments"].append(body)
        return json_reply(
            201,
            {
                "id": comment_id,
                "self": f"{self.url}/rest/api/3/issue/{issue['id']}/comment/{comment_id}",
                "body": body,
            },
        )

    def _field_errors(self, fields: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for name in fields:
            if name not in _JIRA_FIELDS:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                    "or unknown."
                )
        project = fields.get("project")
        if not (isinstance(project, dict) and project.get("key") in self.projects):
            errors["project"] = "valid project is required"
        issue_type = fields.get("issuetype")
        if not (isinstance(issue_type, dict) and issue_type.get("name") in self.issue_types):
            errors["issuetype"] = "Specify a valid issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255 or "\n" in summary:
            errors["summary"] = "Summary must be one line of less than 255 characters."
        if "description" in fields and not _is_adf(fields["description"]):
            errors["description"] = (
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            )
        if "priority" in fields:
            priority = fields["priority"]
            if not (isinstance(priority, dict) and priority.get("name") in self.priorities):
                errors["priority"] = "Specify a valid priority"
        if "labels" in fields:
            labels = fields["labels"]
            if not (
                isinstance(labels, list)
                and all(isinstance(label, str) and label and " " not in label for label in labels)
            ):
                errors["labels"] = "The label must not contain spaces."
        return errors


def _is_adf(value: Any) -> bool:
    if not (
        isinstance(value, dict)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
    ):
        return False
    for block in value["content"]:
        if not isinstance(block, dict) or block.get("type") not in _ADF_BLOCKS:
            return False
        for inline in block.get("content", []):
            if not isinstance(inline, dict) or inline.get("type") not in _ADF_INLINE:
                return False
            text = inline.get("text")
            if inline["type"] == "text" and not (isinstance(text, str) and text):
                return False  # ADF text nodes must not be empty
    return True


# --- Linear -------------------------------------------------------------------

LINEAR_TEAM_ID = "9cfb482a-81e3-4154-b5b9-2c805e70a02d"
LINEAR_LABEL_ID = "2f1c9a9e-5b0e-4a65-8f4f-0c4a4f0d8b6e"
_ISSUE_CREATE_INPUT = {"teamId", "title", "description", "priority", "labelIds"}
_MUTATION_RE = re.compile(
    r"^\s*mutation\b[^({]*\(\s*\$input\s*:\s*IssueCreateInput!\s*\)\s*\{\s*"
    r"issueCreate\s*\(\s*input\s*:\s*\$input\s*\)\s*\{(?P<selection>.*)\}\s*\}\s*$",
    re.DOTALL,
)


_STATES_QUERY_RE = re.compile(
    r"^\s*query\b[^({]*\(\s*\$id\s*:\s*String!\s*\)\s*\{\s*"
    r"issue\s*\(\s*id\s*:\s*\$id\s*\)\s*\{(?P<selection>.*)\}\s*\}\s*$",
    re.DOTALL,
)
_UPDATE_MUTATION_RE = re.compile(
    r"^\s*mutation\b[^({]*\(\s*\$id\s*:\s*String!\s*,\s*\$input\s*:\s*"
    r"IssueUpdateInput!\s*\)\s*\{\s*issueUpdate\s*\(\s*id\s*:\s*\$id\s*,\s*"
    r"input\s*:\s*\$input\s*\)\s*\{(?P<selection>.*)\}\s*\}\s*$",
    re.DOTALL,
)
_ISSUE_UPDATE_INPUT = {"stateId", "title", "description", "priority", "labelIds", "assigneeId"}
#: Every fake team's workflow states: (name, type, position).
LINEAR_STATES = (
    ("Backlog", "backlog", 0),
    ("Todo", "unstarted", 1),
    ("In Progress", "started", 2),
    ("Done", "completed", 3),
    ("Canceled", "canceled", 4),
)


def _graphql_error(message: str, code: str, user_message: str | None = None) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": code, "type": code.lower().replace("_", " ")}
    if user_message:
        extensions["userPresentableMessage"] = user_message
    return {"message": message, "extensions": extensions}


class FakeLinear(FakeServer):
    """Linear's GraphQL endpoint: the ``issueCreate`` and ``issueUpdate`` mutations and the
    ``issue(id:)`` query (with its team's workflow states, LINEAR_STATES)."""

    def __init__(
        self,
        *,
        api_key: str = "lin_api_fake0123456789",
        teams: dict[str, str] | None = None,
        labels: tuple[str, ...] = (LINEAR_LABEL_ID,),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.teams = teams if teams is not None else {LINEAR_TEAM_ID: "ENG"}
        self.labels = labels
        self.issues: list[dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        return f"{self.url}/graphql"

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path != "/graphql":
            return Reply(404, "Not Found")
        if request.method != "POST":
            return json_reply(405, {"errors": [{"message": "Use POST"}]})
        # Personal API keys are sent as they are, without "Bearer".
        if request.header("Authorization") != self.api_key:
            return json_reply(
                401,
                {
                    "errors": [
                        _graphql_error(
                            "Authentication required, not authenticated",
                            "AUTHENTICATION_ERROR",
                            "You need to authenticate to access this operation.",
                        )
                    ]
                },
            )
        if (request.header("Content-Type") or "").split(";")[0].strip() != "application/json":
            return json_reply(400, {"errors": [{"message": "Must provide query string."}]})
        try:
            payload = request.json()
        except ValueError:
            return json_reply(400, {"errors": [{"message": "Unexpected token in JSON"}]})
        query = payload.get("query") if isinstance(payload, dict) else None
        if isinstance(query, str) and _STATES_QUERY_RE.match(query):
            return self._issue_query(payload.get("variables"))
        if isinstance(query, str) and _UPDATE_MUTATION_RE.match(query):
            return self._issue_update(payload.get("variables"))
        match = _MUTATION_RE.match(query) if isinstance(query, str) else None
        if match is None:
            return json_reply(
                400,
                {"errors": [_graphql_error("Expected the issueCreate mutation", "GRAPHQL_PARSE")]},
            )
        selection = " ".join(match.group("selection").split())
        if "success" not in selection or not re.search(
            r"issue\s*\{[^}]*\bidentifier\b[^}]*\burl\b|issue\s*\{[^}]*\burl\b[^}]*\bidentifier\b",
            selection,
        ):
            return json_reply(
                400,
                {"errors": [_graphql_error("Select success and issue", "GRAPHQL_VALIDATION")]},
            )
        variables = payload.get("variables")
        issue = variables.get("input") if isinstance(variables, dict) else None
        if not isinstance(issue, dict):
            return json_reply(
                400,
                {
                    "errors": [
                        _graphql_error(
                            'Variable "$input" of required type "IssueCreateInput!" was not '
                            "provided.",
                            "GRAPHQL_VALIDATION_FAILED",
                        )
                    ]
                },
            )
        unknown = sorted(set(issue) - _ISSUE_CREATE_INPUT)
        if unknown:
            return json_reply(
                400,
                {
                    "errors": [
                        _graphql_error(
                            f'Field "{unknown[0]}" is not defined by type "IssueCreateInput".',
                            "GRAPHQL_VALIDATION_FAILED",
                        )
                    ]
                },
            )
        problem = self._input_problem(issue)
        if problem is not None:
            # Argument problems come back in a 200, as GraphQL errors.
            return json_reply(
                200,
                {"data": None, "errors": [_graphql_error(problem, "INVALID_INPUT", problem)]},
            )
        team_key = self.teams[issue["teamId"]]
        number = len(self.issues) + 1
        identifier = f"{team_key}-{number}"
        created = {
            "id": str(uuid.uuid4()),
            "identifier": identifier,
            "url": f"https://linear.app/acme/issue/{identifier.lower()}/created-issue",
        }
        self.issues.append({**created, "input": issue, "team": issue["teamId"], "state": "Todo"})
        return json_reply(200, {"data": {"issueCreate": {"success": True, "issue": created}}})

    def state_ids(self, team_id: str) -> dict[str, str]:
        """The fake's state ids of a team, by state name (stable: derived from the names)."""
        return {
            name: str(uuid.uuid5(uuid.UUID(team_id), name)) for name, _type, _pos in LINEAR_STATES
        }

    def find(self, reference: str) -> dict[str, Any] | None:
        """An issue by id or identifier, as ``issue(id:)`` finds it."""
        return next((i for i in self.issues if reference in (i["id"], i["identifier"])), None)

    def _not_found(self) -> Reply:
        error = _graphql_error(
            "Entity not found: Issue", "INVALID_INPUT", "Could not find referenced Issue."
        )
        return json_reply(200, {"data": None, "errors": [error]})

    def _issue_query(self, variables: Any) -> Reply:
        reference = variables.get("id") if isinstance(variables, dict) else None
        issue = self.find(reference) if isinstance(reference, str) else None
        if issue is None:
            return self._not_found()
        ids = self.state_ids(issue["team"])
        states = [
            {"id": ids[name], "name": name, "type": kind, "position": position}
            for name, kind, position in LINEAR_STATES
        ]
        found = {
            "id": issue["id"],
            "identifier": issue["identifier"],
            "team": {"states": {"nodes": states}},
        }
        return json_reply(200, {"data": {"issue": found}})

    def _issue_update(self, variables: Any) -> Reply:
        reference = variables.get("id") if isinstance(variables, dict) else None
        update = variables.get("input") if isinstance(variables, dict) else None
        if not isinstance(update, dict):
            error = _graphql_error(
                'Variable "$input" of required type "IssueUpdateInput!" was not provided.',
                "GRAPHQL_VALIDATION_FAILED",
            )
            return json_reply(400, {"errors": [error]})
        unknown = sorted(set(update) - _ISSUE_UPDATE_INPUT)
        if unknown:
            error = _graphql_error(
                f'Field "{unknown[0]}" is not defined by type "IssueUpdateInput".',
                "GRAPHQL_VALIDATION_FAILED",
            )
            return json_reply(400, {"errors": [error]})
        issue = self.find(reference) if isinstance(reference, str) else None
        if issue is None:
            return self._not_found()
        if "stateId" in update:
            names = {state_id: name for name, state_id in self.state_ids(issue["team"]).items()}
            if update["stateId"] not in names:
                error = _graphql_error(
                    "Entity not found: WorkflowState",
                    "INVALID_INPUT",
                    "Could not find referenced WorkflowState.",
                )
                return json_reply(200, {"data": None, "errors": [error]})
            issue["state"] = names[update["stateId"]]
        shown = {
            "id": issue["id"],
            "identifier": issue["identifier"],
            "url": issue["url"],
            "state": {"name": issue["state"]},
        }
        return json_reply(200, {"data": {"issueUpdate": {"success": True, "issue": shown}}})

    def _input_problem(self, issue: dict[str, Any]) -> str | None:
        if issue.get("teamId") not in self.teams:
            return "Could not find referenced Team."
        title = issue.get("title")
        if not isinstance(title, str) or not title.strip():
            return "Title cannot be empty."
        if "description" in issue and not isinstance(issue["description"], str):
            return "Description must be a string."
        priority = issue.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 4:
            return "Priority must be an integer between 0 and 4."
        labels = issue.get("labelIds", [])
        if not isinstance(labels, list) or any(label not in self.labels for label in labels):
            return "Could not find referenced label."
        return None


# --- OAuth2 token endpoint ----------------------------------------------------


class FakeOAuth(FakeServer):
    """An OAuth2 token endpoint (client credentials grant, RFC 6749 section 4.4)."""

    def __init__(
        self,
        *,
        client_id: str = "incidentflow",
        client_secret: str = "oauth-client-secret-456",
        expires_in: int | None = 3600,
        token_delay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.token_delay = token_delay  # seconds before each token is issued
        self.issued: list[str] = []

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def token_requests(self) -> int:
        return sum(1 for request in self.requests if request.path == "/oauth/token")

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path != "/oauth/token" or request.method != "POST":
            return Reply(404, "Not Found")
        content_type = (request.header("Content-Type") or "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            return json_reply(400, {"error": "invalid_request"})
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return json_reply(400, {"error": "unsupported_grant_type"})
        authorization = request.header("Authorization") or ""
        in_body = "client_secret" in form
        if authorization.startswith("Basic ") and in_body:
            return json_reply(
                400,
                {"error": "invalid_request", "error_description": "Use one client auth method."},
            )
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
            client_id, client_secret = unquote_plus(client_id), unquote_plus(client_secret)
        else:
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return json_reply(
                401, {"error": "invalid_client"}, **{"WWW-Authenticate": 'Basic realm="token"'}
            )
        if self.token_delay:
            self._stopping.wait(self.token_delay)
        with self._lock:
            token = f"access-{len(self.issued) + 1}-{uuid.uuid4().hex[:8]}"
            self.issued.append(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return json_reply(200, body, **{"Cache-Control": "no-store"})


# --- Fixtures -----------------------------------------------------------------


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 that records requests and answers as told."""
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    """A Jira Cloud stand-in on 127.0.0.1; ``fake_jira.secrets()`` reaches it."""
    server = FakeJira().start()
    yield server
    server.stop()


@pytest.fixture
def fake_linear() -> Iterator[FakeLinear]:
    """A Linear GraphQL stand-in on 127.0.0.1 at ``fake_linear.endpoint``."""
    server = FakeLinear().start()
    yield server
    server.stop()


@pytest.fixture
def fake_oauth() -> Iterator[FakeOAuth]:
    """An OAuth2 token endpoint on 127.0.0.1 at ``fake_oauth.token_url``."""
    server = FakeOAuth().start()
    yield server
    server.stop()
