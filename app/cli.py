"""Command-line commands: ``flask demo load``, ``flask workflows export-schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db

SCHEMA_PATH = Path("static") / "schema" / "workflow-definition.schema.json"

demo_cli = AppGroup("demo", help="Demo data for trying IncidentFlow.")
workflows_cli = AppGroup("workflows", help="Workflow definitions.")


@demo_cli.command("load")
def demo_load() -> None:
    """Create the demo admin, teams, members and incidents (idempotent).

    The demo password is INCIDENTFLOW_DEMO_PASSWORD if set, otherwise generated
    and printed once, when the users are created.
    """
    from app.demo import ADMIN_EMAIL, load_demo_data
    from app.workflows.templates_builtin import install_builtin_templates

    chosen = current_app.config.get("DEMO_PASSWORD") or None
    result = load_demo_data(chosen)
    templates = install_builtin_templates()
    db.session.commit()
    if templates:
        click.echo(f"Installed {templates} built-in workflow templates.")
    if result.created:
        click.echo(f"Demo data: created {len(result.created)} objects.")
    else:
        click.echo("Demo data already present; nothing changed.")
    if result.password and not chosen:
        click.echo(f"Sign in as {ADMIN_EMAIL} with password: {result.password}")
        click.echo("(shown once; every demo user has this password)")


def schema_document() -> str:
    from app.definition import definition_json_schema

    return json.dumps(definition_json_schema(), indent=2, sort_keys=True) + "\n"


@workflows_cli.command("export-schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the JSON Schema (default: the copy the app serves). '-' for stdout.",
)
@click.option("--check", is_flag=True, help="Fail if the served copy is out of date.")
def export_schema(output: Path | None, check: bool) -> None:
    """Write the JSON Schema of a workflow definition."""
    from app import PROJECT_ROOT

    document = schema_document()
    target = output or Path(PROJECT_ROOT) / SCHEMA_PATH
    if check:
        if not target.exists() or target.read_text(encoding="utf-8") != document:
            raise click.ClickException(
                f"{target} is out of date; run 'flask workflows export-schema'."
            )
        click.echo(f"{target} is up to date.")
        return
    if str(output) == "-":
        click.echo(document, nl=False)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(document, encoding="utf-8")
    click.echo(f"Wrote {target}")


def register_cli(app: Flask) -> None:
    from app.engine.cli import worker_cli
    from app.ops.deploy import deploy_cli
    from app.workflows.cli import register as register_workflow_cli

    app.cli.add_command(demo_cli)
    app.cli.add_command(workflows_cli)
    app.cli.add_command(worker_cli)
    app.cli.add_command(deploy_cli)
    register_workflow_cli(app)
