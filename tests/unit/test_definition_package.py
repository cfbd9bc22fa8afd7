"""The definition package sits below the features that store and run definitions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from app.definition import WorkflowSettings
from app.definition.limits import RUN_TIMEOUTS_MS
from app.definition.models import RunTimeout
from app.workflows.forms.panels import TIMEOUT_CHOICES

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "definition"
# Leaf modules of enumerations (they import nothing from the app).
ALLOWED_OUTSIDE = {"app.workflows.enums", "app.incidents.enums"}


def imported_app_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("app")}
    return found


def test_the_definition_package_imports_no_feature_package() -> None:
    outside = {
        (path.name, module)
        for path in PACKAGE.glob("*.py")
        for module in imported_app_modules(path)
        if not module.startswith("app.definition") and module not in ALLOWED_OUTSIDE
    }
    assert outside == set()


def test_the_enumerations_it_uses_are_leaves() -> None:
    root = PACKAGE.parent
    for module in ALLOWED_OUTSIDE:
        path = root.parent / (module.replace(".", "/") + ".py")
        assert imported_app_modules(path) == set(), module


def test_run_timeouts_are_defined_once() -> None:
    assert set(get_args(RunTimeout)) == set(RUN_TIMEOUTS_MS)
    assert [choice.value for choice in TIMEOUT_CHOICES] == list(RUN_TIMEOUTS_MS)
    assert WorkflowSettings.model_fields["timeout"].annotation == RunTimeout
