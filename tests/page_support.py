"""Driving the app's pages from a test client: an editor tab, a workflow list row."""

from __future__ import annotations

import html
import re
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from app.extensions import db
from app.workflows.models import Workflow, WorkflowDraft
from tests.conftest import csrf_token_from

Json = dict[str, Any]


class Editor:
    """One browser tab on a workflow's editor."""

    def __init__(self, client: FlaskClient, workflow_id: str) -> None:
        self.client = client
        self.url = f"/workflows/{workflow_id}/edit"
        self.token = ""

    def page(self, node: str | None = None, **kwargs: Any) -> Any:
        response = self.client.get(self.url, query_string={"node": node} if node else {}, **kwargs)
        if response.status_code == 200 and "csrf_token" in response.text:
            self.token = csrf_token_from(response.text)
        return response

    def post(self, path: str, data: Json, *, htmx: bool = True, node: str | None = None) -> Any:
        if not self.token:
            self.token = csrf_token_from(self.client.get("/").text)
        if "revision" not in data:
            # As a browser tab would: post the revision the form was rendered from.
            data = {**self.rendered(node), **data}
        headers = {"HX-Request": "true"} if htmx else {}
        if htmx and node:
            headers["HX-Current-URL"] = f"http://localhost{self.url}?node={node}"
        return self.client.post(
            f"{self.url}{path}", data={"csrf_token": self.token, **data}, headers=headers
        )

    def rendered(self, node: str | None = None) -> Json:
        """The draft revision and node origin the editor page renders its forms with."""
        text = self.client.get(self.url, query_string={"node": node} if node else {}).text
        revision = re.search(r'name="revision" value="([^"]*)"', text)
        origin = re.search(r'name="origin" value="([^"]*)"', text)
        return {
            "revision": revision.group(1) if revision else "",
            "origin": html.unescape(origin.group(1)) if origin else "",
        }

    def apply_node(self, node_id: str, fields: Json, op: str = "apply") -> Any:
        data = {"node_id": node_id, "op": op, **{f"node-{k}": v for k, v in fields.items()}}
        return self.post("/node", data, node=node_id)

    def add_node(
        self, kind: str, after: str, handle: str | None = None, placement: str = "branch"
    ) -> Any:
        data = {"add-kind": kind, "add-after": after, "add-placement": placement}
        if handle:
            data["add-handle"] = handle
        return self.post("/nodes", data)

    def add_edge(self, source: str, target: str, handle: str | None = None) -> Any:
        data = {"edge-source": source, "edge-target": target}
        if handle:
            data["edge-handle"] = handle
        return self.post("/edges", data)

    def save(self, note: str = "") -> Any:
        return self.post("/save", {"save-change_note": note})


def draft_of(user, workflow: Workflow) -> WorkflowDraft | None:
    db.session.rollback()
    return db.session.scalar(
        sa.select(WorkflowDraft).where(
            WorkflowDraft.workflow_id == workflow.id, WorkflowDraft.user_id == user.id
        )
    )


def row_of(html: str, workflow: Workflow) -> str:
    match = re.search(rf'<tr id="wf-{workflow.id}">.*?</tr>', html, re.S)
    assert match, f"no row for {workflow.name}"
    return match.group(0)
