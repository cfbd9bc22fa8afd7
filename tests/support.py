"""Helpers shared by tests of several folders (fixtures live in ``tests/fixtures/``)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import sqlalchemy as sa
from pydantic import ValidationError

from app.definition import DefinitionError, definition_errors, parse_definition
from app.engine.worker import Worker
from app.extensions import db
from app.workflows.models import Workflow, WorkflowExecution

#: The repository's root.
ROOT = Path(__file__).resolve().parents[1]


def redis_url_of_this_process(environ: Mapping[str, str] = os.environ) -> str:
    """The Redis database of this test process: ``TEST_REDIS_URL`` (DB 15 by default).

    Under pytest-xdist each worker process (``PYTEST_XDIST_WORKER`` = gw0, gw1, ...)
    takes its own database, counting down from that one (15, 14, 13, ...): the Celery
    tests empty theirs around each test.
    """
    parsed = urlsplit(environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    base = int(parsed.path.strip("/") or 0)
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") else 0
    if index > base:
        raise RuntimeError(
            f"pytest-xdist worker {worker} would need Redis database {base - index}: "
            "give TEST_REDIS_URL a higher database number or run fewer workers"
        )
    return urlunsplit(parsed._replace(path=f"/{base - index}"))


#: This process's Redis database (never killed; see tests/fakes/redis_server.py).
REDIS_URL = redis_url_of_this_process()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runs_of(workflow: Workflow) -> list[WorkflowExecution]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(WorkflowExecution)
            .where(WorkflowExecution.workflow_id == workflow.id)
            .order_by(WorkflowExecution.created_at, WorkflowExecution.id)
        )
    )


def drain(worker: Worker, passes: int = 50) -> None:
    """Run the worker until it finds nothing to do (bounded)."""
    for _ in range(passes):
        if worker.run_once() == 0:
            return
    raise AssertionError("the worker never went idle")


def wait_for(
    predicate: Callable[[], Any],
    seconds: float,
    what: str,
    logs: Callable[[], str] | None = None,
    every: float = 0.1,
) -> Any:
    """Poll until ``predicate()`` is truthy (and return it), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n--- process logs ---\n{logs()}" if logs else ""
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}{detail}")
        time.sleep(every)


def spellings(secret: str) -> dict[str, str]:
    """The ways a secret can be spelled in stored text; the scrubber must remove each."""
    ascii_json = json.dumps(secret)[1:-1]
    return {
        "plain": secret,
        "json": ascii_json,
        "json, non-ASCII kept": json.dumps(secret, ensure_ascii=False)[1:-1],
        "json, upper-case \\u": ascii_json.replace("\\u00e4", "\\u00E4").replace(
            "\\u00f6", "\\u00F6"
        ),
        "json, escaped slash": ascii_json.replace("/", "\\/"),
        "json in json": json.dumps(ascii_json)[1:-1],
        "url": quote(secret, safe=""),
        "url, path": quote(secret),
        "url, form": quote_plus(secret),
        "url, lower-case": re.sub(
            r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe="")
        ),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64, url-safe, unpadded": base64.urlsafe_b64encode(secret.encode())
        .decode()
        .rstrip("="),
        "html": html.escape(secret),
    }


def errors_of(data: object, **kwargs: Any) -> list[DefinitionError]:
    """The formatted errors for an invalid definition (fails if it is valid)."""
    try:
        parse_definition(data, **kwargs)
    except ValidationError as exc:
        return definition_errors(exc)
    raise AssertionError("the definition was accepted")


def error_at(data: object, loc: str, **kwargs: Any) -> DefinitionError:
    """The error reported at ``loc`` (fails if there is none there)."""
    errors = errors_of(data, **kwargs)
    matching = [error for error in errors if error.loc == loc]
    assert matching, f"no error at {loc!r}; got {errors}"
    return matching[0]
