"""``python -m bench.save_definition``: the CPU time of saving a 500 KB, 200-node definition.

A quick check of the service's save path; ``python -m bench --only save`` measures
the same definitions through the API for docs/benchmarks.md. This script calls
service.save_version of an enabled workflow (validation, the runnable check with
its secrets, storing) on a throwaway SQLite database and prints wall and CPU time
and how many templates Jinja parsed, for two kinds of definition: bodies with a
few expressions in a lot of JSON ("typical") and bodies that are mostly
expressions ("dense"). Each save starts with the parse cache emptied.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

NODES = 200


def _definition(dense: bool, target: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {"name": "Start"}}
    ]
    edges = []
    per_node = target // NODES
    previous = "start"
    for i in range(NODES - 1):
        if dense:
            parts, size, k = [], 0, 0
            while size < per_node - 200:
                piece = f'"f{k}": {{{{ incident.title | tojson }}}}, "g{k}": "{"x" * 40}{i}", '
                parts.append(piece)
                size += len(piece)
                k += 1
            body = "{" + "".join(parts) + '"token": "{{ secrets.tok }}"}'
        else:
            static = ", ".join(
                f'"field_{i}_{k}": "some static configuration value number {k} for node {i}"'
                for k in range(per_node // 80)
            )
            body = (
                '{"incident": {{ incident.id | tojson }}, "title": {{ incident.title | tojson }}, '
                '"priority": "{{ incident.priority }}", "team": {{ team.name | tojson }}, '
                '"run": "{{ workflow.executionId }}", "token": "{{ secrets.tok }}", ' + static + "}"
            )
        node_id = f"n{i}"
        nodes.append(
            {
                "id": node_id,
                "type": "action",
                "position": {"x": 0, "y": 100 * (i + 1)},
                "data": {
                    "actionType": "webhook",
                    "name": f"Call {i}",
                    "config": {
                        "url": "https://hooks.example.com/{{ incident.id }}?n=" + str(i),
                        "method": "POST",
                        "headers": {"X-Run": "{{ workflow.executionId }}", "X-Node": str(i)},
                        "body": body,
                        "auth": {"type": "none"},
                    },
                    "retry": {"attempts": 3, "backoff": "exponential", "initialDelayMs": 1000},
                },
            }
        )
        edges.append({"id": f"e{i}", "source": previous, "target": node_id})
        previous = node_id
    return {
        "id": "wf_big",
        "name": "Big",
        "description": "Two hundred nodes.",
        "version": 1,
        "nodes": nodes,
        "edges": edges,
        "trigger": {"type": "incident_created", "conditions": []},
        "settings": {"timeout": "5min", "enabled": True},
    }


def main() -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.auth.models import User
    from app.definition import templating
    from app.extensions import db
    from app.workflows import secrets as secret_store
    from app.workflows import service
    from app.workflows.enums import ScopeType

    tmp = Path(tempfile.mkdtemp())
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp),
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'save.db'}",
        }
    )
    with app.app_context():
        upgrade()
        admin = User(email="bench@example.com", first_name="B", last_name="B", is_admin=True)
        admin.set_password("correct horse battery")
        db.session.add(admin)
        db.session.commit()
        env = templating.template_environment()
        parse = env.parse
        for label, dense, target in (("typical", False, 440_000), ("dense", True, 470_000)):
            data = _definition(dense, target)
            workflow = service.create_workflow(
                admin,
                name=f"Big {label}",
                description=data["description"],
                scope=ScopeType.GLOBAL,
                definition=data,
            )
            secret_store.set_secret(workflow, "tok", "value")
            service.set_enabled(admin, workflow, True)
            db.session.commit()
            parses: list[str] = []

            def counting(source: str, *args: Any, seen: list[str] = parses, **kwargs: Any) -> Any:
                seen.append(source)
                return parse(source, *args, **kwargs)

            env.parse = counting  # type: ignore[method-assign]
            for round_ in range(3):
                templating.clear_caches()
                parses.clear()
                changed = _definition(dense, target)
                changed["description"] = f"Round {round_}."
                wall, cpu = time.perf_counter(), time.process_time()
                service.save_version(admin, workflow, changed, base_version=workflow.version)
                db.session.commit()
                print(
                    f"{label}: {len(json.dumps(changed)):,} characters of JSON, "
                    f"wall {time.perf_counter() - wall:.3f} s, "
                    f"CPU {time.process_time() - cpu:.3f} s, {len(parses)} templates parsed"
                )
            env.parse = parse  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
