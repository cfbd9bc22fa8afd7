"""Stored drafts: each user's unsaved edits to a workflow (``WorkflowDraft`` rows).

A draft is the whole definition as the user is shaping it, stored per (workflow,
user) so that it survives a reload and a second browser tab. It starts as a copy
of the current version (``base_version``) and may be invalid while work is in
progress; only saving it as a new version requires the schema's approval, and
saving a draft based on an older version than the current one is refused.

This module finds, creates, saves and discards drafts, fingerprints their content
(``revision_of``) and compares them with the current version (``differences``).
Changing a draft's definition is ``edits.py``; what is wrong with it, ``checks.py``.

Credentials never enter a draft's definition: what a user types into a secret
input waits, encrypted, in the draft's ``pending_secrets`` (:func:`store_credentials`)
and the definition refers to it as ``{{ secrets.<name> }}``. Only saving the
draft as a version makes it the workflow's secret (:func:`save`): until then the
versions that run keep the secrets they have, and discarding the draft drops it.

Functions flush and never commit; the editor's routes own the transaction.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.auth.models import User
from app.definition import format_loc
from app.errors import Conflict, InvalidInput
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.drafts.parts import Json, draft_edges, draft_nodes, node_label
from app.workflows.forms.base import Credential
from app.workflows.models import Workflow, WorkflowDraft, WorkflowVersion

__all__ = [
    "current_draft",
    "differences",
    "discard",
    "find_draft",
    "has_changes",
    "is_stale",
    "is_stored",
    "load_draft",
    "pending_names",
    "rebase",
    "revision_of",
    "save",
    "store_credentials",
]

# --- finding and creating drafts ---------------------------------------------------


def find_draft(user: User, workflow: Workflow, *, for_update: bool = False) -> WorkflowDraft | None:
    query = sa.select(WorkflowDraft).where(
        WorkflowDraft.workflow_id == workflow.id, WorkflowDraft.user_id == user.id
    )
    if for_update:
        query = query.with_for_update()
    draft: WorkflowDraft | None = db.session.scalars(query).first()
    return draft


def _fresh(user: User, workflow: Workflow) -> WorkflowDraft:
    return WorkflowDraft(
        workflow_id=workflow.id,
        user_id=user.id,
        base_version=workflow.version,
        definition=copy.deepcopy(workflow.definition),
    )


def current_draft(user: User, workflow: Workflow) -> WorkflowDraft:
    """The user's stored draft, or an unstored copy of the current version.

    A stored draft that is based on an older version but holds no edits is
    dropped: there is nothing to lose, so it simply follows the new version.
    """
    draft = find_draft(user, workflow)
    if draft is None:
        return _fresh(user, workflow)
    if is_stale(draft, workflow):
        base = db.session.scalar(
            sa.select(WorkflowVersion.definition).where(
                WorkflowVersion.workflow_id == workflow.id,
                WorkflowVersion.version == draft.base_version,
            )
        )
        if base is not None and _same(base, draft.definition) and not draft.pending_secrets:
            db.session.delete(draft)
            db.session.flush()
            return _fresh(user, workflow)
    return draft


def load_draft(user: User, workflow: Workflow) -> WorkflowDraft:
    """The user's draft for changing, created from the current version when missing."""
    draft = find_draft(user, workflow, for_update=True)
    if draft is not None:
        return draft
    draft = _fresh(user, workflow)
    db.session.add(draft)
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(
            "Your draft was started in another tab at the same moment; try again."
        ) from error
    return draft


def is_stored(draft: WorkflowDraft) -> bool:
    return bool(sa.inspect(draft).persistent)


def is_stale(draft: WorkflowDraft, workflow: Workflow) -> bool:
    """True when a version newer than the draft's base has been saved."""
    return draft.base_version != workflow.version


def _without_enabled(definition: Mapping[str, Any]) -> Json:
    # Enabling changes the stored definition's settings.enabled without a new
    # version, and the editor never changes it; it is no edit.
    data = dict(definition)
    settings = data.get("settings")
    if isinstance(settings, Mapping):
        data["settings"] = {k: v for k, v in settings.items() if k != "enabled"}
    for key in ("id", "version"):
        data.pop(key, None)
    return data


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _without_enabled(a) == _without_enabled(b)


def revision_of(definition: Mapping[str, Any]) -> str:
    """A short fingerprint of a draft's content, posted back by every form that changes it.

    A form whose revision is no longer the draft's was rendered before another tab
    (or request) changed the draft; its edits are merged field by field, and where
    both sides changed the same field the apply is refused (``merge_edits``).
    """
    text = json.dumps(_without_enabled(definition), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def has_changes(draft: WorkflowDraft, workflow: Workflow) -> bool:
    return is_stored(draft) and (
        bool(draft.pending_secrets) or not _same(draft.definition, workflow.definition)
    )


def discard(draft: WorkflowDraft) -> None:
    if is_stored(draft):
        db.session.delete(draft)
        db.session.flush()


def rebase(draft: WorkflowDraft, workflow: Workflow) -> None:
    """Keep the draft's edits but base them on the current version (they replace it on save)."""
    draft.base_version = workflow.version
    draft.definition = {**draft.definition, "version": workflow.version}
    db.session.flush()


def save(
    user: User, workflow: Workflow, draft: WorkflowDraft, change_note: str | None
) -> WorkflowVersion:
    """Save the draft as the next version and drop it.

    Raises Conflict (draft kept) when the workflow moved on since the draft's
    base version, DefinitionInvalid when the schema rejects it, and
    InvalidInput when nothing changed. Placeholders left to fill do not stop a
    save (work in progress may be kept); enabling refuses them.
    """
    service.require_edit(user, workflow)
    if not is_stored(draft) or (not is_stale(draft, workflow) and not has_changes(draft, workflow)):
        raise InvalidInput.at(
            "changeNote", f"There are no changes to save; this is version {workflow.version}."
        )
    for name, token in sorted((draft.pending_secrets or {}).items()):
        secret_store.adopt_encrypted(workflow, name, token, actor=user)
    version = service.save_version(
        user,
        workflow,
        draft.definition,
        base_version=draft.base_version,
        change_note=change_note,
    )
    db.session.delete(draft)
    db.session.flush()
    return version


def store_credentials(
    draft: WorkflowDraft, credentials: Iterable[Credential], *, actor: User | None = None
) -> None:
    """Keep typed credentials with the draft, encrypted, until it is saved (all or none).

    Raises InvalidInput located at the credential's place in the node's data;
    the message never contains the value.
    """
    credentials = list(credentials)
    for credential in credentials:
        if len(credential.value) > secret_store.MAX_SECRET_LENGTH:
            raise InvalidInput.at(
                format_loc(("data", *credential.loc)),
                f"A secret can be at most {secret_store.MAX_SECRET_LENGTH:,} characters.",
            )
    if credentials:
        draft.pending_secrets = {
            **(draft.pending_secrets or {}),
            **{c.secret_name: secret_store.encrypt(c.value) for c in credentials},
        }
        db.session.flush()


def pending_names(draft: WorkflowDraft) -> list[str]:
    """Secrets typed in this draft that its save will store."""
    return sorted(draft.pending_secrets or {})


# --- comparing with the current version ------------------------------------------------


def differences(draft: Mapping[str, Any], current: Mapping[str, Any], version: int) -> list[str]:
    """What differs between a draft and the current version, in a few plain lines."""
    lines: list[str] = []
    mine = {str(n.get("id")): n for n in draft_nodes(draft)}
    theirs = {str(n.get("id")): n for n in draft_nodes(current)}
    for node_id, node in mine.items():
        if node_id not in theirs:
            lines.append(f"Your draft has '{node_label(node)}', which v{version} does not.")
        elif node.get("data") != theirs[node_id].get("data"):
            lines.append(f"'{node_label(node)}' differs between your draft and v{version}.")
    for node_id, node in theirs.items():
        if node_id not in mine:
            lines.append(f"v{version} has '{node_label(node)}', which your draft does not.")

    def connections(definition: Mapping[str, Any]) -> set[tuple[Any, Any, Any]]:
        return {
            (e.get("source"), e.get("target"), e.get("sourceHandle"))
            for e in draft_edges(definition)
        }

    if connections(draft) != connections(current):
        lines.append(f"The connections between nodes differ from v{version}.")
    if draft.get("trigger") != current.get("trigger"):
        lines.append(f"The trigger settings differ from v{version}.")
    if _without_enabled({k: draft.get(k) for k in ("name", "description", "settings")}) != (
        _without_enabled({k: current.get(k) for k in ("name", "description", "settings")})
    ):
        lines.append(f"The name, description or time limit differ from v{version}.")
    return lines
