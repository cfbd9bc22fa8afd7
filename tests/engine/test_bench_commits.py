"""The commit-counting benchmark drives real runs through the engine's public methods,
so a change to their signatures fails here rather than in a 40-minute benchmark run."""

from __future__ import annotations

import dataclasses
import os

import pytest

from bench import commits, env
from bench.backends import CELERY, SQLITE, Backend
from bench.options import Options
from tests.conftest import require_service


@pytest.mark.parametrize("backend", [SQLITE, CELERY], ids=lambda b: b.key)
def test_commits_and_statements_per_run_are_counted(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.database == "postgresql":
        url = os.environ.get("TEST_DATABASE_URL")
        require_service("PostgreSQL", bool(url), "set TEST_DATABASE_URL")
        monkeypatch.setattr(env, "POSTGRES_URL", url)
    options = dataclasses.replace(Options.make(quick=True, repeats=1), commit_runs=3)
    figures = {figure.label: figure for figure in commits.measure(options, backend)}
    assert [figure.reason for figure in figures.values() if figure.reason] == []
    per_run = figures[commits.TITLE].value
    statements = figures[commits.STATEMENTS].value
    assert per_run is not None and 1 <= per_run < 20
    assert statements is not None and statements > per_run
