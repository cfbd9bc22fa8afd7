"""Commands: ``flask templates install`` and ``flask secrets rotate``.

Registered by ``register(app)``, which ``app.cli.register_cli`` calls.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db

templates_cli = AppGroup("templates", help="Built-in workflow templates.")
secrets_cli = AppGroup("secrets", help="Workflow secrets (encrypted at rest).")


@templates_cli.command("install")
def install_templates() -> None:
    """Install the built-in templates that are missing (idempotent; retired ones stay retired)."""
    from app.workflows.templates_builtin import BUILTIN_TEMPLATES, install_builtin_templates

    created = install_builtin_templates()
    db.session.commit()
    if created:
        click.echo(f"Installed {created} of {len(BUILTIN_TEMPLATES)} built-in templates.")
    else:
        click.echo("The built-in templates are already installed; nothing changed.")


def keys_from_configuration() -> bool:
    """True when the keys come from INCIDENTFLOW_SECRET_KEYS, not the instance key file."""
    return bool(current_app.config.get("SECRET_KEYS"))


@secrets_cli.command("rotate")
def rotate_secrets() -> None:
    """Re-encrypt every workflow secret with the newest key.

    With the embedded default (keys in the instance folder) a new key is
    generated and put first, then everything is re-encrypted with it. With
    INCIDENTFLOW_SECRET_KEYS, put the new key first in that variable (keeping
    the old ones after it) before running this; the command only re-encrypts.
    """
    from app.workflows import secrets as secret_store

    if keys_from_configuration():
        click.echo(
            "Keys come from INCIDENTFLOW_SECRET_KEYS: re-encrypting with its first key. "
            "The new key must already be first in that variable, with the old keys after it."
        )
    else:
        secret_store.add_key_to_instance_file()
        key_file = Path(current_app.instance_path) / secret_store.KEY_FILE
        click.echo(f"Added a new key in front of the others in {key_file}.")
    try:
        count = secret_store.reencrypt_all()
    except secret_store.SecretKeyError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(
        f"Re-encrypted {count} secret{'s' if count != 1 else ''} with the newest key. "
        "Older keys can be removed once every process runs with the new key list."
    )


def register(app: Flask) -> None:
    app.cli.add_command(templates_cli)
    app.cli.add_command(secrets_cli)
