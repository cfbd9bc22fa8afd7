"""One blueprint convention: every feature's blueprint is defined in its ``blueprint.py``
(``app/<feature>/blueprint.py``), its view modules import it from there, and create_app
registers only blueprints defined there."""

from __future__ import annotations

import ast
from pathlib import Path

from app import create_app
from tests.support import ROOT


def blueprints_created_outside_blueprint_modules(root: Path) -> list[str]:
    """Each ``Blueprint(...)`` call (by any name it is imported as) outside a blueprint.py."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {"Blueprint"}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                names |= {
                    alias.asname or alias.name for alias in node.names if alias.name == "Blueprint"
                }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", None)
            if name in names and path.name != "blueprint.py":
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return offenders


def test_blueprints_are_created_only_in_blueprint_modules() -> None:
    assert blueprints_created_outside_blueprint_modules(ROOT / "app") == []


def test_a_blueprint_created_in_a_route_module_is_found(tmp_path: Path) -> None:
    package = tmp_path / "app" / "feature"
    package.mkdir(parents=True)
    (package / "blueprint.py").write_text(
        'from flask import Blueprint\nbp = Blueprint("f", __name__)\n'
    )
    (package / "routes.py").write_text(
        "import flask\nfrom flask import Blueprint as B\n\n"
        'one = B("g", __name__)\ntwo = flask.Blueprint("h", __name__)\n'
    )
    assert blueprints_created_outside_blueprint_modules(tmp_path / "app") == [
        "app/feature/routes.py:4",
        "app/feature/routes.py:5",
    ]


def test_create_app_registers_only_blueprints_from_blueprint_modules(tmp_path: Path) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
        }
    )
    # A Blueprint's import_name is the ``__name__`` of the module that created it.
    defined_in = {name: blueprint.import_name for name, blueprint in app.blueprints.items()}
    assert [module for module in defined_in.values() if not module.endswith(".blueprint")] == []
    # Every blueprint keeps its name, so every endpoint (``home.index``, ...) keeps its name.
    assert defined_in.keys() == {
        "auth",
        "admin",
        "profile",
        "home",
        "incidents",
        "workflows",
        "runs",
        "api",
        "ops",
    }
