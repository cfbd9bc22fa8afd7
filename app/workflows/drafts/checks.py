"""The editor's readiness checklist: what is wrong with a draft, placed where it belongs.

``check`` validates a draft as enabling would and sorts each schema problem to the
node (and field), edge or settings it concerns (``Checked``, ``EditorProblem``);
alongside come webhook bodies that a sample incident shows cannot be JSON,
webhook and token URLs whose host is internal (``internal_host_problems``),
unknown template variables, secrets the draft uses that the workflow lacks
(``missing_secrets``) and placeholders left to fill (``must_fill``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from app.definition import definition_errors, format_loc, parse_definition
from app.workflows.drafts.parts import Loc, draft_nodes, is_action, node_label, trigger_node_id
from app.workflows.drafts.variables import graph_runs_before, unknown_references, variables_for
from app.workflows.templates_builtin import unfilled_placeholders

__all__ = [
    "Checked",
    "EditorProblem",
    "FillItem",
    "Section",
    "check",
    "internal_host_problems",
    "missing_secrets",
    "must_fill",
    "parse_loc",
]

_LOC_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def parse_loc(text: str) -> Loc:
    """``nodes[2].data.config.headers["X.Y"]`` -> ("nodes", 2, "data", ..., "X.Y")."""
    parts: list[str | int] = []
    position = 0
    while position < len(text):
        match = _LOC_TOKEN.match(text, position)
        if match is None:
            break
        word, index, quoted = match.groups()
        if word is not None:
            parts.append(word)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(json.loads(quoted))
        position = match.end()
    return tuple(parts)


Section = Literal["node", "edge", "settings", "definition"]


@dataclass(frozen=True)
class EditorProblem:
    """A schema problem, placed: the node (and location within it) or edge it concerns."""

    loc: str
    message: str
    code: str
    section: Section
    node_id: str | None = None
    rel: Loc = ()  # within the node ("data", ...) or the trigger ("trigger", ...)
    edge_index: int | None = None
    warning: bool = False


@dataclass
class Checked:
    """The schema's verdict on a draft, sorted by where each problem belongs."""

    valid: bool
    problems: list[EditorProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[EditorProblem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[EditorProblem]:
        return [p for p in self.problems if p.warning]

    def for_node(self, node_id: str | None) -> list[EditorProblem]:
        return [p for p in self.problems if p.section == "node" and p.node_id == node_id]

    def for_edge(self, index: int) -> list[EditorProblem]:
        return [p for p in self.problems if p.section == "edge" and p.edge_index == index]

    @property
    def settings(self) -> list[EditorProblem]:
        return [p for p in self.problems if p.section == "settings"]

    def node_messages(self) -> dict[str, str]:
        """Node id -> its first error, for the picture."""
        found: dict[str, str] = {}
        for problem in self.errors:
            if problem.node_id and problem.node_id not in found:
                found[problem.node_id] = problem.message
        return found


def _place(
    definition: Mapping[str, Any], loc: Loc, trigger_id: str | None
) -> tuple[Section, str | None, Loc, int | None]:
    nodes = draft_nodes(definition)
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        index = loc[1]
        node_id = nodes[index].get("id") if index < len(nodes) else None
        return "node", node_id if isinstance(node_id, str) else None, loc[2:], None
    if loc[:1] == ("trigger",):
        return "node", trigger_id, loc, None
    if len(loc) >= 2 and loc[0] == "edges" and isinstance(loc[1], int):
        return "edge", None, loc[2:], loc[1]
    if loc[:1] in (("name",), ("description",), ("settings",)):
        return "settings", None, loc, None
    return "definition", None, loc, None


def _placed(
    definition: Mapping[str, Any],
    trigger_id: str | None,
    loc: str,
    message: str,
    code: str,
    *,
    warning: bool,
) -> EditorProblem:
    section, node_id, rel, edge_index = _place(definition, parse_loc(loc), trigger_id)
    return EditorProblem(
        loc=loc,
        message=message,
        code=code,
        section=section,
        node_id=node_id,
        rel=rel,
        edge_index=edge_index,
        warning=warning,
    )


def _problems(definition: Mapping[str, Any], error: ValidationError) -> list[EditorProblem]:
    trigger_id = trigger_node_id(definition)
    return [
        _placed(
            definition,
            trigger_id,
            problem.loc,
            problem.message,
            problem.code,
            warning=_only_for_enabling(problem.code, problem.message),
        )
        for problem in definition_errors(error)
    ]


def _body_problems(definition: Mapping[str, Any]) -> list[EditorProblem]:
    """Webhook bodies that a sample incident shows cannot be JSON: saving allows them
    (a draft is work in progress), enabling does not."""
    from app.engine.sample_render import json_body_problems

    trigger_id = trigger_node_id(definition)
    return [
        _placed(definition, trigger_id, p.loc, p.message, "body_not_json", warning=True)
        for p in json_body_problems(definition)
    ]


def _only_for_enabling(code: str, message: str) -> bool:
    """Problems the schema reports only when told the workflow's secrets: a secret
    that does not exist yet. Saving allows them; enabling does not."""
    return code == "missing_secret" or (
        code == "unknown_secret" and message.startswith("This workflow has no secret named")
    )


#: Name endings that only resolve inside a network (RFC 6761/6762/8375 and common habits).
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")


def _internal_reason(url: str, allow: Any) -> str | None:
    """Why ``url``'s host looks internal, judged from its text alone (no DNS lookup)."""
    from urllib.parse import urlsplit

    from app.engine.outbound import blocked_reason, canonical_host

    head = url.split("/", 3)[:3]
    if "{" in "/".join(head):
        return None  # a templated host is known only when the run renders it
    try:
        hostname = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not hostname:
        return None
    host = canonical_host(hostname)
    if allow is not None and allow.allows_host(host):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
            return f"'{host}' is a name that only resolves inside a network"
        if "." not in host:
            return f"'{host}' is a single-label name, resolved inside your network"
        return None
    if allow is not None and allow.allows_address(address):
        return None
    reason = blocked_reason(address)
    return f"'{host}' is {reason}" if reason else None


def internal_host_problems(definition: Mapping[str, Any], allow: Any = None) -> list[EditorProblem]:
    """Webhook and token URLs whose host is internal (and not on the allow-list): the
    outbound guard will refuse them when the workflow runs, so say it while editing."""
    trigger_id = trigger_node_id(definition)
    problems = []
    for index, node in enumerate(draft_nodes(definition)):
        data = node.get("data")
        if not isinstance(data, Mapping) or data.get("actionType") != "webhook":
            continue
        config = data.get("config")
        if not isinstance(config, Mapping):
            continue
        auth = config.get("auth")
        urls = [("url", config.get("url"))]
        if isinstance(auth, Mapping):
            urls.append(("auth.tokenUrl", auth.get("tokenUrl")))
        for key, url in urls:
            reason = _internal_reason(url, allow) if isinstance(url, str) else None
            if reason:
                problems.append(
                    _placed(
                        definition,
                        trigger_id,
                        f"nodes[{index}].data.config.{key}",
                        f"{reason}: runs will refuse to send there. Requests to internal "
                        "networks are refused unless an administrator allows the destination "
                        "with INCIDENTFLOW_OUTBOUND_ALLOW (see /admin/outbound).",
                        "internal_host",
                        warning=True,
                    )
                )
    return problems


def check(definition: Mapping[str, Any], secret_names: Iterable[str], allow: Any = None) -> Checked:
    """Validate a draft as enabling would, in one pass of the schema.

    Problems that only enabling cares about (a secret that does not exist yet)
    are warnings: the draft can be saved with them (``service.save_version``
    stays the judge). While the schema rejects fields, it does not get to the
    template rules; the editor's own variable check fills in, so an unknown
    variable is flagged as soon as it is typed.
    """
    names = frozenset(secret_names)
    try:
        parse_definition(definition, secret_names=names)
    except ValidationError as error:
        problems = _problems(definition, error)
    else:
        found = _body_problems(definition) + internal_host_problems(definition, allow)
        return Checked(valid=True, problems=found) if found else Checked(valid=True)
    if not any(p.section == "node" and p.code == "unknown_variable" for p in problems):
        taken = {(p.node_id, p.rel) for p in problems}
        for extra in _variable_problems(definition, names):
            if (extra.node_id, extra.rel) not in taken:
                problems.append(extra)
    # A body that cannot be JSON is worth knowing while other things are still missing.
    taken_locs = {p.loc for p in problems}
    problems += [p for p in _body_problems(definition) if p.loc not in taken_locs]
    problems += [p for p in internal_host_problems(definition, allow) if p.loc not in taken_locs]
    return Checked(valid=not any(not p.warning for p in problems), problems=problems)


_SECRET_USE_RE = re.compile(
    r"""secrets\s*(?:\.\s*([a-z][a-z0-9_]{0,63})|\[\s*["']([a-z][a-z0-9_]{0,63})["']\s*\])"""
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def missing_secrets(
    definition: Mapping[str, Any], secret_names: Iterable[str]
) -> list[tuple[str, list[str]]]:
    """(secret name, names of the nodes that use it) for each secret the draft uses that
    the workflow does not have: named in a template, or needed by a Jira or Linear step."""
    from app.definition import IMPLICIT_SECRETS

    have = set(secret_names)
    users: dict[str, list[str]] = {}
    for node in draft_nodes(definition):
        data = node.get("data")
        if not is_action(node) or not isinstance(data, Mapping):
            continue
        names = [
            str(name)
            for kind, implicit in IMPLICIT_SECRETS.items()
            if data.get("actionType") == kind.value
            for name in implicit
        ]
        for text in _strings(data.get("config")):
            names += [a or b for a, b in _SECRET_USE_RE.findall(text)]
        for name in dict.fromkeys(names):
            if name not in have:
                users.setdefault(name, []).append(node_label(node))
    return sorted(users.items())


def _template_fields(data: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """The template fields of an action's data: (location relative to the node, text)."""
    config = data.get("config")
    if not isinstance(config, Mapping):
        return
    kind = data.get("actionType")
    if kind == "webhook":
        keys = ["url", "body"]
        headers = config.get("headers")
        if isinstance(headers, Mapping):
            for name, value in headers.items():
                if isinstance(value, str):
                    yield ("data", "config", "headers", name), value
        auth = config.get("auth")
        if isinstance(auth, Mapping):
            for key in ("username", "clientId"):
                if isinstance(auth.get(key), str):
                    yield ("data", "config", "auth", key), auth[key]
    elif kind == "jira":
        keys = {
            "transition": ["issueKey"],
            "comment": ["issueKey", "body"],
        }.get(str(config.get("operation")), ["summary", "description"])
    elif kind == "linear":
        keys = ["issueId"] if config.get("operation") == "update" else ["title", "description"]
    else:
        return
    for key in keys:
        if isinstance(config.get(key), str):
            yield ("data", "config", key), config[key]


def _variable_problems(
    definition: Mapping[str, Any], secret_names: frozenset[str]
) -> list[EditorProblem]:
    runs_before = graph_runs_before(definition)
    nodes = draft_nodes(definition)
    problems = []
    for index, node in enumerate(nodes):
        data = node.get("data")
        if not is_action(node) or not isinstance(data, Mapping):
            continue
        node_id = str(node.get("id"))
        variables = variables_for(definition, node_id, secret_names, runs_before)
        for rel, source in _template_fields(data):
            for message, warning in unknown_references(source, variables):
                problems.append(
                    EditorProblem(
                        loc=format_loc(("nodes", index, *rel)),
                        message=message,
                        code="unknown_variable",
                        section="node",
                        node_id=node_id,
                        rel=rel,
                        warning=warning,
                    )
                )
    return problems


# --- what must be filled in ------------------------------------------------------------


@dataclass(frozen=True)
class FillItem:
    """A ``<<fill: hint>>`` placeholder left in the draft."""

    loc: str
    hint: str
    section: Section
    node_id: str | None = None
    rel: Loc = ()


def must_fill(definition: Mapping[str, Any]) -> list[FillItem]:
    """Every template placeholder still in the draft (``<<fill: ...>>`` and the
    built-in templates' stand-in Jira key and Linear id), in document order."""
    trigger_id = trigger_node_id(definition)
    items = []
    for placeholder in unfilled_placeholders(definition):
        section, node_id, rel, _edge = _place(definition, parse_loc(placeholder.loc), trigger_id)
        items.append(FillItem(placeholder.loc, placeholder.hint, section, node_id, rel))
    return items
