"""Editor drafts: each user's unsaved edits to a workflow, and the edits themselves.

A draft is the whole definition as the user is shaping it, stored per (workflow,
user) so that it survives a reload and a second browser tab. It starts as a copy
of the current version (``base_version``) and may be invalid while work is in
progress; only saving it as a new version requires the schema's approval, and
saving a draft based on an older version than the current one is refused.

Credentials never enter a draft's definition: what a user types into a secret
input waits, encrypted, in the draft's ``pending_secrets`` (:func:`store_credentials`)
and the definition refers to it as ``{{ secrets.<name> }}``. Only saving the
draft as a version makes it the workflow's secret (:func:`save`): until then the
versions that run keep the secrets they have, and discarding the draft drops it.

Functions flush and never commit; the editor's routes own the transaction.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from app.auth.models import User
from app.definition import (
    MAX_BODY_LENGTH,
    PREVIOUS_FIELD,
    AssigneeContext,
    DelayNode,
    FailureContext,
    IncidentContext,
    TeamContext,
    TriggerNode,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowEdge,
    always_runs_before,
    definition_errors,
    format_loc,
    parse_definition,
)
from app.definition.templating import TemplateSyntaxProblem, template_references
from app.errors import Conflict, InvalidInput
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.enums import NodeType, TriggerType
from app.workflows.forms import Credential
from app.workflows.graph.layout import apply_layout
from app.workflows.models import Workflow, WorkflowDraft, WorkflowVersion
from app.workflows.templates_builtin import unfilled_placeholders

__all__ = [
    "NODE_KINDS",
    "Checked",
    "EditConflict",
    "EditorProblem",
    "FillItem",
    "Variables",
    "add_edge",
    "add_node",
    "check",
    "current_draft",
    "differences",
    "discard",
    "edge_targets",
    "find_draft",
    "has_changes",
    "internal_host_problems",
    "is_stale",
    "is_stored",
    "load_draft",
    "merge_edits",
    "missing_secrets",
    "must_fill",
    "parse_loc",
    "pending_names",
    "rebase",
    "remove_edge",
    "remove_node",
    "revision_of",
    "save",
    "store_credentials",
    "unknown_references",
    "update_node",
    "update_settings",
    "update_trigger",
    "variables_for",
]

Json = dict[str, Any]
Loc = tuple[str | int, ...]

_RETRY: Json = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000}

#: What "Add node" can add, with the data a new node starts with.
NODE_KINDS: dict[str, tuple[str, Json]] = {
    "webhook": (
        NodeType.ACTION.value,
        {
            "actionType": "webhook",
            "name": "Call a webhook",
            "config": {
                "url": "",
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": '{"title": {{ incident.title | tojson }}}',
                "auth": {"type": "none"},
            },
            "retry": _RETRY,
        },
    ),
    "jira": (
        NodeType.ACTION.value,
        {
            "actionType": "jira",
            "name": "Create a Jira issue",
            "config": {
                "projectKey": "",
                "issueType": "Task",
                "summary": "[{{ incident.priority }}] {{ incident.title }}",
                "description": "{{ incident.description }}",
            },
            "retry": _RETRY,
        },
    ),
    "linear": (
        NodeType.ACTION.value,
        {
            "actionType": "linear",
            "name": "Create a Linear issue",
            "config": {
                "teamId": "",
                "title": "{{ incident.title }}",
                "description": "{{ incident.description }}",
            },
            "retry": _RETRY,
        },
    ),
    "condition": (
        NodeType.CONDITION.value,
        {"field": "priority", "operator": "=", "value": "P1", "name": "Is it a P1?"},
    ),
    "delay": (NodeType.DELAY.value, {"durationMinutes": 10, "name": "Wait 10 minutes"}),
}
HANDLES = ("true", "false")


# --- finding and creating drafts ---------------------------------------------------


def find_draft(user: User, workflow: Workflow, *, for_update: bool = False) -> WorkflowDraft | None:
    query = sa.select(WorkflowDraft).where(
        WorkflowDraft.workflow_id == workflow.id, WorkflowDraft.user_id == user.id
    )
    if for_update:
        query = query.with_for_update()
    draft: WorkflowDraft | None = db.session.scalars(query).first()
    return draft


def _fresh(user: User, workflow: Workflow) -> WorkflowDraft:
    return WorkflowDraft(
        workflow_id=workflow.id,
        user_id=user.id,
        base_version=workflow.version,
        definition=copy.deepcopy(workflow.definition),
    )


def current_draft(user: User, workflow: Workflow) -> WorkflowDraft:
    """The user's stored draft, or an unstored copy of the current version.

    A stored draft that is based on an older version but holds no edits is
    dropped: there is nothing to lose, so it simply follows the new version.
    """
    draft = find_draft(user, workflow)
    if draft is None:
        return _fresh(user, workflow)
    if is_stale(draft, workflow):
        base = db.session.scalar(
            sa.select(WorkflowVersion.definition).where(
                WorkflowVersion.workflow_id == workflow.id,
                WorkflowVersion.version == draft.base_version,
            )
        )
        if base is not None and _same(base, draft.definition) and not draft.pending_secrets:
            db.session.delete(draft)
            db.session.flush()
            return _fresh(user, workflow)
    return draft


def load_draft(user: User, workflow: Workflow) -> WorkflowDraft:
    """The user's draft for changing, created from the current version when missing."""
    draft = find_draft(user, workflow, for_update=True)
    if draft is not None:
        return draft
    draft = _fresh(user, workflow)
    db.session.add(draft)
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(
            "Your draft was started in another tab at the same moment; try again."
        ) from error
    return draft


def is_stored(draft: WorkflowDraft) -> bool:
    return bool(sa.inspect(draft).persistent)


def is_stale(draft: WorkflowDraft, workflow: Workflow) -> bool:
    """True when a version newer than the draft's base has been saved."""
    return draft.base_version != workflow.version


def _without_enabled(definition: Mapping[str, Any]) -> Json:
    # Enabling changes the stored definition's settings.enabled without a new
    # version, and the editor never changes it; it is no edit.
    data = dict(definition)
    settings = data.get("settings")
    if isinstance(settings, Mapping):
        data["settings"] = {k: v for k, v in settings.items() if k != "enabled"}
    for key in ("id", "version"):
        data.pop(key, None)
    return data


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _without_enabled(a) == _without_enabled(b)


def revision_of(definition: Mapping[str, Any]) -> str:
    """A short fingerprint of a draft's content, posted back by every form that changes it.

    A form whose revision is no longer the draft's was rendered before another tab
    (or request) changed the draft; its edits are merged field by field, and where
    both sides changed the same field the apply is refused (``merge_edits``).
    """
    text = json.dumps(_without_enabled(definition), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


#: A key one side of a merge does not have.
MISSING: Any = object()


@dataclass(frozen=True)
class EditConflict:
    """A field both this form and another change touched: the draft's value and the form's."""

    path: Loc
    theirs: Any
    yours: Any


def merge_edits(
    base: Any, yours: Any, theirs: Any, path: Loc = ()
) -> tuple[Any, list[EditConflict]]:
    """Three-way merge of a form's edits (``yours``, made on ``base``) into the draft's
    current value (``theirs``). Objects merge key by key; other values are leaves."""
    if yours in (theirs, base):
        return theirs, []
    if theirs == base:
        return yours, []
    if isinstance(base, Mapping) and isinstance(yours, Mapping) and isinstance(theirs, Mapping):
        merged: Json = {}
        conflicts: list[EditConflict] = []
        for key in [*theirs, *(k for k in yours if k not in theirs)]:
            value, found = merge_edits(
                base.get(key, MISSING),
                yours.get(key, MISSING),
                theirs.get(key, MISSING),
                (*path, key),
            )
            conflicts.extend(found)
            if value is not MISSING:
                merged[key] = value
        return merged, conflicts
    return theirs, [EditConflict(path, theirs, yours)]


def has_changes(draft: WorkflowDraft, workflow: Workflow) -> bool:
    return is_stored(draft) and (
        bool(draft.pending_secrets) or not _same(draft.definition, workflow.definition)
    )


def discard(draft: WorkflowDraft) -> None:
    if is_stored(draft):
        db.session.delete(draft)
        db.session.flush()


def rebase(draft: WorkflowDraft, workflow: Workflow) -> None:
    """Keep the draft's edits but base them on the current version (they replace it on save)."""
    draft.base_version = workflow.version
    draft.definition = {**draft.definition, "version": workflow.version}
    db.session.flush()


def save(
    user: User, workflow: Workflow, draft: WorkflowDraft, change_note: str | None
) -> WorkflowVersion:
    """Save the draft as the next version and drop it.

    Raises Conflict (draft kept) when the workflow moved on since the draft's
    base version, DefinitionInvalid when the schema rejects it, and
    InvalidInput when nothing changed. Placeholders left to fill do not stop a
    save (work in progress may be kept); enabling refuses them.
    """
    service.require_edit(user, workflow)
    if not is_stored(draft) or (not is_stale(draft, workflow) and not has_changes(draft, workflow)):
        raise InvalidInput.at(
            "changeNote", f"There are no changes to save; this is version {workflow.version}."
        )
    for name, token in sorted((draft.pending_secrets or {}).items()):
        secret_store.adopt_encrypted(workflow, name, token, actor=user)
    version = service.save_version(
        user,
        workflow,
        draft.definition,
        base_version=draft.base_version,
        change_note=change_note,
    )
    db.session.delete(draft)
    db.session.flush()
    return version


# --- changes ---------------------------------------------------------------------


def _nodes(definition: Mapping[str, Any]) -> list[Json]:
    nodes = definition.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def _edges(definition: Mapping[str, Any]) -> list[Json]:
    edges = definition.get("edges")
    return [e for e in edges if isinstance(e, dict)] if isinstance(edges, list) else []


def _find_node(definition: Mapping[str, Any], node_id: str, loc: str = "node") -> Json:
    for node in _nodes(definition):
        if node.get("id") == node_id:
            return node
    raise InvalidInput.at(
        loc,
        f"There is no node '{node_id}' in your draft (was it removed in another tab?). "
        "Reload the page.",
    )


def _label(node: Mapping[str, Any]) -> str:
    data = node.get("data")
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) and name.strip() else str(node.get("id"))


def _store(draft: WorkflowDraft, definition: Json, *, relayout: bool = False) -> None:
    draft.definition = apply_layout(definition) if relayout else definition
    db.session.flush()


def update_node(draft: WorkflowDraft, node_id: str, data: Json) -> None:
    definition = copy.deepcopy(draft.definition)
    _find_node(definition, node_id)["data"] = data
    _store(draft, definition)


def update_trigger(draft: WorkflowDraft, node_id: str, data: Json, trigger: Json) -> None:
    definition = copy.deepcopy(draft.definition)
    node = _find_node(definition, node_id)
    if node.get("type") != NodeType.TRIGGER.value:
        raise InvalidInput.at("node", f"'{node_id}' is not the trigger node.")
    node["data"] = data
    definition["trigger"] = trigger
    _store(draft, definition)


RUN_LIMIT_KEYS = ("oncePerIncident", "oncePerIncidentMinutes")


def update_settings(
    draft: WorkflowDraft,
    *,
    name: str,
    description: str,
    timeout: str,
    run_limit: Mapping[str, Any] | None = None,
) -> None:
    """Name, description, time limit and (when given) the run limit, replacing the old one."""
    definition = copy.deepcopy(draft.definition)
    definition["name"] = name
    definition["description"] = description
    settings = definition.get("settings")
    new_settings = {
        **(settings if isinstance(settings, dict) else {"enabled": False}),
        "timeout": timeout,
    }
    if run_limit is not None:
        for key in RUN_LIMIT_KEYS:
            new_settings.pop(key, None)
        new_settings.update(run_limit)
    definition["settings"] = new_settings
    _store(draft, definition)


def store_credentials(
    draft: WorkflowDraft, credentials: Iterable[Credential], *, actor: User | None = None
) -> None:
    """Keep typed credentials with the draft, encrypted, until it is saved (all or none).

    Raises InvalidInput located at the credential's place in the node's data;
    the message never contains the value.
    """
    credentials = list(credentials)
    for credential in credentials:
        if len(credential.value) > secret_store.MAX_SECRET_LENGTH:
            raise InvalidInput.at(
                _format(("data", *credential.loc)),
                f"A secret can be at most {secret_store.MAX_SECRET_LENGTH:,} characters.",
            )
    if credentials:
        draft.pending_secrets = {
            **(draft.pending_secrets or {}),
            **{c.secret_name: secret_store.encrypt(c.value) for c in credentials},
        }
        db.session.flush()


def pending_names(draft: WorkflowDraft) -> list[str]:
    """Secrets typed in this draft that its save will store."""
    return sorted(draft.pending_secrets or {})


def _unique_id(taken: set[str], base: str) -> str:
    number = 1
    while f"{base}{number}" in taken:
        number += 1
    return f"{base}{number}"


def add_node(
    draft: WorkflowDraft,
    kind: str,
    *,
    after: str,
    handle: str | None = None,
    insert: bool = False,
) -> str:
    """Add a node of ``kind`` with an edge from ``after`` (on a condition's branch).

    ``insert``: the new node goes between ``after`` and what follows it (on that
    branch, for a condition): those edges now leave the new node (from a new condition,
    on its true branch). Otherwise the new node starts a branch of its own.
    """
    if kind not in NODE_KINDS:
        raise InvalidInput.at("kind", "Choose what to add: " + ", ".join(NODE_KINDS) + ".")
    definition = copy.deepcopy(draft.definition)
    source = _find_node(definition, after, "after")
    edges = _edges(definition)
    node_type, data = NODE_KINDS[kind]
    is_condition = source.get("type") == NodeType.CONDITION.value
    following = [
        e
        for e in edges
        if e.get("source") == after and (not is_condition or e.get("sourceHandle") == handle)
    ]
    if insert and following:
        if is_condition and handle not in HANDLES:
            raise InvalidInput.at("handle", "Choose the branch: if true or if false.")
        branch = handle if is_condition else None
        edges = [e for e in edges if e not in following]
    else:
        branch = _branch(source, handle, edges, "handle")
    node_id = _unique_id({str(n.get("id")) for n in _nodes(definition)}, f"{kind}_")
    definition["nodes"] = [
        *_nodes(definition),
        {
            "id": node_id,
            "type": node_type,
            "position": {"x": 0, "y": 0},
            "data": copy.deepcopy(data),
        },
    ]
    edges = [*edges, _edge(edges, after, node_id, branch)]
    if insert:
        onward = "true" if node_type == NodeType.CONDITION.value else None
        for old in following:
            edges = [*edges, _edge(edges, node_id, str(old.get("target")), onward)]
    definition["edges"] = edges
    _store(draft, definition, relayout=True)
    return node_id


def _branch(
    source: Mapping[str, Any], handle: str | None, edges: list[Json], loc: str
) -> str | None:
    """The handle an edge from ``source`` takes: a free branch of a condition, else none."""
    if source.get("type") != NodeType.CONDITION.value:
        return None
    if handle not in HANDLES:
        raise InvalidInput.at(loc, "Choose the branch: if true or if false.")
    for edge in edges:
        if edge.get("source") == source.get("id") and edge.get("sourceHandle") == handle:
            raise InvalidInput.at(
                loc,
                f"The '{handle}' branch of '{_label(source)}' is already connected; "
                "remove that edge first or choose the other branch.",
            )
    return handle


def _edge(edges: list[Json], source: str, target: str, handle: str | None) -> Json:
    edge: Json = {
        "id": _unique_id({str(e.get("id")) for e in edges}, "e"),
        "source": source,
        "target": target,
    }
    if handle is not None:
        edge["sourceHandle"] = handle
    return edge


def remove_node(draft: WorkflowDraft, node_id: str) -> None:
    """Remove a node and every edge that touches it."""
    definition = copy.deepcopy(draft.definition)
    node = _find_node(definition, node_id)
    if node.get("type") == NodeType.TRIGGER.value:
        raise InvalidInput.at(
            "node", "The trigger cannot be removed; every workflow starts with one."
        )
    definition["nodes"] = [n for n in _nodes(definition) if n.get("id") != node_id]
    definition["edges"] = [
        e for e in _edges(definition) if node_id not in (e.get("source"), e.get("target"))
    ]
    _store(draft, definition, relayout=True)


def add_edge(draft: WorkflowDraft, source_id: str, target_id: str, handle: str | None) -> str:
    """Connect two nodes; refuses edges the schema would reject."""
    if not target_id:
        raise InvalidInput.at("target", "Choose the node the edge leads to.")
    definition = copy.deepcopy(draft.definition)
    source = _find_node(definition, source_id, "source")
    target = _find_node(definition, target_id, "target")
    edges = _edges(definition)
    if source_id == target_id:
        raise InvalidInput.at("target", "An edge cannot connect a node to itself.")
    if target.get("type") == NodeType.TRIGGER.value:
        raise InvalidInput.at(
            "target", "The trigger starts the workflow; no edge may lead into it."
        )
    branch = _branch(source, handle, edges, "handle")
    for edge in edges:
        if (edge.get("source"), edge.get("target"), edge.get("sourceHandle")) == (
            source_id,
            target_id,
            branch,
        ):
            raise InvalidInput.at("target", "These two nodes are already connected.")
    if source_id in _reachable_from(target_id, edges):
        raise InvalidInput.at(
            "target",
            f"'{_label(target)}' already leads to '{_label(source)}'; this edge would make a loop.",
        )
    edge = _edge(edges, source_id, target_id, branch)
    definition["edges"] = [*edges, edge]
    _store(draft, definition, relayout=True)
    return str(edge["id"])


def edge_targets(definition: Mapping[str, Any], source_id: str) -> list[str]:
    """The nodes an edge from ``source_id`` may lead to: not itself, not the trigger, not
    one it already leads to, and none that leads back to it (a loop)."""
    edges = _edges(definition)
    taken = {e.get("target") for e in edges if e.get("source") == source_id}
    return [
        str(n.get("id"))
        for n in _nodes(definition)
        if n.get("id") != source_id
        and n.get("type") != NodeType.TRIGGER.value
        and n.get("id") not in taken
        and source_id not in _reachable_from(str(n.get("id")), edges)
    ]


def _reachable_from(start: str, edges: list[Json]) -> set[str]:
    successors: dict[Any, list[Any]] = {}
    for edge in edges:
        successors.setdefault(edge.get("source"), []).append(edge.get("target"))
    seen = {start}
    stack = [start]
    while stack:
        for target in successors.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def remove_edge(draft: WorkflowDraft, edge_id: str) -> None:
    definition = copy.deepcopy(draft.definition)
    edges = _edges(definition)
    kept = [e for e in edges if e.get("id") != edge_id]
    if len(kept) == len(edges):
        raise InvalidInput.at(
            "edge", "That edge is no longer in your draft (removed in another tab?)."
        )
    definition["edges"] = kept
    _store(draft, definition, relayout=True)


# --- what is wrong -----------------------------------------------------------------

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


def _format(loc: Loc) -> str:
    return format_loc(loc)


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
    nodes = _nodes(definition)
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


def _trigger_id(definition: Mapping[str, Any]) -> str | None:
    for node in _nodes(definition):
        if node.get("type") == NodeType.TRIGGER.value and isinstance(node.get("id"), str):
            return str(node["id"])
    return None


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
    trigger_id = _trigger_id(definition)
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

    trigger_id = _trigger_id(definition)
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
    trigger_id = _trigger_id(definition)
    problems = []
    for index, node in enumerate(_nodes(definition)):
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
    for node in _nodes(definition):
        data = node.get("data")
        if not _is_action(node) or not isinstance(data, Mapping):
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
                users.setdefault(name, []).append(_label(node))
    return sorted(users.items())


# --- variables -----------------------------------------------------------------------

_CONTEXT_MODELS: dict[str, type[BaseModel]] = {
    "incident": IncidentContext,
    "assignee": AssigneeContext,
    "team": TeamContext,
    "workflow": WorkflowContext,
}
CONTEXT_FIELDS: dict[str, list[str]] = {
    root: [info.alias or name for name, info in model.model_fields.items()]
    for root, model in _CONTEXT_MODELS.items()
}
FAILURE_FIELDS = [info.alias or name for name, info in FailureContext.model_fields.items()]
CONTEXT_FIELDS["incident"].append(PREVIOUS_FIELD)

#: How many earlier workflows' steps the variable list offers under ``incident.previous``.
MAX_PREVIOUS_SOURCES = 40


def previous_sources(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(workflow name, node id, node name) of the action steps whose results a run of
    ``workflow`` can read as ``incident.previous[...]``: the workflows (not templates)
    that can run on the same incidents — this team's, and global ones — itself included."""
    scope = sa.or_(Workflow.team_id.is_(None), Workflow.team_id == workflow.team_id)
    rows = db.session.execute(
        sa.select(Workflow.name, Workflow.definition)
        .where(Workflow.is_template.is_(False), scope if workflow.team_id else sa.true())
        .order_by(Workflow.name)
        .limit(MAX_PREVIOUS_SOURCES)
    )
    found: list[tuple[str, str, str]] = []
    for name, definition in rows:
        for node in _nodes(definition if isinstance(definition, Mapping) else {}):
            if _is_action(node) and isinstance(node.get("id"), str):
                found.append((name, node["id"], _label(node)))
    return found


@dataclass(frozen=True)
class Variables:
    """What a node's templates can use."""

    context: dict[str, list[str]]
    steps: list[tuple[str, str]]  # (node id, name) of actions that always run before
    secrets: list[str]
    secrets_allowed: bool
    #: node id -> the fields of its result (the action type's RESULT_SHAPE)
    step_shapes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (workflow name, node id, node name) readable as incident.previous[...]
    previous: list[tuple[str, str, str]] = field(default_factory=list)

    @staticmethod
    def previous_expression(workflow_name: str, node_id: str) -> str:
        quoted = json.dumps(workflow_name, ensure_ascii=False)
        return "{{ incident.previous[" + quoted + "][" + json.dumps(node_id) + "].result }}"

    def step_expression(self, node_id: str, result_field: str | None = None) -> str:
        return "{{ " + self.step_path(node_id, result_field) + " }}"

    def step_path(self, node_id: str, result_field: str | None = None) -> str:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node_id):
            path = "steps." + node_id + ".result"
        else:
            path = 'steps["' + node_id + '"].result'
        return f"{path}.{result_field}" if result_field else path

    def paths(self) -> list[str]:
        """Every variable a template here can use, as typed between ``{{`` and ``}}``."""
        found = [f"{root}.{name}" for root, names in self.context.items() for name in names]
        for step_id, _name in self.steps:
            found.append(self.step_path(step_id))
            found += [self.step_path(step_id, key) for key in self.step_shapes.get(step_id, {})]
        for workflow_name, node_id, _name in self.previous:
            found.append(self.previous_expression(workflow_name, node_id)[3:-3])
        if self.secrets_allowed:
            found += [f"secrets.{name}" for name in self.secrets]
        return found


def _runs_before(definition: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """always_runs_before on the draft's graph alone, even while other fields are invalid."""
    nodes = [n for n in _nodes(definition) if isinstance(n.get("id"), str)]
    ids = {n["id"] for n in nodes}
    # Only ids, node kinds and edge ends matter here: build the models unvalidated.
    built: list[Any] = []
    for n in nodes:
        model = TriggerNode if n.get("type") == NodeType.TRIGGER.value else DelayNode
        built.append(model.model_construct(**{"id": n["id"]}))
    edges = [
        WorkflowEdge.model_construct(id=str(e.get("id")), source=e["source"], target=e["target"])
        for e in _edges(definition)
        if e.get("source") in ids and e.get("target") in ids
    ]
    graph_only: dict[str, Any] = {"nodes": built, "edges": edges}
    try:
        return always_runs_before(WorkflowDefinition.model_construct(**graph_only))
    except ValueError:  # no trigger, or a cycle: nothing is certain to run before
        return {}


def _is_action(node: Mapping[str, Any]) -> bool:
    return node.get("type") == NodeType.ACTION.value


def _issue_action(node: Mapping[str, Any]) -> bool:
    data = node.get("data")
    return isinstance(data, Mapping) and data.get("actionType") in ("jira", "linear")


def variables_for(
    definition: Mapping[str, Any],
    node_id: str,
    secret_names: Iterable[str],
    runs_before: Mapping[str, frozenset[str]] | None = None,
    previous: list[tuple[str, str, str]] | None = None,
) -> Variables:
    runs_before = _runs_before(definition) if runs_before is None else runs_before
    earlier = runs_before.get(node_id, frozenset())
    node = next((n for n in _nodes(definition) if n.get("id") == node_id), {})
    from app.engine.actions import RESULT_SHAPES

    trigger = definition.get("trigger")
    failed_trigger = (
        isinstance(trigger, Mapping) and trigger.get("type") == TriggerType.WORKFLOW_FAILED.value
    )
    steps = [n for n in _nodes(definition) if n.get("id") in earlier and _is_action(n)]
    shapes = {}
    for step in steps:
        data = step.get("data")
        kind = data.get("actionType") if isinstance(data, Mapping) else None
        shapes[str(step["id"])] = RESULT_SHAPES.get(str(kind), {})
    return Variables(
        # A failure workflow also sees the failed run.
        context=CONTEXT_FIELDS | {"failure": FAILURE_FIELDS} if failed_trigger else CONTEXT_FIELDS,
        steps=[(str(n["id"]), _label(n)) for n in steps],
        secrets=sorted(secret_names),
        secrets_allowed=not _issue_action(node),
        step_shapes=shapes,
        previous=previous or [],
    )


def unknown_references(source: str, variables: Variables) -> list[tuple[str, bool]]:
    """(message, only a warning) for each variable in ``source`` that does not exist."""
    if len(source) > MAX_BODY_LENGTH:
        # No field holds more; reading it would only keep the request busy.
        return [
            (
                f"This is longer than {MAX_BODY_LENGTH:,} characters, "
                "more than any field may hold.",
                False,
            )
        ]
    try:
        references = template_references(source)
    except TemplateSyntaxProblem as problem:
        return [(problem.message, False)]
    found: list[tuple[str, bool]] = []
    steps = {step_id for step_id, _name in variables.steps}
    for reference in references:
        root = reference[0]
        if root in variables.context:
            fields = variables.context[root]
            if len(reference) > 1 and reference[1] not in fields:
                found.append(
                    (
                        f"'{root}' has no field '{reference[1]}'; available: "
                        f"{', '.join(sorted(fields))}.",
                        False,
                    )
                )
        elif root == "steps" and len(reference) > 3 and reference[1] in steps:
            shape = variables.step_shapes.get(reference[1]) or {}
            if reference[2] == "result" and shape and reference[3] not in shape:
                found.append(
                    (
                        f"steps.{reference[1]}.result has no field '{reference[3]}'; "
                        f"available: {', '.join(shape)}.",
                        False,
                    )
                )
        elif root == "steps":
            if len(reference) == 1 or reference[1] not in steps:
                step = reference[1] if len(reference) > 1 else "<nodeId>"
                usable = ", ".join(sorted(steps)) or "none yet"
                found.append(
                    (
                        f"Unknown variable steps.{step}: only actions that always run before "
                        f"this node can be used (here: {usable}).",
                        False,
                    )
                )
        elif root == "secrets":
            if not variables.secrets_allowed:
                found.append(
                    (
                        "Secrets cannot be used here: the text is visible to everyone who can "
                        "read the issue.",
                        False,
                    )
                )
            elif len(reference) == 1:
                found.append(("Refer to a secret by name, as in {{ secrets.<name> }}.", False))
            elif reference[1] not in variables.secrets:
                found.append(
                    (
                        f"This workflow has no secret named '{reference[1]}' yet; add it "
                        "before enabling the workflow.",
                        True,
                    )
                )
        else:
            found.append(
                (
                    f"Unknown variable '{root}'; templates can use incident, assignee, team, "
                    "workflow, steps and secrets (and failure, with a 'workflow_failed' "
                    "trigger).",
                    False,
                )
            )
    return found


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
    runs_before = _runs_before(definition)
    nodes = _nodes(definition)
    problems = []
    for index, node in enumerate(nodes):
        data = node.get("data")
        if not _is_action(node) or not isinstance(data, Mapping):
            continue
        node_id = str(node.get("id"))
        variables = variables_for(definition, node_id, secret_names, runs_before)
        for rel, source in _template_fields(data):
            for message, warning in unknown_references(source, variables):
                problems.append(
                    EditorProblem(
                        loc=_format(("nodes", index, *rel)),
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
    trigger_id = _trigger_id(definition)
    items = []
    for placeholder in unfilled_placeholders(definition):
        section, node_id, rel, _edge = _place(definition, parse_loc(placeholder.loc), trigger_id)
        items.append(FillItem(placeholder.loc, placeholder.hint, section, node_id, rel))
    return items


# --- comparing with the current version ------------------------------------------------


def differences(draft: Mapping[str, Any], current: Mapping[str, Any], version: int) -> list[str]:
    """What differs between a draft and the current version, in a few plain lines."""
    lines: list[str] = []
    mine = {str(n.get("id")): n for n in _nodes(draft)}
    theirs = {str(n.get("id")): n for n in _nodes(current)}
    for node_id, node in mine.items():
        if node_id not in theirs:
            lines.append(f"Your draft has '{_label(node)}', which v{version} does not.")
        elif node.get("data") != theirs[node_id].get("data"):
            lines.append(f"'{_label(node)}' differs between your draft and v{version}.")
    for node_id, node in theirs.items():
        if node_id not in mine:
            lines.append(f"v{version} has '{_label(node)}', which your draft does not.")

    def connections(definition: Mapping[str, Any]) -> set[tuple[Any, Any, Any]]:
        return {
            (e.get("source"), e.get("target"), e.get("sourceHandle")) for e in _edges(definition)
        }

    if connections(draft) != connections(current):
        lines.append(f"The connections between nodes differ from v{version}.")
    if draft.get("trigger") != current.get("trigger"):
        lines.append(f"The trigger settings differ from v{version}.")
    if _without_enabled({k: draft.get(k) for k in ("name", "description", "settings")}) != (
        _without_enabled({k: current.get(k) for k in ("name", "description", "settings")})
    ):
        lines.append(f"The name, description or time limit differ from v{version}.")
    return lines
