"""The shipped Procfile and systemd units (issue 12, deployment as users run it):
sound as shipped, and each way of breaking them is named by ``check_layout``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.ops.layout import UNITS_DIR, check_layout, read_procfile, read_unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A copy of the shipped Procfile and units, to break."""
    shutil.copy(ROOT / "Procfile", tmp_path / "Procfile")
    shutil.copytree(ROOT / UNITS_DIR, tmp_path / UNITS_DIR)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def problems(root: Path) -> list[str]:
    return [str(problem) for problem in check_layout(root)]


def test_the_shipped_layout_is_sound() -> None:
    assert problems(ROOT) == []
    assert set(read_procfile(ROOT / "Procfile")) == {"release", "web", "worker", "beat"}
    for unit in (ROOT / UNITS_DIR).glob("*.service"):
        service = read_unit(unit)["Service"]
        assert service["User"] == "incidentflow", unit.name  # never root
        assert "INCIDENTFLOW_LOG_FORMAT=json" in service["Environment"], unit.name


def test_a_unit_without_restart_graceful_stop_or_limits_is_named(layout: Path) -> None:
    worker = layout / UNITS_DIR / "incidentflow-worker@.service"
    edit(worker, "Restart=always\n", "")
    edit(worker, "KillSignal=SIGTERM\n", "KillSignal=SIGKILL\n")
    edit(worker, "TimeoutStopSec=60\n", "")
    edit(worker, "MemoryMax=2G\nTasksMax=512\n", "")
    assert problems(layout) == [
        "deploy/systemd/incidentflow-worker@.service: no restart policy (Restart=always)",
        "deploy/systemd/incidentflow-worker@.service: KillSignal is not SIGTERM: no graceful stop",
        "deploy/systemd/incidentflow-worker@.service: no TimeoutStopSec: how long a graceful "
        "stop may take",
        "deploy/systemd/incidentflow-worker@.service: no resource limit (MemoryMax, MemoryHigh, "
        "TasksMax, CPUQuota)",
    ]


def test_a_unit_without_the_project_directory_is_named(layout: Path) -> None:
    # The entry points are modules of the project directory: celery -A celery_worker:celery
    # and gunicorn wsgi:app import them from where they start.
    for unit in ("incidentflow-worker@.service", "incidentflow-web.service"):
        edit(layout / UNITS_DIR / unit, "WorkingDirectory=/opt/incidentflow\n", "")
    assert problems(layout) == [
        "deploy/systemd/incidentflow-web.service: no WorkingDirectory: wsgi:app is loaded "
        "from the project directory",
        "deploy/systemd/incidentflow-worker@.service: no WorkingDirectory: "
        "celery_worker:celery is loaded from the project directory",
    ]


def test_the_procfile_and_the_units_must_start_the_same_processes(layout: Path) -> None:
    edit(layout / UNITS_DIR / "incidentflow-worker@.service", "--concurrency 4", "--concurrency 8")
    assert problems(layout) == [
        "deploy/systemd/incidentflow-worker@.service: ExecStart and the Procfile's 'worker' "
        "differ in --concurrency=4, --concurrency=8"
    ]


def test_a_missing_or_wrong_process_is_named(layout: Path) -> None:
    procfile = layout / "Procfile"
    lines = procfile.read_text().splitlines()
    procfile.write_text("\n".join(line for line in lines if not line.startswith("beat:")))
    edit(procfile, "wsgi:app", "app:create_app()")
    # The Celery entry point as it was before celery_worker.py: not accepted any more.
    edit(procfile, "celery_worker:celery", "app.engine.celery_app:celery")
    (layout / UNITS_DIR / "incidentflow-beat.service").rename(
        layout / UNITS_DIR / "incidentflow-beat@.service"
    )
    assert problems(layout) == [
        "Procfile: 'web' does not run gunicorn wsgi:app",
        "Procfile: 'worker' does not run celery -A celery_worker:celery worker",
        "Procfile: no 'beat' process",
        # Beat runs once: a template unit (several instances) is not accepted.
        "deploy/systemd/incidentflow-beat.service: missing",
    ]


def test_a_malformed_procfile_is_reported_where(layout: Path) -> None:
    (layout / "Procfile").write_text("web: gunicorn wsgi:app\nweb: gunicorn wsgi:app\n")
    assert problems(layout) == ["Procfile: line 2 defines 'web' a second time"]
    (layout / "Procfile").unlink()
    assert problems(layout) == ["Procfile: missing"]
