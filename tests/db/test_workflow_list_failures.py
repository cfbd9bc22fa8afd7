"""The workflow list's last 24 hours: runs, failures and a link to the last failure, per
workflow, from the list's one query."""

from __future__ import annotations

import re
from datetime import timedelta

from app.db import utcnow
from app.extensions import db
from app.workflows.enums import ExecutionStatus
from tests.page_support import row_of


def day_cell(row: str) -> str:
    match = re.search(r'<td class="wf-day" data-testid="wf-day">(.*?)</td>', row, re.S)
    assert match
    return " ".join(match.group(1).split())


def test_the_list_counts_runs_and_failures_of_the_last_day_and_links_the_last_failure(
    client,
    member,  # noqa: F811
    team,  # noqa: F811
    make_workflow,
    make_incident,
    make_execution,
) -> None:
    busy = make_workflow(team=team, name="Busy")
    quiet = make_workflow(team=team, name="Quiet")
    incident = make_incident(team=team)
    now = utcnow()
    make_execution(busy, incident, status=ExecutionStatus.COMPLETED, created_at=now)
    earlier_failure = make_execution(
        busy,
        incident,
        status=ExecutionStatus.FAILED,
        created_at=now - timedelta(hours=3),
        failed_at=now - timedelta(hours=3),
    )
    last_failure = make_execution(
        busy,
        incident,
        status=ExecutionStatus.FAILED,
        created_at=now - timedelta(hours=1),
        failed_at=now - timedelta(hours=1),
    )
    # Older than a day: neither counted nor linked.
    make_execution(
        busy,
        incident,
        status=ExecutionStatus.FAILED,
        created_at=now - timedelta(hours=30),
        failed_at=now - timedelta(hours=30),
    )
    make_execution(
        quiet,
        incident,
        status=ExecutionStatus.FAILED,
        created_at=now - timedelta(hours=26),
        failed_at=now - timedelta(hours=26),
    )
    db.session.commit()

    page = client.get("/workflows").text
    busy_cell = day_cell(row_of(page, busy))
    assert busy_cell.startswith('3 runs, <span class="wf-failures">2 failed</span>')
    assert f'href="/runs/{last_failure.id}"' in busy_cell
    assert earlier_failure.id not in busy_cell
    quiet_cell = day_cell(row_of(page, quiet))
    assert quiet_cell.startswith("0 runs, <span>0 failed</span>")
    assert "last failure" not in quiet_cell
