"""Failure workflows, with the real engine and a local receiver: a failing workflow starts
its failure workflow exactly once, with the failed run, workflow, node and scrubbed error;
a failing failure workflow starts nothing; "only for these workflows" is kept."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.definition import WorkflowDefinition
from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.extensions import db
from app.incidents.enums import IncidentEventType
from app.incidents.models import IncidentEvent
from tests.builders import webhook
from tests.fakes.servers import Reply
from tests.support import drain, runs_of

TOKEN = "tok-Sup3rSecret-9f1c"
REPORT_BODY = (
    '{"workflow": {{ failure.workflowName | tojson }}, "run": {{ failure.runId | tojson }},'
    ' "node": {{ failure.nodeId | tojson }}, "nodeName": {{ failure.nodeName | tojson }},'
    ' "error": {{ failure.error | tojson }}, "incident": {{ incident.title | tojson }}}'
)


@pytest.fixture(autouse=True)
def allow_loopback(app):
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


def failing_workflow(url: str, name: str = "Page the on-call") -> dict[str, Any]:
    node = webhook(
        "page",
        f"{url}/page",
        body='{"ok": true}',
        attempts=1,
        auth={"type": "bearer", "token": "{{ secrets.token }}"},
    )
    defn = definition([trigger_node(), node], [edge("start", "page")], trigger_config())
    defn["name"] = name
    return defn


def failure_workflow(url: str, path: str = "/failed", **trigger: Any) -> dict[str, Any]:
    defn = definition(
        [
            trigger_node(name="A run failed"),
            webhook("report", f"{url}{path}", body=REPORT_BODY, attempts=1),
        ],
        [edge("start", "report")],
        trigger_config("workflow_failed", **trigger),
    )
    defn["name"] = "Report failed runs"
    return defn


def failed_events() -> list[IncidentEvent]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(IncidentEvent)
            .where(IncidentEvent.type == IncidentEventType.WORKFLOW_FAILED)
            .order_by(IncidentEvent.id)
        )
    )


def test_a_failing_workflow_starts_its_failure_workflow_once_with_a_scrubbed_error(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    failing = make_enabled_workflow(
        failing_workflow(webhook_receiver.url), secrets={"token": TOKEN}
    )
    reporter = make_enabled_workflow(failure_workflow(webhook_receiver.url))
    # The destination fails, echoing the credential it was sent.
    webhook_receiver.reply(
        Reply(status=500, body=f"bad token {TOKEN}", headers={"Content-Type": "text/plain"})
    )
    open_incident(title="Checkout down")
    drain(worker)
    drain(worker)  # nothing more happens on a second look

    (failed,) = runs_of(failing)
    assert failed.status == "FAILED"
    (report_run,) = runs_of(reporter)
    assert report_run.status == "COMPLETED", report_run.error
    assert report_run.trigger_event == "workflow_failed"
    reports = [r for r in webhook_receiver.requests if r.path == "/failed"]
    assert len(reports) == 1
    sent = reports[0].json()
    assert sent["workflow"] == "Page the on-call"
    assert sent["run"] == failed.id
    assert (sent["node"], sent["nodeName"]) == ("page", "Call page")
    assert sent["incident"] == "Checkout down"
    assert "answered 500" in sent["error"] and "[secret]" in sent["error"]
    assert TOKEN not in reports[0].body.decode()
    (event,) = failed_events()
    assert event.execution_id == failed.id
    assert TOKEN not in repr(event.changes)


def test_a_failing_failure_workflow_starts_nothing(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    failing = make_enabled_workflow(
        failing_workflow(webhook_receiver.url), secrets={"token": TOKEN}
    )
    reporter = make_enabled_workflow(failure_workflow(webhook_receiver.url))
    webhook_receiver.reply(Reply(status=500, body="down"), Reply(status=500, body="down too"))
    open_incident()
    drain(worker)
    drain(worker)
    assert [run.status for run in runs_of(failing)] == ["FAILED"]
    assert [run.status for run in runs_of(reporter)] == ["FAILED"]  # not started by itself
    first, second = failed_events()
    assert "failureWorkflow" not in first.changes
    assert second.changes["failureWorkflow"]["to"] is True
    assert len(webhook_receiver.requests) == 2


def test_only_for_these_workflows(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    failing = make_enabled_workflow(
        failing_workflow(webhook_receiver.url), secrets={"token": TOKEN}
    )
    other = make_enabled_workflow(
        failure_workflow(webhook_receiver.url, "/other", workflowIds=["someotherworkflow"])
    )
    mine = make_enabled_workflow(
        failure_workflow(webhook_receiver.url, "/mine", workflowIds=[failing.id])
    )
    webhook_receiver.reply(Reply(status=500, body="down"))
    open_incident()
    drain(worker)
    assert runs_of(other) == []
    assert len(runs_of(mine)) == 1


def test_failure_settings_and_variables_are_checked() -> None:
    WorkflowDefinition.model_validate(failure_workflow("https://hooks.example.com"))
    with pytest.raises(ValidationError) as error:
        defn = failing_workflow("https://hooks.example.com")
        defn["trigger"]["workflowIds"] = ["abc"]
        WorkflowDefinition.model_validate(defn)
    assert "Only 'workflow_failed' triggers use workflowIds" in str(error.value)
    with pytest.raises(ValidationError) as error:
        defn = failure_workflow("https://hooks.example.com")
        defn["trigger"]["type"] = "incident_created"
        WorkflowDefinition.model_validate(defn)
    assert "Only workflows with a 'workflow_failed' trigger have 'failure'" in str(error.value)
    with pytest.raises(ValidationError) as error:
        defn = failure_workflow("https://hooks.example.com")
        defn["nodes"][1]["data"]["config"]["body"] = '{"x": {{ failure.secret | tojson }}}'
        WorkflowDefinition.model_validate(defn)
    assert "'failure' has no field 'secret'" in str(error.value)


def test_min_failures_waits_for_repeated_failures(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    make_enabled_workflow(failing_workflow(webhook_receiver.url), secrets={"token": TOKEN})
    repeated = make_enabled_workflow(failure_workflow(webhook_receiver.url, minFailures=2))
    webhook_receiver.reply(Reply(status=500, body="down"), Reply(status=500, body="down"))
    open_incident(title="First")
    drain(worker)
    assert runs_of(repeated) == []
    open_incident(title="Second")
    drain(worker)
    (run,) = runs_of(repeated)
    report = next(r for r in webhook_receiver.requests if r.path == "/failed")
    assert report.json()["incident"] == "Second"
    assert failed_events()[1].changes["failuresInADay"]["to"] == 2


def test_the_editor_lists_the_failure_variables_for_a_failure_workflow(
    app, client, sign_in, admin, make_enabled_workflow
) -> None:
    reporter = make_enabled_workflow(failure_workflow("https://hooks.example.com"))
    sign_in(admin.email)
    page = client.get(f"/workflows/{reporter.id}/edit", query_string={"node": "report"}).text
    for name in ("runId", "workflowName", "nodeName", "error", "failuresInADay"):
        assert "{{ failure." + name + " }}" in page
    plain = make_enabled_workflow(
        failing_workflow("https://hooks.example.com", name="Plain"), secrets={"token": "t"}
    )
    page = client.get(f"/workflows/{plain.id}/edit", query_string={"node": "page"}).text
    assert "{{ failure." not in page
