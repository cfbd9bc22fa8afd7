"""``working_ms`` of a run that timed out is its timeout, not the timeout plus the
abandoned request's time again (which stored 1-minute timeouts as ~90 s)."""

from __future__ import annotations

from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.extensions import db
from tests.builders import webhook
from tests.support import drain, runs_of

LEFT_MS = 1_000


def test_a_timed_out_run_has_worked_exactly_its_timeout(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"  # the receiver's address
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
            settings={"timeout": "1min", "enabled": True},
        )
    )
    webhook_receiver.slow(10)  # answers long after the run's time is up
    open_incident()
    worker.consume_events()
    (run,) = runs_of(workflow)
    run.working_ms = 60_000 - LEFT_MS
    db.session.commit()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "timed out" in run.error
    # Not the timeout plus the ~1 000 ms the abandoned request took.
    assert run.working_ms == 60_000
