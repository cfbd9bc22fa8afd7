"""Server time of the workflow editor page for a 50-node workflow (issue 4: under 100 ms).

Run from the project root with the project's virtualenv::

    .venv/bin/python -m bench.editor_page [--warmups 5] [--requests 30]

It builds a fresh, migrated SQLite database in a temporary directory, an admin,
and one valid 50-node global workflow (conditions with true and false branches,
delays, webhook, Jira and Linear actions, with the secrets those actions need),
then times, through Flask's test client signed in as the admin (so no network
and no browser: the time is the server's, from WSGI call to the last byte):

- ``GET /workflows/<id>/edit`` (the editor, trigger selected),
- ``GET /workflows/<id>/edit?node=<a webhook>`` (the editor, the largest node form),
- ``GET /workflows`` (the list, with that one workflow).

It prints median, p90 and min per page, and the machine, and writes them to
``bench/results/editor_page.json`` (git-ignored). Nothing here asserts a time:
the figures are for reading and for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.auth.models import User
from app.definition import parse_definition, referenced_secrets
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.enums import ScopeType
from app.workflows.graph.layout import apply_layout

Json = dict[str, Any]

TARGET_MS = 100.0
NODE_COUNT = 50
PASSWORD = "correct horse battery"
RESULTS = Path(__file__).resolve().parent / "results" / "editor_page.json"
RETRY: Json = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000}
LINEAR_TEAM_ID = "5f2b7c1e-8a4d-4f6b-9c3e-1d2a3b4c5d6e"
#: Secrets the Jira and Linear actions read implicitly; stored so the workflow is runnable.
ISSUE_SECRETS = ("jira_base_url", "jira_email", "jira_api_token", "linear_api_key")


# --- the workflow ----------------------------------------------------------------


def _node(node_id: str, node_type: str, data: Json) -> Json:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": data}


def _action(node_id: str, index: int) -> Json:
    """A webhook, Jira or Linear action, in turn."""
    kind = ("webhook", "jira", "linear")[index % 3]
    config: Json
    if kind == "webhook":
        config = {
            "url": f"https://hooks.example.com/incidents/{index}/{{{{ incident.id }}}}",
            "method": "POST",
            "headers": {"Content-Type": "application/json", "X-Step": str(index)},
            "body": (
                '{"title": {{ incident.title | tojson }}, '
                '"priority": "{{ incident.priority }}", '
                '"team": {{ incident.teamName | tojson }}, '
                '"status": "{{ incident.status }}"}'
            ),
            "auth": {"type": "bearer", "token": "{{ secrets.hook_token }}"},
        }
    elif kind == "jira":
        config = {
            "projectKey": "OPS",
            "issueType": "Task",
            "summary": f"[{{{{ incident.priority }}}}] step {index}: {{{{ incident.title }}}}",
            "description": "{{ incident.description }}\n\nService: {{ incident.service }}",
            "priority": "High",
            "labels": ["incident", f"step-{index}"],
        }
    else:
        config = {
            "teamId": LINEAR_TEAM_ID,
            "title": f"Step {index}: {{{{ incident.title }}}}",
            "description": "{{ incident.description }}",
            "priority": 2,
        }
    data = {
        "actionType": kind,
        "name": f"{kind.capitalize()} step {index}",
        "config": config,
        "retry": dict(RETRY),
    }
    return _node(node_id, "action", data)


def _edge(source: str, target: str, handle: str | None = None) -> Json:
    edge: Json = {"id": f"e-{source}-{target}", "source": source, "target": target}
    if handle:
        edge["sourceHandle"] = handle
    return edge


def fifty_node_definition() -> Json:
    """Trigger, then blocks of: a condition; an action if true, a delay if false; both
    joining the next block's condition; one last action. Laid out by the editor's layout."""
    fields = (("priority", "P1"), ("status", "TRIGGERED"), ("service", "payments-api"))
    nodes: list[Json] = [_node("trigger", "trigger", {"name": "Incident created"})]
    edges: list[Json] = []
    previous = ["trigger"]
    block = 0
    while len(nodes) + 4 <= NODE_COUNT:
        block += 1
        field, value = fields[block % len(fields)]
        condition, action, delay = f"check_{block}", f"act_{block}", f"wait_{block}"
        nodes += [
            _node(
                condition,
                "condition",
                {"field": field, "operator": "=", "value": value, "name": f"{field} = {value}?"},
            ),
            _action(action, block),
            _node(delay, "delay", {"durationMinutes": 5 * block, "name": f"Wait {5 * block} min"}),
        ]
        edges += [_edge(source, condition) for source in previous]
        edges += [_edge(condition, action, "true"), _edge(condition, delay, "false")]
        previous = [action, delay]
    while len(nodes) < NODE_COUNT:
        final = f"final_{len(nodes)}"
        nodes.append(_action(final, len(nodes)))
        edges += [_edge(source, final) for source in previous]
        previous = [final]
    definition: Json = {
        "id": "bench",
        "name": "Fifty-node benchmark workflow",
        "description": "Conditions, delays, webhook, Jira and Linear actions.",
        "version": 1,
        "nodes": nodes,
        "edges": edges,
        "trigger": {"type": "incident_created", "conditions": []},
        "settings": {"timeout": "15min", "enabled": False},
    }
    return apply_layout(definition)


# --- the app ---------------------------------------------------------------------


def build_app(workdir: Path) -> tuple[Flask, str, str]:
    """A migrated app with an admin and the workflow; returns the app, the workflow's id
    and a webhook node's id."""
    app = create_app(
        {
            "INSTANCE_PATH": str(workdir / "instance"),
            "SECRET_KEY": "bench-" + os.urandom(8).hex(),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}",
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
        }
    )
    definition = fifty_node_definition()
    defn = parse_definition(definition)  # raises if the benchmark's workflow is not valid
    assert len(defn.nodes) == NODE_COUNT
    with app.app_context():
        logging.disable(logging.INFO)  # Alembic's per-migration lines
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)
        admin = User(email="ada@example.com", first_name="Ada", last_name="Admin", is_admin=True)
        admin.set_password(PASSWORD)
        db.session.add(admin)
        db.session.flush()
        workflow = service.create_workflow(
            admin,
            name=defn.name,
            description=defn.description,
            scope=ScopeType.GLOBAL,
            definition=definition,
        )
        for name in {*referenced_secrets(defn), *ISSUE_SECRETS}:
            secret_store.set_secret(workflow, name, f"bench-{name}-value")
        # Runnable as it stands: every secret it uses is there.
        parse_definition(workflow.definition, secret_names=secret_store.secret_names(workflow))
        db.session.commit()
        workflow_id: str = workflow.id
        db.session.remove()
    webhook = next(n["id"] for n in definition["nodes"] if n["data"].get("actionType") == "webhook")
    return app, workflow_id, webhook


def signed_in_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    form = client.get("/sign-in").get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert found, "no CSRF token on the sign-in page"
    response = client.post(
        "/sign-in",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": found.group(1)},
    )
    assert response.status_code in (302, 303), f"sign-in failed: {response.status_code}"
    return client


# --- timing ----------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def measure(get: Callable[[], Any], warmups: int, requests: int) -> Json:
    size = 0
    for _ in range(warmups):
        get()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = get()
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, f"status {response.status_code}"
        size = len(response.data)
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(percentile(samples, 0.9), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
        "requests": requests,
        "warmups": warmups,
        "response_bytes": size,
    }


def machine() -> Json:
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--warmups", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iflow-bench-") as tmp:
        app, workflow_id, webhook = build_app(Path(tmp))
        client = signed_in_client(app)
        pages = {
            "editor": f"/workflows/{workflow_id}/edit",
            "editor_node": f"/workflows/{workflow_id}/edit?node={webhook}",
            "workflow_list": "/workflows",
        }
        results: dict[str, Json] = {
            name: {"url": url.replace(workflow_id, "<id>")}
            | measure(partial(client.get, url), args.warmups, args.requests)
            for name, url in pages.items()
        }
        with app.app_context():
            db.engine.dispose()

    info = machine()
    report: Json = {
        "benchmark": "editor_page",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "nodes": NODE_COUNT,
        "target_ms": TARGET_MS,
        "database": "sqlite (file, temporary)",
        "machine": info,
        "pages": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"Editor page, {NODE_COUNT}-node workflow; {args.warmups} warm-ups + "
        f"{args.requests} timed requests each"
    )
    print(
        f"Machine: {info['cpu_count']} CPUs ({info['processor']}), "
        f"{info['implementation']} {info['python']}, {info['platform']}"
    )
    print(f"{'page':<15} {'median ms':>10} {'p90 ms':>10} {'min ms':>10} {'KiB':>8}")
    for name, row in results.items():
        print(
            f"{name:<15} {row['median_ms']:>10.1f} {row['p90_ms']:>10.1f} "
            f"{row['min_ms']:>10.1f} {row['response_bytes'] / 1024:>8.1f}"
        )
    editor = results["editor"]["median_ms"]
    verdict = "within" if editor < TARGET_MS else "OVER"
    print(f"Editor median {editor:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target.")
    print(f"Written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
