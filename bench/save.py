"""The CPU time of saving a 500 KB, 200-node definition through the API."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from bench import env
from bench.options import Options
from bench.results import Figure, Target, figure
from bench.save_definition import NODES, _definition

NAME = "save"
TITLE = "Saving a big workflow definition"
METHOD = f"""\
An enabled workflow with {NODES} nodes is saved again and again through
`PUT /api/v1/workflows/<id>/definition` (Flask's test client, bearer token, SQLite),
with a definition of about 500 KB of JSON (just under the API's 512 KiB body limit)
built by `bench/save_definition.py`: one trigger and {NODES - 1} webhook nodes whose
bodies are mostly template expressions ("dense": about 25 `{{{{ … }}}}` per body,
~5,000 in all) or mostly static JSON with a few expressions ("typical"). Every
save changes the description, so it is a new version, and starts with the
template caches emptied (`templating.clear_caches()`), as the first save of a
definition in a fresh process. The figure is the CPU time of the whole request
(`time.process_time()`: JSON decoding, the input policy, the schema, every
template parsed and checked once, the secrets check of an enabled workflow,
storing, the response), the median over the saves of a repetition, then the
median over repetitions."""

TARGET = Target("<", 500.0, "< 500 ms of CPU per save")
SAVES_PER_REPETITION = 7
# Body targets (characters) that keep the request just under the API's 512 KiB limit.
DENSE_TARGET = 420_000
TYPICAL_TARGET = 400_000


def run(options: Options) -> list[Figure]:
    saves = 3 if options.quick else SAVES_PER_REPETITION
    samples: dict[str, list[float]] = {"dense": [], "typical": []}
    sizes: dict[str, int] = {}
    with env.database("sqlite") as database:
        app = env.make_app(database)
        seed = env.seed(app)
        for label, dense, target in (
            ("dense", True, DENSE_TARGET),
            ("typical", False, TYPICAL_TARGET),
        ):
            workflow_id, token = _enabled_workflow(app, seed, label, _definition(dense, target))
            client = app.test_client()
            version = 1
            for repetition in range(options.repeats):
                cpu: list[float] = []
                for save in range(saves):
                    changed = _definition(dense, target)
                    changed["description"] = f"Repetition {repetition}, save {save}."
                    body = json.dumps({"baseVersion": version, "definition": changed})
                    sizes[label] = len(body.encode())
                    spent = _timed_put(client, workflow_id, token, body)
                    cpu.append(spent * 1000)
                    version += 1
                samples[label].append(statistics.median(cpu))
                options.log(f"  save {label}: median CPU {samples[label][-1]:.0f} ms")
    setup = "API, SQLite, enabled workflow, {size:,} bytes of JSON, {NODES} nodes"
    return [
        figure(
            f"{NAME}.cpu.{label}",
            NAME,
            f"Save a 500 KB definition: CPU per save ({label} bodies)",
            setup.format(size=sizes[label], NODES=NODES),
            "ms",
            samples[label],
            target=TARGET,
            extra={"saves_per_repetition": saves, "request_bytes": sizes[label]},
        )
        for label in ("dense", "typical")
    ]


def _enabled_workflow(
    app: Any, seed: env.Seed, label: str, definition: dict[str, Any]
) -> tuple[str, str]:
    """A new enabled global workflow (secret ``tok`` set) and an API token for the admin."""
    from app.auth.models import User
    from app.auth.tokens import create_token
    from app.extensions import db
    from app.workflows import secrets as secret_store
    from app.workflows import service
    from app.workflows.enums import ScopeType

    with app.app_context():
        admin = db.session.get(User, seed.admin_id)
        assert admin is not None
        workflow = service.create_workflow(
            admin,
            name=f"Big {label}",
            description=str(definition["description"]),
            scope=ScopeType.GLOBAL,
            definition=definition,
        )
        secret_store.set_secret(workflow, "tok", "value")
        service.set_enabled(admin, workflow, True)
        _, token = create_token(admin, f"bench save {label}")
        db.session.commit()
        return workflow.id, token


def _timed_put(client: Any, workflow_id: str, token: str, body: str) -> float:
    from app.definition import templating

    templating.clear_caches()
    started = time.process_time()
    response = client.put(
        f"/api/v1/workflows/{workflow_id}/definition",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    spent = time.process_time() - started
    if response.status_code != 200:
        raise RuntimeError(f"save answered {response.status_code}: {response.get_data(True)[:300]}")
    return spent
