"""The rules a definition must satisfy beyond its fields: input bounds checked before
any copy, and whole-definition rules that need the graph."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic_core import InitErrorDetails

from app.definition.context import CONTEXT_FIELDS, FAILURE_FIELDS, PREVIOUS_FIELD
from app.definition.graph import find_dominators, reachable_from
from app.definition.limits import (
    IMPLICIT_SECRETS,
    MAX_AGE_THRESHOLD_MINUTES,
    MAX_DEFINITION_DEPTH,
    MAX_DEFINITION_ITEMS,
    MAX_DEFINITION_TEXT,
    SECRET_NAME_RE,
    SECRET_REFERENCE_RE,
    TEMPLATE_ROOTS,
    Loc,
)
from app.definition.messages import clip, error_detail
from app.definition.models import (
    ActionNode,
    BasicAuth,
    BearerAuth,
    ConditionNode,
    CustomHeaderAuth,
    JiraAction,
    JiraCommentConfig,
    JiraConfig,
    LinearAction,
    LinearConfig,
    OAuth2Auth,
    TriggerConfig,
    TriggerNode,
    WebhookAction,
    WorkflowDefinition,
    WorkflowSettings,
)
from app.definition.templating import TemplateSyntaxProblem, template_references
from app.workflows.enums import TriggerType


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Remove the NUL character (\\u0000); it cannot be stored."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "The text contains invalid Unicode (an unpaired surrogate); retype it."
    return None


def input_problems(data: dict[Any, Any]) -> list[InitErrorDetails]:
    """Bound the size, depth and text of the raw input before validating it."""
    problems: list[InitErrorDetails] = []
    stack: list[tuple[object, Loc, int]] = [(data, (), 1)]
    items = 1
    text = 0
    while stack and len(problems) < 20:
        value, loc, depth = stack.pop()
        if isinstance(value, str):
            text += len(value)
            problem = _text_problem(value)
            if problem:
                problems.append(error_detail(loc, "invalid_text", problem, clip(value)))
        elif isinstance(value, dict | list | tuple):
            if depth > MAX_DEFINITION_DEPTH:
                problems.append(
                    error_detail(
                        loc,
                        "too_deep",
                        f"Values are nested more than {MAX_DEFINITION_DEPTH} levels "
                        "deep; a definition is never nested that deeply.",
                        type(value).__name__,
                    )
                )
                continue
            children = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in children:
                items += 1
                if items > MAX_DEFINITION_ITEMS:
                    return [
                        error_detail(
                            (),
                            "too_large",
                            f"The definition has more than {MAX_DEFINITION_ITEMS:,} "
                            "values; split the workflow.",
                            items,
                        )
                    ]
                if isinstance(key, str):
                    text += len(key)
                    problem = _text_problem(key)
                    if problem:
                        problems.append(
                            error_detail((*loc, key), "invalid_text", problem, clip(key))
                        )
                key_loc = key if isinstance(key, str | int) else f"<{type(key).__name__}>"
                stack.append((item, (*loc, key_loc), depth + 1))
        if text > MAX_DEFINITION_TEXT:
            return [
                error_detail(
                    (),
                    "too_large",
                    f"The definition holds more than {MAX_DEFINITION_TEXT:,} "
                    "characters of text; shorten templates or split the workflow.",
                    text,
                )
            ]
    return problems


# --- Whole-definition rules ----------------------------------------------

_FieldKind = Literal["template", "issue_template", "credential"]


class _Problems:
    def __init__(self) -> None:
        self.details: list[InitErrorDetails] = []
        self._seen: set[tuple[Loc, str]] = set()

    def add(self, loc: Loc, code: str, message: str, value: Any = None) -> None:
        if (loc, message) not in self._seen:
            self._seen.add((loc, message))
            self.details.append(error_detail(loc, code, message, value))


def _text_fields(
    data: WebhookAction | JiraAction | LinearAction,
) -> Iterator[tuple[Loc, str, _FieldKind]]:
    """Every template and credential field of an action, with its location
    relative to the node's ``data`` (wire names)."""
    if isinstance(data, WebhookAction):
        config = data.config
        yield ("config", "url"), config.url, "template"
        for name, value in config.headers.items():
            yield ("config", "headers", name), value, "template"
        yield ("config", "body"), config.body, "template"
        auth = config.auth
        if isinstance(auth, BearerAuth):
            yield ("config", "auth", "token"), auth.token, "credential"
        elif isinstance(auth, BasicAuth):
            yield ("config", "auth", "username"), auth.username, "template"
            yield ("config", "auth", "password"), auth.password, "credential"
        elif isinstance(auth, OAuth2Auth):
            yield ("config", "auth", "clientId"), auth.client_id, "template"
            yield ("config", "auth", "clientSecret"), auth.client_secret, "credential"
        elif isinstance(auth, CustomHeaderAuth):
            for name, value in auth.custom_headers.items():
                yield ("config", "auth", "customHeaders", name), value, "credential"
    elif isinstance(data, JiraAction):
        jira = data.config
        if isinstance(jira, JiraConfig):
            yield ("config", "summary"), jira.summary, "issue_template"
            yield ("config", "description"), jira.description, "issue_template"
        else:
            yield ("config", "issueKey"), jira.issue_key, "issue_template"
            if isinstance(jira, JiraCommentConfig):
                yield ("config", "body"), jira.body, "issue_template"
    else:
        linear = data.config
        if isinstance(linear, LinearConfig):
            yield ("config", "title"), linear.title, "issue_template"
            yield ("config", "description"), linear.description, "issue_template"
        else:
            yield ("config", "issueId"), linear.issue_id, "issue_template"


def definition_problems(
    defn: WorkflowDefinition, secret_names: frozenset[str] | None
) -> list[InitErrorDetails]:
    problems = _Problems()
    nodes = defn.nodes

    index_of: dict[str, int] = {}
    duplicate_nodes: set[int] = set()
    for i, node in enumerate(nodes):
        if node.id in index_of:
            duplicate_nodes.add(i)
            problems.add(
                ("nodes", i, "id"),
                "duplicate_id",
                f"Node id '{node.id}' is already used by nodes[{index_of[node.id]}]; "
                "node ids must be unique.",
                node.id,
            )
        else:
            index_of[node.id] = i

    triggers = [i for i, node in enumerate(nodes) if isinstance(node, TriggerNode)]
    if not triggers:
        problems.add(
            ("nodes",),
            "missing_trigger",
            "A workflow needs exactly one trigger node; add one.",
        )
    for i in triggers[1:]:
        problems.add(
            ("nodes", i, "type"),
            "extra_trigger",
            f"A workflow has exactly one trigger node and nodes[{triggers[0]}] is "
            "already the trigger; change this node's type or delete it.",
            "trigger",
        )
    trigger_id = nodes[triggers[0]].id if triggers else None

    pairs = _check_edges(defn, index_of, problems)
    cyclic = _check_cycles(trigger_id, list(index_of), pairs, problems)

    reached = reachable_from(trigger_id, pairs) if trigger_id is not None else None
    if reached is not None:
        for i, node in enumerate(nodes):
            if (
                node.id not in reached
                and i not in duplicate_nodes
                and not isinstance(node, TriggerNode)
            ):
                problems.add(
                    ("nodes", i),
                    "unreachable",
                    f"Node '{node.id}' cannot be reached from the trigger; connect "
                    "it with an edge or delete it.",
                    node.id,
                )

    _check_trigger(defn.trigger, problems)
    _check_run_limit(defn.settings, problems)

    runs_before: dict[str, frozenset[str]] | None = None
    if trigger_id is not None and len(triggers) == 1 and not cyclic and not duplicate_nodes:
        runs_before = find_dominators(trigger_id, list(index_of), pairs)
    _check_actions(defn, index_of, runs_before, secret_names, problems)
    return problems.details


def _check_edges(
    defn: WorkflowDefinition, index_of: Mapping[str, int], problems: _Problems
) -> list[tuple[int, str, str]]:
    """Check edges one by one; return (index, source, target) of the sound ones."""
    nodes = defn.nodes
    sound: list[tuple[int, str, str]] = []
    edge_index: dict[str, int] = {}
    branch_edge: dict[tuple[str, str], int] = {}
    connection: dict[tuple[str, str, str | None], int] = {}
    for j, edge in enumerate(defn.edges):
        if edge.id in edge_index:
            problems.add(
                ("edges", j, "id"),
                "duplicate_id",
                f"Edge id '{edge.id}' is already used by edges[{edge_index[edge.id]}]; "
                "edge ids must be unique.",
                edge.id,
            )
        else:
            edge_index[edge.id] = j
        ok = True
        for end in ("source", "target"):
            node_id = getattr(edge, end)
            if node_id not in index_of:
                ok = False
                problems.add(
                    ("edges", j, end),
                    "unknown_node",
                    f"No node has id '{node_id}'; connect the edge to an existing node.",
                    node_id,
                )
        if edge.source == edge.target:
            ok = False
            problems.add(
                ("edges", j, "target"),
                "self_loop",
                "An edge cannot connect a node to itself.",
                edge.target,
            )
        elif edge.target in index_of and isinstance(nodes[index_of[edge.target]], TriggerNode):
            ok = False
            problems.add(
                ("edges", j, "target"),
                "edge_into_trigger",
                "The trigger node starts the workflow; no edge may lead into it.",
                edge.target,
            )
        if edge.source in index_of:
            source = nodes[index_of[edge.source]]
            handle = edge.source_handle
            if isinstance(source, ConditionNode):
                if handle is None:
                    problems.add(
                        ("edges", j, "sourceHandle"),
                        "missing_handle",
                        f"Edges leaving condition '{source.id}' need sourceHandle "
                        "'true' or 'false' (the branch they follow).",
                    )
                elif (source.id, handle) in branch_edge:
                    problems.add(
                        ("edges", j, "sourceHandle"),
                        "duplicate_handle",
                        f"Condition '{source.id}' already has a '{handle}' edge "
                        f"(edges[{branch_edge[(source.id, handle)]}]); each branch "
                        "has one edge.",
                        handle,
                    )
                else:
                    branch_edge[(source.id, handle)] = j
            elif handle is not None:
                problems.add(
                    ("edges", j, "sourceHandle"),
                    "unexpected_handle",
                    f"Only edges leaving a condition node have a sourceHandle; "
                    f"'{source.id}' is a {source.type} node, so remove it.",
                    handle,
                )
        if ok:
            key = (edge.source, edge.target, edge.source_handle)
            if key in connection:
                problems.add(
                    ("edges", j, "target"),
                    "duplicate_edge",
                    f"edges[{connection[key]}] already connects '{edge.source}' to "
                    f"'{edge.target}'; delete this edge.",
                    edge.target,
                )
            else:
                connection[key] = j
                sound.append((j, edge.source, edge.target))
    return sound


def _check_cycles(
    trigger_id: str | None,
    node_ids: list[str],
    edges: list[tuple[int, str, str]],
    problems: _Problems,
) -> bool:
    """Report every edge that closes a cycle (iterative depth-first search)."""
    successors: dict[str, list[tuple[int, str]]] = {node_id: [] for node_id in node_ids}
    for j, source, target in edges:
        successors[source].append((j, target))
    finished: set[str] = set()
    cyclic = False
    starts = ([trigger_id] if trigger_id is not None else []) + node_ids
    for start in starts:
        if start in finished:
            continue
        path = [start]
        on_path = {start: 0}
        pending = [iter(successors[start])]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                done = path.pop()
                del on_path[done]
                finished.add(done)
                pending.pop()
                continue
            j, target = step
            if target in on_path:
                cyclic = True
                loop = [*path[on_path[target] :], target]
                problems.add(
                    ("edges", j, "target"),
                    "cycle",
                    f"This edge closes a cycle ({' -> '.join(loop)}); a workflow "
                    "cannot loop back to an earlier step.",
                    target,
                )
            elif target not in finished:
                on_path[target] = len(path)
                path.append(target)
                pending.append(iter(successors[target]))
    return cyclic


def _check_run_limit(settings: WorkflowSettings, problems: _Problems) -> None:
    if settings.once_per_incident and settings.once_per_incident_minutes is not None:
        problems.add(
            ("settings", "oncePerIncidentMinutes"),
            "conflicting_settings",
            "Choose one limit: oncePerIncident (one run per incident, ever) or "
            "oncePerIncidentMinutes (one run per incident per N minutes), not both.",
            settings.once_per_incident_minutes,
        )


def _check_trigger(trigger: TriggerConfig, problems: _Problems) -> None:
    kind = trigger.type
    if kind == TriggerType.AGE:
        if trigger.age_threshold_minutes is None:
            problems.add(
                ("trigger", "ageThresholdMinutes"),
                "missing_setting",
                f"An 'age' trigger needs ageThresholdMinutes (1 to "
                f"{MAX_AGE_THRESHOLD_MINUTES} minutes).",
            )
    elif trigger.age_threshold_minutes is not None:
        problems.add(
            ("trigger", "ageThresholdMinutes"),
            "not_applicable",
            f"Only 'age' triggers use ageThresholdMinutes; remove it from this "
            f"'{kind.value}' trigger.",
            trigger.age_threshold_minutes,
        )
    for key, value in (
        ("workflowIds", trigger.workflow_ids),
        ("minFailures", trigger.min_failures),
    ):
        if value is not None and kind != TriggerType.WORKFLOW_FAILED:
            problems.add(
                ("trigger", key),
                "not_applicable",
                f"Only 'workflow_failed' triggers use {key}; remove it from this "
                f"'{kind.value}' trigger.",
            )
    transition = trigger.state_transition
    if kind == TriggerType.STATE_CHANGED:
        if transition is None:
            problems.add(
                ("trigger", "stateTransition"),
                "missing_setting",
                "A 'state_changed' trigger needs stateTransition with 'to' (and "
                "optionally 'from').",
            )
        elif transition.from_ == transition.to:
            problems.add(
                ("trigger", "stateTransition", "to"),
                "same_state",
                f"'from' and 'to' are both {transition.to.value}; a state change "
                "needs two different states.",
                transition.to.value,
            )
    elif transition is not None:
        problems.add(
            ("trigger", "stateTransition"),
            "not_applicable",
            f"Only 'state_changed' triggers use stateTransition; remove it from "
            f"this '{kind.value}' trigger.",
        )
    first_use: dict[str, int] = {}
    for i, condition in enumerate(trigger.conditions):
        if condition.field in first_use:
            problems.add(
                ("trigger", "conditions", i, "field"),
                "duplicate_condition",
                f"conditions[{first_use[condition.field]}] already checks "
                f"'{condition.field}'; all conditions must match, so keep one.",
                condition.field,
            )
        else:
            first_use[condition.field] = i


def _check_actions(
    defn: WorkflowDefinition,
    index_of: Mapping[str, int],
    runs_before: Mapping[str, frozenset[str]] | None,
    secret_names: frozenset[str] | None,
    problems: _Problems,
) -> None:
    for i, node in enumerate(defn.nodes):
        if not isinstance(node, ActionNode):
            continue
        data = node.data
        base: Loc = ("nodes", i, "data")
        if secret_names is not None:
            missing = [
                name
                for name in IMPLICIT_SECRETS.get(data.action_type, ())
                if name not in secret_names
            ]
            if missing:
                problems.add(
                    base,
                    "missing_secret",
                    f"{data.action_type.value.capitalize()} actions need the "
                    f"workflow secret(s) {', '.join(missing)}; add them to the "
                    "workflow's secrets.",
                )
        if isinstance(data, WebhookAction) and isinstance(data.config.auth, CustomHeaderAuth):
            plain = {name.lower() for name in data.config.headers}
            for name in data.config.auth.custom_headers:
                if name.lower() in plain:
                    problems.add(
                        (*base, "config", "auth", "customHeaders", name),
                        "duplicate_header",
                        f"The '{name}' header is also set in headers; set it in one place.",
                        name,
                    )
        for rel, source, kind in _text_fields(data):
            loc = (*base, *rel)
            if kind == "credential":
                match = SECRET_REFERENCE_RE.fullmatch(source)
                if match and secret_names is not None:
                    _check_secret_name(match.group(1), secret_names, loc, problems)
                continue
            try:
                references = template_references(source)
            except TemplateSyntaxProblem as exc:
                problems.add(loc, "template_syntax", exc.message, clip(source))
                continue
            for reference in references:
                _check_reference(
                    reference,
                    node.id,
                    kind,
                    defn,
                    index_of,
                    runs_before,
                    secret_names,
                    loc,
                    problems,
                )


def _check_secret_name(
    name: str, secret_names: frozenset[str], loc: Loc, problems: _Problems
) -> None:
    if name not in secret_names:
        problems.add(
            loc,
            "unknown_secret",
            f"This workflow has no secret named '{name}'; add it to the workflow's "
            "secrets or correct the name.",
            name,
        )


def _check_reference(
    reference: tuple[str, ...],
    node_id: str,
    kind: _FieldKind,
    defn: WorkflowDefinition,
    index_of: Mapping[str, int],
    runs_before: Mapping[str, frozenset[str]] | None,
    secret_names: frozenset[str] | None,
    loc: Loc,
    problems: _Problems,
) -> None:
    root = reference[0]
    if root in CONTEXT_FIELDS:
        fields = CONTEXT_FIELDS[root]
        if len(reference) > 1 and reference[1] not in fields:
            problems.add(
                loc,
                "unknown_variable",
                f"'{root}' has no field '{clip(reference[1])}'; available: "
                f"{', '.join(sorted(fields))}.",
                ".".join(reference[:2]),
            )
    elif root == "steps":
        if len(reference) == 1:
            problems.add(
                loc,
                "unknown_variable",
                "Refer to an earlier step by its node id, as in {{ steps.<nodeId>.result }}.",
                root,
            )
            return
        step = reference[1]
        if step == node_id:
            message = "A step cannot use its own result."
        elif step not in index_of:
            message = f"No node has id '{clip(step)}', so steps.{clip(step)} does not exist."
            if any(other.startswith(f"{step}-") for other in index_of):
                # `steps.my-node` reads as `steps.my - node` in Jinja.
                message += ' Write ids that contain "-" as steps["node-id"].'

        elif not isinstance(defn.nodes[index_of[step]], ActionNode):
            message = (
                f"'{step}' is a {defn.nodes[index_of[step]].type} node; only action "
                "nodes have results."
            )
        elif (
            runs_before is not None and node_id in runs_before and step not in runs_before[node_id]
        ):
            message = (
                f"Step '{step}' does not run before this node on every path from "
                "the trigger, so its result may be missing; use a step that always "
                "runs earlier."
            )
        else:
            return
        problems.add(loc, "unknown_step", message, step)
    elif root == "failure":
        if defn.trigger.type != TriggerType.WORKFLOW_FAILED:
            problems.add(
                loc,
                "unknown_variable",
                "Only workflows with a 'workflow_failed' trigger have 'failure'.",
                root,
            )
        elif len(reference) > 1 and reference[1] not in FAILURE_FIELDS:
            problems.add(
                loc,
                "unknown_variable",
                f"'failure' has no field '{clip(reference[1])}'; available: "
                f"{', '.join(sorted(FAILURE_FIELDS))}.",
                ".".join(reference[:2]),
            )
    elif root == "secrets":
        if kind == "issue_template":
            problems.add(
                loc,
                "secret_not_allowed",
                "Secrets cannot be used here: the text is visible to everyone who "
                "can read the issue.",
                root,
            )
        elif len(reference) == 1:
            problems.add(
                loc,
                "unknown_secret",
                "Refer to a secret by name, as in {{ secrets.<name> }}.",
                root,
            )
        elif not SECRET_NAME_RE.fullmatch(reference[1]):
            problems.add(
                loc,
                "unknown_secret",
                f"'{clip(reference[1])}' is not a valid secret name; names are "
                "lowercase letters, digits and '_', starting with a letter.",
                reference[1],
            )
        elif secret_names is not None:
            _check_secret_name(reference[1], secret_names, loc, problems)
    else:
        problems.add(
            loc,
            "unknown_variable",
            f"Unknown variable '{clip(root)}'; templates can use {', '.join(TEMPLATE_ROOTS)}.",
            root,
        )


def referenced_secrets(defn: WorkflowDefinition) -> dict[str, list[str]]:
    """Secret name -> ids of the nodes that use it, sorted by name.

    Includes the secrets Jira and Linear actions use implicitly.
    """
    users: dict[str, list[str]] = {}
    for node in defn.nodes:
        if not isinstance(node, ActionNode):
            continue
        names: list[str] = list(IMPLICIT_SECRETS.get(node.data.action_type, ()))
        for _loc, source, kind in _text_fields(node.data):
            if kind == "credential":
                match = SECRET_REFERENCE_RE.fullmatch(source)
                if match:
                    names.append(match.group(1))
                continue
            try:
                references = template_references(source)
            except TemplateSyntaxProblem:
                continue
            names.extend(ref[1] for ref in references if len(ref) > 1 and ref[0] == "secrets")
        for name in names:
            node_ids = users.setdefault(name, [])
            if node.id not in node_ids:
                node_ids.append(node.id)
    return dict(sorted(users.items()))


def reads_previous(defn: WorkflowDefinition) -> bool:
    """Whether any action template reads ``incident.previous`` (earlier runs' results)."""
    for node in defn.nodes:
        if not isinstance(node, ActionNode):
            continue
        for _loc, source, kind in _text_fields(node.data):
            if kind == "credential":
                continue
            try:
                references = template_references(source)
            except TemplateSyntaxProblem:
                continue
            if any(ref[:2] == ("incident", PREVIOUS_FIELD) for ref in references):
                return True
    return False
