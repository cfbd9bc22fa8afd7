"""Two dry runs of amplifying templates at once leave the server answering."""

from __future__ import annotations

import threading
import time

import httpx
from flask import Flask

from app.auth.models import User
from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.extensions import db
from app.incidents import service as incidents
from app.incidents.enums import ChangeSource
from app.incidents.schemas import IncidentCreate
from app.workflows import service as workflows
from app.workflows.enums import ScopeType
from tests.builders import BOMBS, webhook
from tests.conftest import csrf_token_from
from tests.fixtures.browser import PASSWORD, LiveServer


def amplifying_workflow_and_incident(app: Flask) -> tuple[str, str]:
    with app.app_context():
        admin = db.session.query(User).filter_by(email="ada@example.com").one()
        member = db.session.query(User).filter_by(email="mia@example.com").one()
        nodes = [trigger_node()]
        edges = []
        for index in range(8):
            name = f"bomb{index}"
            body = list(BOMBS.values())[index % len(BOMBS)]
            nodes.append(webhook(name, f"https://hooks.example.com/{name}", body=body))
            edges.append(edge("start", name))
        workflow = workflows.create_workflow(
            admin,
            name="Bombs",
            description="Templates that would build gigabytes.",
            scope=ScopeType.GLOBAL,
            definition=definition(nodes, edges, trigger_config("manual")),
        )
        incident = incidents.create_incident(
            incidents.Actor(member, ChangeSource.API),
            IncidentCreate(title="Payments down", team_id=member.memberships[0].team_id),
        )
        db.session.commit()
        ids = (workflow.id, incident.id)
        db.session.remove()
        return ids


def signed_in_client(server: LiveServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={
            "email": "ada@example.com",
            "password": PASSWORD,
            "csrf_token": csrf_token_from(form.text),
        },
    )
    assert answer.status_code in (302, 303)
    return client


def test_concurrent_dry_runs_of_amplifying_templates_leave_healthz_answering(
    live_app: Flask, live_server: LiveServer
) -> None:
    workflow_id, incident_id = amplifying_workflow_and_incident(live_app)
    clients = [signed_in_client(live_server), signed_in_client(live_server)]
    pages: list[httpx.Response] = []
    durations: list[float] = []

    def dry_run(client: httpx.Client) -> None:
        started = time.perf_counter()
        pages.append(client.get(f"/runs/dry-run?workflow={workflow_id}&incident={incident_id}"))
        durations.append(time.perf_counter() - started)

    threads = [threading.Thread(target=dry_run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    health_waits = []
    with httpx.Client(base_url=live_server.url, timeout=30) as probe:
        while True:  # at least one probe, sent as the dry runs start, however quick they are
            started = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            health_waits.append(time.perf_counter() - started)
            if not any(thread.is_alive() for thread in threads):
                break
            time.sleep(0.05)
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()

    assert [page.status_code for page in pages] == [200, 200]
    assert all(page.text.count("The template exceeded") == 8 for page in pages)
    assert health_waits and max(health_waits) < 1.0, health_waits
    # Each dry run renders within its 1-second budget, whatever its templates try.
    assert max(durations) < 5.0, durations
