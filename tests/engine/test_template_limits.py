"""An amplifying template fails its own node, quickly and small; other runs go on."""

from __future__ import annotations

import re
import resource
import time

import pytest

from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.engine.dry_run import dry_run
from tests.builders import BOMBS, attempts_of, webhook
from tests.support import drain, runs_of


@pytest.fixture(autouse=True)
def allow_loopback(app):
    """The receiver lives on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


def one_webhook(node_id: str, url: str, body: str) -> dict:
    return definition(
        [trigger_node(), webhook(node_id, url, body=body, attempts=1)],
        [edge("start", node_id)],
        trigger_config("incident_created"),
        id=f"wf-{node_id}",
        name=f"Workflow {node_id}",
    )


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def test_amplifying_templates_fail_their_node_and_a_control_run_completes(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    bombs = {
        name: make_enabled_workflow(one_webhook(name, webhook_receiver.url + "/" + name, body))
        for name, body in BOMBS.items()
    }
    control = make_enabled_workflow(
        one_webhook("control", webhook_receiver.url + "/control", '{"ok": true}')
    )
    rss_before = _max_rss_bytes()
    started = time.perf_counter()
    open_incident(title="Payments down")
    drain(worker)
    elapsed = time.perf_counter() - started
    assert _max_rss_bytes() - rss_before < 100 * 1024 * 1024
    assert elapsed < 10  # unbounded, the tower alone held a worker for 80 s

    (control_run,) = runs_of(control)
    assert control_run.status == "COMPLETED", control_run.error
    assert [request.path for request in webhook_receiver.requests] == ["/control"]
    for name, workflow in bombs.items():
        (run,) = runs_of(workflow)
        assert run.status == "FAILED", name
        assert "Could not render the body: The template exceeded" in run.error, run.error
        node = next(r for r in run.completed_nodes if r["nodeId"] == name)
        assert node["status"] == "failed" and "exceeded" in node["error"]
        assert attempts_of(run)[0].ok is False


def test_a_dry_run_of_amplifying_templates_answers_within_about_a_second(
    app, client, sign_in, responder, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    nodes = [trigger_node()]
    edges = []
    for index in range(12):  # more fields than one render's time limit could afford each
        name = f"bomb{index}"
        body = list(BOMBS.values())[index % len(BOMBS)]
        nodes.append(webhook(name, webhook_receiver.url + "/" + name, body=body))
        edges.append(edge("start", name))
    workflow = make_enabled_workflow(definition(nodes, edges, trigger_config("manual")))
    incident = open_incident(title="Payments down")

    started = time.perf_counter()
    steps = dry_run(workflow, incident)
    assert time.perf_counter() - started < 1.5
    assert [step.status for step in steps[1:]] == ["failed"] * 12
    assert all("The template exceeded" in step.detail["error"] for step in steps[1:])

    sign_in(responder.email)
    started = time.perf_counter()
    page = client.get(f"/runs/dry-run?workflow={workflow.id}&incident={incident.id}")
    assert time.perf_counter() - started < 2.0
    assert page.status_code == 200
    assert len(re.findall("The template exceeded", page.text)) == 12
    assert webhook_receiver.requests == []
