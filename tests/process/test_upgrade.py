"""Zero-downtime upgrades: the previous release's worker runs on the current schema
(README, "Upgrading without downtime": migrate first, then roll the workers).

"Previous release" is the code just before the newest migration was added, taken
from git (``git archive``, read-only); its ``flask worker run --once`` starts and
finishes a run on a database migrated by the current code.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.extensions import db
from tests.builders import webhook
from tests.support import runs_of

ROOT = Path(__file__).resolve().parents[2]


def git(*args: str) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, timeout=60
    ).stdout


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The code before the newest migration, unpacked into a directory."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git history of the project")
    newest = sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py"))[-1]
    # First-parent history, merges diffed against their first parent: the commit that
    # brought the migration to this branch, whether made here or merged in.
    added = (
        git(
            "log", "--first-parent", "-m", "--diff-filter=A", "--format=%H", "-1", "--", str(newest)
        )
        .decode()
        .strip()
    )
    if not added:
        pytest.skip(f"{newest.name} is not committed yet")
    target = tmp_path_factory.mktemp("previous-release")
    archive = git("archive", "--format=tar", f"{added}^", "app", "migrations", "wsgi.py")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    assert not (target / "migrations" / "versions" / newest.name).exists()
    return target


def test_the_previous_release_worker_runs_on_the_current_schema(
    app, previous_release, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    workflow = make_enabled_workflow(
        definition(
            [trigger_node(), webhook("hook", webhook_receiver.url + "/hook")],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        )
    )
    open_incident(title="Upgrade in progress")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    env.update(
        FLASK_APP="wsgi",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=app.config["SECRET_KEY"],
        INCIDENTFLOW_INSTANCE_PATH=app.instance_path,
        INCIDENTFLOW_ENV="testing",
        INCIDENTFLOW_OUTBOUND_ALLOW="127.0.0.1",
    )
    old = subprocess.run(
        [sys.executable, "-m", "flask", "worker", "run", "--once"],
        cwd=previous_release, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert old.returncode == 0, old.stdout + old.stderr

    db.session.rollback()
    (run,) = runs_of(workflow)
    assert run.status == "COMPLETED", run.error
    assert [r.json() for r in webhook_receiver.requests] == [{"title": "Upgrade in progress"}]
    # It was the old code: code from before the loop guard sends no run marker.
    if not (previous_release / "app" / "engine" / "guards.py").exists():
        assert webhook_receiver.requests[0].header("X-IncidentFlow-Run") is None
    # It was the old code: it knows nothing of what the newest migration added.
    # (Names that earlier migrations already used, like another table's execution_id,
    # say nothing.)
    added = names_added_by(sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py"))[-1])
    old_migrations = "\n".join(
        path.read_text() for path in (previous_release / "migrations").rglob("*.py")
    )
    added = {name for name in added if name not in old_migrations}
    assert added
    old_source = "\n".join(path.read_text() for path in (previous_release / "app").rglob("*.py"))
    assert not {name for name in added if name in old_source}


def names_added_by(migration: Path) -> set[str]:
    """The tables and columns a migration creates."""
    text = migration.read_text()
    return set(re.findall(r"(?:create_table\(|add_column\(sa\.Column\()'(\w+)'", text))
