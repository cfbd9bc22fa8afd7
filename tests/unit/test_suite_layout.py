"""The suite's own layout: shared code lives in support modules (tests/support.py,
tests/builders.py, tests/page_support.py), fixture plugins (tests/fixtures/) and the root
tests/conftest.py (the suite's configuration: app settings, CSRF and service helpers), so
no test module and no folder's conftest is imported by another file."""

from __future__ import annotations

import ast

from tests.support import ROOT


def test_no_test_module_or_conftest_is_imported() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                last = module.rsplit(".", 1)[-1]
                folder_conftest = last == "conftest" and module != "tests.conftest"
                if module.startswith("tests.") and (last.startswith("test_") or folder_conftest):
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []
