"""Workflow secrets: encrypted at rest with rotatable keys, write-only everywhere.

Keys are Fernet keys, newest first, from ``INCIDENTFLOW_SECRET_KEYS``
(comma-separated) or, for the embedded default, the file ``secret_keys`` in the
instance folder (generated on first use). Encryption always uses the newest key;
decryption tries each, so rotation is: add a key in front, then re-encrypt.

Values are decrypted in exactly one place, :func:`name_and_secrets` (and
:func:`decrypt_for_request`, its secrets), which the engine calls just before it
builds a run's requests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.ops import audit
from app.ops.models import AuditAction
from app.workflows.models import Workflow, WorkflowActionSecret, WorkflowDraft
from app.workflows.schema import SECRET_NAME_RE, parse_definition, referenced_secrets

if TYPE_CHECKING:
    from app.auth.models import User

KEY_FILE = "secret_keys"
MAX_SECRET_LENGTH = 8192


class SecretKeyError(RuntimeError):
    """The configured keys cannot decrypt a stored secret."""


def _key_file() -> Path:
    return Path(current_app.instance_path) / KEY_FILE


def configured_keys() -> list[bytes]:
    """The Fernet keys, newest first."""
    configured = current_app.config.get("SECRET_KEYS")
    if configured:
        keys = [k.strip().encode() for k in str(configured).split(",") if k.strip()]
        if keys:
            return keys
    path = _key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(Fernet.generate_key().decode() + "\n")
    return [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]


def cipher() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in configured_keys()])
    except ValueError as error:
        raise SecretKeyError(
            "A secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)."
        ) from error


def encrypt(value: str) -> str:
    return cipher().encrypt(value.encode("utf-8")).decode("ascii")


def _decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as error:
        raise SecretKeyError(
            "A stored secret cannot be decrypted with the configured keys."
        ) from error


def secret_names(workflow: Workflow) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(WorkflowActionSecret.name)
            .where(WorkflowActionSecret.workflow_id == workflow.id)
            .order_by(WorkflowActionSecret.name)
        )
    )


def set_secret(
    workflow: Workflow, name: str, value: str, *, actor: User | None = None
) -> WorkflowActionSecret:
    """Add or replace a secret. The value is encrypted before it reaches the session."""
    name = name.strip()
    if not SECRET_NAME_RE.fullmatch(name):
        raise InvalidInput.at(
            "name",
            "Secret names are 1 to 64 lowercase letters, digits or '_', starting with a letter.",
        )
    if not value or len(value) > MAX_SECRET_LENGTH:
        raise InvalidInput.at("value", f"Enter a value of 1 to {MAX_SECRET_LENGTH} characters.")
    secret = db.session.scalar(
        sa.select(WorkflowActionSecret).where(
            WorkflowActionSecret.workflow_id == workflow.id, WorkflowActionSecret.name == name
        )
    )
    # The audit entry names the secret; its value is never recorded.
    audit.record(actor, AuditAction.SECRET_SET, workflow, name=name, replaced=secret is not None)
    if secret is None:
        secret = WorkflowActionSecret(workflow_id=workflow.id, name=name, value_hash="")
        db.session.add(secret)
    secret.value_hash = encrypt(value)
    db.session.flush()
    return secret


def adopt_encrypted(
    workflow: Workflow, name: str, token: str, *, actor: User | None = None
) -> None:
    """Make a value encrypted earlier (a draft's pending secret) the workflow's secret."""
    secret = db.session.scalar(
        sa.select(WorkflowActionSecret).where(
            WorkflowActionSecret.workflow_id == workflow.id, WorkflowActionSecret.name == name
        )
    )
    audit.record(actor, AuditAction.SECRET_SET, workflow, name=name, replaced=secret is not None)
    if secret is None:
        secret = WorkflowActionSecret(workflow_id=workflow.id, name=name, value_hash="")
        db.session.add(secret)
    secret.value_hash = token
    db.session.flush()


def delete_secret(workflow: Workflow, name: str, *, actor: User | None = None) -> None:
    """Delete a secret; refused while the workflow is enabled and a node uses it."""
    secret = db.session.scalar(
        sa.select(WorkflowActionSecret).where(
            WorkflowActionSecret.workflow_id == workflow.id, WorkflowActionSecret.name == name
        )
    )
    if secret is None:
        raise NotFound("No such secret.")
    if workflow.is_enabled:
        definition = parse_definition(workflow.definition)
        users = referenced_secrets(definition).get(name)
        if users:
            names = {node.id: node.data.name for node in definition.nodes}
            steps = ", ".join(names[node_id] for node_id in users)
            raise Conflict(
                f"Secret {name} is used by {steps} and the workflow is enabled. Disable the "
                "workflow or change those steps first, or replace the secret's value instead."
            )
    audit.record(actor, AuditAction.SECRET_DELETED, workflow, name=name)
    db.session.delete(secret)
    db.session.flush()


def copy_secrets(source: Workflow, target: Workflow, *, actor: User | None = None) -> list[str]:
    """Give ``target`` every secret of ``source`` (the caller has checked the actor may).

    The encrypted values are copied as they are: nothing is decrypted, and no value
    reaches a page, a response or the log. One audit entry per secret, on the target,
    naming it and where it came from. Returns the names copied.
    """
    existing = set(secret_names(target))
    copied = []
    for secret in db.session.scalars(
        sa.select(WorkflowActionSecret)
        .where(WorkflowActionSecret.workflow_id == source.id)
        .order_by(WorkflowActionSecret.name)
    ):
        if secret.name in existing:
            continue
        db.session.add(
            WorkflowActionSecret(
                workflow_id=target.id, name=secret.name, value_hash=secret.value_hash
            )
        )
        audit.record(
            actor,
            AuditAction.SECRET_COPIED,
            target,
            name=secret.name,
            source_workflow_id=source.id,
            source_name=source.name,
        )
        copied.append(secret.name)
    db.session.flush()
    return copied


def decrypt_for_request(workflow_id: str) -> dict[str, str]:
    """Every secret of a workflow in plain text: for building a request, nothing else."""
    return name_and_secrets(workflow_id)[1]


_NAME_AND_SECRETS = (
    sa.select(Workflow.name, WorkflowActionSecret.name, WorkflowActionSecret.value_hash)
    .outerjoin(WorkflowActionSecret, WorkflowActionSecret.workflow_id == Workflow.id)
    .where(Workflow.id == sa.bindparam("workflow_id"))
)


def name_and_secrets(workflow_id: str) -> tuple[str, dict[str, str]]:
    """A workflow's name and its secrets in plain text, in one query (what a run's
    requests need; decrypted for building them, nothing else)."""
    rows = db.session.execute(_NAME_AND_SECRETS, {"workflow_id": workflow_id}).all()
    name = rows[0][0] if rows else ""
    return name, {secret: _decrypt(token) for _, secret, token in rows if secret is not None}


def reencrypt_all() -> int:
    """Re-encrypt every secret (and every draft's pending one) with the newest key
    (after adding one). Returns the count."""
    keys = cipher()
    count = 0
    for secret in db.session.scalars(sa.select(WorkflowActionSecret)):
        try:
            secret.value_hash = keys.rotate(secret.value_hash.encode("ascii")).decode("ascii")
        except InvalidToken as error:
            raise SecretKeyError(
                f"Secret {secret.name!r} of workflow {secret.workflow_id} cannot be decrypted "
                "with any configured key; nothing was re-encrypted."
            ) from error
        count += 1
    # Credentials typed in the editor and not saved yet are encrypted with the same keys.
    for draft in db.session.scalars(
        sa.select(WorkflowDraft).where(WorkflowDraft.pending_secrets.is_not(None))
    ):
        pending = dict(draft.pending_secrets or {})
        try:
            draft.pending_secrets = {
                name: keys.rotate(token.encode("ascii")).decode("ascii")
                for name, token in pending.items()
            }
        except InvalidToken as error:
            raise SecretKeyError(
                f"A secret typed in a draft of workflow {draft.workflow_id} cannot be "
                "decrypted with any configured key; nothing was re-encrypted."
            ) from error
        count += len(pending)
    db.session.flush()
    return count


def add_key_to_instance_file() -> None:
    """Put a freshly generated key first in the instance key file."""
    path = _key_file()
    existing = configured_keys() if path.exists() else []
    path.write_text("\n".join(k.decode() for k in [Fernet.generate_key(), *existing]) + "\n")
    os.chmod(path, 0o600)
