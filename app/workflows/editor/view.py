"""What the editor page shows: ``EditorView``, built from the workflow, the user's draft,
the selected node and whatever forms a request brings back (with their errors), with one
named part per panel. The templates get ``EditorView.context()``, unpacked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from flask import current_app, url_for
from markupsafe import Markup
from wtforms import SelectChoice

from app.engine.outbound import AllowList
from app.errors import ServiceError
from app.workflows import secrets as secret_store
from app.workflows.drafts import checks as draft_checks
from app.workflows.drafts import edits as draft_edits
from app.workflows.drafts import store as draft_store
from app.workflows.drafts import variables as draft_variables
from app.workflows.enums import NodeType
from app.workflows.forms.base import NodeForm
from app.workflows.forms.nodes import form_class_for, node_kind
from app.workflows.forms.panels import AddEdgeForm, AddNodeForm, SaveForm, SettingsForm
from app.workflows.graph.svg import render_svg
from app.workflows.models import Workflow, WorkflowDraft

KIND_TITLES = {
    "trigger": "Trigger",
    "webhook": "Webhook",
    "jira": "Jira issue",
    "linear": "Linear issue",
    "condition": "Condition",
    "delay": "Delay",
}


# --- the draft's nodes -------------------------------------------------------------------


def nodes_of(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = definition.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def label_of(node: Mapping[str, Any]) -> str:
    data = node.get("data")
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) and name.strip() else str(node.get("id"))


def _choose_node(definition: Mapping[str, Any], wanted: str | None) -> dict[str, Any] | None:
    nodes = nodes_of(definition)
    for node in nodes:
        if node.get("id") == wanted:
            return node
    trigger = next((n for n in nodes if n.get("type") == NodeType.TRIGGER.value), None)
    return trigger or (nodes[0] if nodes else None)


def _is_condition(definition: Mapping[str, Any], node_id: str | None) -> bool:
    return any(
        n.get("id") == node_id and n.get("type") == NodeType.CONDITION.value
        for n in nodes_of(definition)
    )


def _where(node: Mapping[str, Any]) -> str:
    return f"{KIND_TITLES.get(node_kind(node), 'Node')} “{label_of(node)}”"


# --- forms, marked with what they were rendered from ------------------------------------------


def _origin_text(definition: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The node as the form shows it (JSON), posted back so edits can be merged later."""
    origin: dict[str, Any] = {"data": node.get("data")}
    if node.get("type") == NodeType.TRIGGER.value:
        origin["trigger"] = definition.get("trigger")
    return json.dumps(origin, separators=(",", ":"), sort_keys=True)


def stamp(form: Any, definition: Mapping[str, Any], node: Mapping[str, Any] | None) -> None:
    """Mark a form with the draft revision (and node content) it is rendered from."""
    form.form_revision = draft_store.revision_of(definition)
    if node is not None:
        form.form_origin = _origin_text(definition, node)


def stamp_settings(form: SettingsForm, definition: Mapping[str, Any]) -> None:
    form.form_revision = draft_store.revision_of(definition)
    form.form_origin = json.dumps(
        SettingsForm.from_definition(definition).as_dict(), separators=(",", ":")
    )


def _decorate(
    form: NodeForm, checked: draft_checks.Checked, fill: list[draft_checks.FillItem]
) -> None:
    """Errors next to their fields, and the fields still to fill in highlighted."""
    for problem in checked.for_node(form.node_id):
        enabling = problem.warning and problem.code != "internal_host"
        suffix = " (needed before the workflow can be enabled)" if enabling else ""
        form.attach(problem.rel, problem.code, problem.message + suffix)
    for item in fill:
        if item.node_id == form.node_id:
            form.mark(item.rel, item.hint)


def make_add_node_form(
    definition: Mapping[str, Any], selected: str | None, formdata: Any = None
) -> AddNodeForm:
    form = AddNodeForm(formdata=formdata)
    form.after.choices = [SelectChoice(str(n.get("id")), label_of(n)) for n in nodes_of(definition)]
    if formdata is None or not form.after.data:
        form.after.data = selected
    form.show_handle = _is_condition(definition, form.after.data)
    return form


def make_add_edge_form(
    definition: Mapping[str, Any],
    selected: str | None,
    formdata: Any = None,
    *,
    choose_target: bool = False,
) -> AddEdgeForm:
    form = AddEdgeForm(formdata=formdata)
    nodes = nodes_of(definition)
    form.source.choices = [SelectChoice(str(n.get("id")), label_of(n)) for n in nodes]
    form.target.choices = [
        SelectChoice(str(n.get("id")), label_of(n))
        for n in nodes
        if n.get("type") != NodeType.TRIGGER.value
    ]
    if formdata is None or not form.source.data:
        form.source.data = selected
    valid = draft_edits.edge_targets(definition, form.source.data or "")
    if (formdata is None or choose_target) and form.target.data not in valid:
        # Never offer an edge the draft would refuse (a self-loop, a loop, a duplicate).
        form.target.data = valid[0] if valid else None
    form.no_target = not valid
    if not valid and (formdata is None or choose_target):
        # Nothing valid to preselect: an empty choice, so the select shows no invalid edge.
        form.target.choices = [SelectChoice("", "(choose a node)"), *form.target.choices]
        form.target.data = ""
    form.show_handle = _is_condition(definition, form.source.data)
    return form


# --- the page ----------------------------------------------------------------------------------


@dataclass
class EditorView:
    """The editor page for ``workflow`` and the user's ``draft``, ``selected`` node first.

    A form given here (as the user sent it, with its errors or conflicts) is shown instead
    of a fresh one; the rest are the parts a request adds to the page: notes above the
    node form, a conflict or error in the save or readiness panels, a question to confirm.
    """

    workflow: Workflow
    draft: WorkflowDraft
    selected: str | None = None
    node_form: NodeForm | None = None
    node_notes: list[str] | None = None
    node_notice: str | None = None
    settings_form: SettingsForm | None = None
    add_node_form: AddNodeForm | None = None
    add_edge_form: AddEdgeForm | None = None
    save_form: SaveForm | None = None
    save_error: str | None = None
    conflict: str | None = None
    add_row: str | None = None
    enable_error: ServiceError | None = None
    confirm_remove: bool = False
    confirm_discard: bool = False
    focus_node: bool = False

    # -- what the draft holds and what is wrong with it -------------------------------------

    @cached_property
    def definition(self) -> dict[str, Any]:
        return self.draft.definition

    @cached_property
    def pending_secrets(self) -> list[str]:
        return draft_store.pending_names(self.draft)

    @cached_property
    def secret_names(self) -> list[str]:
        return sorted({*secret_store.secret_names(self.workflow), *self.pending_secrets})

    @cached_property
    def checked(self) -> draft_checks.Checked:
        allow = AllowList.from_config(current_app.config)
        return draft_checks.check(self.definition, self.secret_names, allow)

    @cached_property
    def fill(self) -> list[draft_checks.FillItem]:
        return draft_checks.must_fill(self.definition)

    @cached_property
    def node(self) -> dict[str, Any] | None:
        """The node shown: the one asked for, else the trigger, else the first."""
        return _choose_node(self.definition, self.selected)

    @property
    def node_id(self) -> str | None:
        return str(self.node["id"]) if self.node else None

    # -- the panels -------------------------------------------------------------------------------

    @cached_property
    def shown_node_form(self) -> NodeForm | None:
        """The node's form: the one given, or one filled from the draft with its problems."""
        form = self.node_form
        if self.node is not None and form is None:
            form = self._fresh_node_form(self.node)
            if form is not None and self.add_row in form._fields:
                form[self.add_row].append_entry()
                first_input = next(iter(form[self.add_row].entries[-1].form))
                first_input.render_kw = {"autofocus": True}
        if form is not None and self.focus_node:
            # A node was added: the keyboard continues in its form (htmx focuses autofocus).
            form.name.render_kw = {**(form.name.render_kw or {}), "autofocus": True}
        if form is not None and self.node_notes:
            form.node_errors = [*self.node_notes, *form.node_errors]
        if form is not None and self.node_notice:
            form.notice = self.node_notice
        return form

    def _fresh_node_form(self, node: Mapping[str, Any]) -> NodeForm | None:
        cls = form_class_for(node)
        if cls is None:
            return None
        form = cls.from_node(node, trigger=self.definition.get("trigger"))
        form.follow_settings()
        stamp(form, self.definition, node)
        _decorate(form, self.checked, self.fill)
        return form

    @cached_property
    def variables(self) -> draft_variables.Variables | None:
        """What the selected node's template fields may use."""
        if not self.node_id:
            return None
        return draft_variables.variables_for(self.definition, self.node_id, self.secret_names)

    @cached_property
    def shown_settings_form(self) -> SettingsForm:
        form = self.settings_form
        if form is None:
            form = SettingsForm.from_definition(self.definition)
            stamp_settings(form, self.definition)
            for problem in self.checked.settings:
                form.attach(problem.rel, problem.message)
            for item in self.fill:
                found = form.field_for(item.rel) if item.section == "settings" else None
                if found is not None:
                    found.must_fill = item.hint
        return form

    def graph(self) -> Markup:
        """The draft's picture; each node links to the page with it selected."""
        edit_base = url_for("workflows.edit", workflow_id=self.workflow.id)

        def href(nid: str) -> str:
            return f"{edit_base}?node={quote(nid)}"

        def attrs(nid: str) -> Mapping[str, str]:
            return {"hx-get": href(nid), "hx-swap": "none", "hx-push-url": "true"}

        return render_svg(
            self.definition,
            selected=self.node_id,
            node_href=href,
            node_attrs=attrs,
            problems=self.checked.node_messages(),
            title=f"{self.definition.get('name') or self.workflow.name} (draft)",
            dom_id="editor-graph",
        )

    def edges(self) -> list[dict[str, Any]]:
        """The edges panel's rows: each edge by its nodes' names, with its problems."""
        by_id = {str(n.get("id")): n for n in nodes_of(self.definition)}
        edges = []
        raw_edges = self.definition.get("edges")
        for index, edge in enumerate(raw_edges if isinstance(raw_edges, list) else []):
            if not isinstance(edge, dict):
                continue
            source, target = by_id.get(str(edge.get("source"))), by_id.get(str(edge.get("target")))
            edges.append(
                {
                    "index": index,
                    "id": edge.get("id"),
                    "source": label_of(source) if source else str(edge.get("source")),
                    "target": label_of(target) if target else str(edge.get("target")),
                    "handle": edge.get("sourceHandle"),
                    "problems": self.checked.for_edge(index),
                }
            )
        return edges

    def problem_links(self) -> list[dict[str, Any]]:
        """The readiness checklist: each problem with a link to where it is fixed."""
        by_id = {str(n.get("id")): n for n in nodes_of(self.definition)}
        base = url_for("workflows.edit", workflow_id=self.workflow.id)
        links = []
        for problem in self.checked.problems:
            href: str | None = None
            where = "The workflow"
            if problem.section == "node" and problem.node_id in by_id:
                node = by_id[problem.node_id]
                cls = form_class_for(node)
                anchor = (
                    cls.anchor_for(problem.rel, problem.code) if cls else None
                ) or "node-panel"
                href = f"{base}?node={quote(problem.node_id)}#{anchor}"
                where = _where(node)
            elif problem.section == "edge" and problem.edge_index is not None:
                href = f"#edge-{problem.edge_index}"
                where = f"Edge {problem.edge_index + 1}"
            elif problem.section == "settings":
                href = "#settings-panel"
                where = "Workflow settings"
            links.append({"problem": problem, "href": href, "where": where})
        return links

    def fill_links(self) -> list[dict[str, Any]]:
        """What the banner lists: placeholders left, then nodes the schema rejects."""
        by_id = {str(n.get("id")): n for n in nodes_of(self.definition)}
        base = url_for("workflows.edit", workflow_id=self.workflow.id)
        links = []
        listed: set[str] = set()
        for item in self.fill:
            node = by_id.get(item.node_id or "")
            if node is not None:
                cls = form_class_for(node)
                anchor = (cls.anchor_for(item.rel) if cls else None) or "node-panel"
                href = f"{base}?node={quote(str(node['id']))}#{anchor}"
                where = _where(node)
                listed.add(str(node["id"]))
            else:
                href, where = "#settings-panel", "Workflow settings"
            links.append({"href": href, "where": where, "what": item.hint})
        for node_id, message in self.checked.node_messages().items():
            node = by_id.get(node_id)
            if node is None or node_id in listed:
                continue
            links.append(
                {
                    "href": f"{base}?node={quote(node_id)}#node-panel",
                    "where": _where(node),
                    "what": message,
                }
            )
        return links

    def banner(self) -> dict[str, Any]:
        """Whether the draft is stored, differs from the saved version, or is based on an
        older one (with what changed since)."""
        stale = draft_store.is_stale(self.draft, self.workflow)
        stored = draft_store.is_stored(self.draft)
        return {
            "stored": stored,
            "changed": draft_store.has_changes(self.draft, self.workflow) or (stale and stored),
            "stale": stale,
            "differences": (
                draft_store.differences(
                    self.definition, self.workflow.definition, self.workflow.version
                )
                if stale
                else []
            ),
        }

    # -- for the templates ----------------------------------------------------------------------

    def context(self) -> dict[str, Any]:
        """The templates' variables (``edit.html``, ``_update.html`` and the panels)."""
        node, node_id = self.node, self.node_id
        return {
            "workflow": self.workflow,
            "draft": self.draft,
            "definition": self.definition,
            **self.banner(),
            "conflict": self.conflict,
            "checked": self.checked,
            "problem_links": self.problem_links(),
            "fill_links": self.fill_links(),
            "selected": node_id,
            "node": node,
            "node_kind": node_kind(node) if node else None,
            "kind_titles": KIND_TITLES,
            "node_form": self.shown_node_form,
            "variables": self.variables,
            "secret_names": self.secret_names,
            "pending_secrets": self.pending_secrets,
            "missing_secrets": draft_checks.missing_secrets(self.definition, self.secret_names),
            "enable_error": self.enable_error,
            "confirm_remove": self.confirm_remove,
            "confirm_discard": self.confirm_discard,
            "picture": self.graph(),
            "edges": self.edges(),
            "settings_form": self.shown_settings_form,
            "add_node_form": self.add_node_form or make_add_node_form(self.definition, node_id),
            "add_edge_form": self.add_edge_form or make_add_edge_form(self.definition, node_id),
            "save_form": self.save_form or SaveForm(),
            "save_error": self.save_error,
            "next_version": self.workflow.version + 1,
            "revision": draft_store.revision_of(self.definition),
            "node_origin": _origin_text(self.definition, node) if node is not None else "",
        }
