"""A receiver that reads a request and then drops the kept-alive connection: the
request is an attempt like any other, never sent again behind the engine's back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.definition.builders import chain
from app.extensions import db
from app.workflows.models import ExecutionAttempt
from tests.builders import webhook
from tests.fakes.connections import HANG_UP, OK, KeepAliveServer
from tests.support import drain, runs_of


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    """A raw keep-alive HTTP server that answers as scripted (default: 200)."""
    running = KeepAliveServer().start()
    yield running
    running.stop()


def test_a_reset_after_the_request_was_read_is_one_delivery_per_recorded_attempt(
    app, worker, clock, server, make_enabled_workflow, open_incident
) -> None:
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"
    workflow = make_enabled_workflow(
        chain(webhook("first", server.url + "/first"), webhook("second", server.url + "/second"))
    )
    server.answer(OK, HANG_UP)  # "first" keeps the connection; "second" is read, then dropped
    open_incident()
    drain(worker)
    clock.advance(seconds=30)  # past the retry's backoff
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED"
    attempts = db.session.scalars(
        sa.select(ExecutionAttempt.node_id).where(ExecutionAttempt.execution_id == run.id)
    ).all()
    assert sorted(attempts) == ["first", "second", "second"]
    # Every delivery is a recorded attempt: the dropped one was not re-sent silently.
    assert [request.split(b" ")[1] for request in server.requests] == [
        b"/first",
        b"/second",
        b"/second",
    ]
