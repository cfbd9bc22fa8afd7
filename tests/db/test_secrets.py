"""The secrets panel (write-only values, usage, missing ones) and key rotation."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask

from app.definition.builders import chain, jira_node, webhook_node
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows.models import Workflow, WorkflowActionSecret
from tests.conftest import csrf_token_from

SECRET_VALUE = "Zq9-very-secret-Value-7781"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def cli_registered(app: Flask) -> None:
    """The workflow commands, registered as app.cli.register_cli does."""
    if "secrets" not in app.cli.commands:  # type: ignore[attr-defined]
        from app.workflows.cli import register

        register(app)


@pytest.fixture
def member(make_user, team, sign_in):
    """A member of ``team``, signed in."""
    user = make_user("member@example.com", teams=[team])
    sign_in(user.email)
    return user


def hook_with_secret(name: str = "hook_token") -> dict:
    return chain(
        webhook_node("notify", auth={"type": "bearer", "token": "{{ secrets." + name + " }}"})
    )


@pytest.fixture
def workflow(team, make_workflow):
    """A team workflow: trigger -> webhook (bearer hook_token) -> Jira issue."""
    definition = chain(
        webhook_node("notify", auth={"type": "bearer", "token": "{{ secrets.hook_token }}"}),
        jira_node("ticket"),
    )
    definition["nodes"][1]["data"]["name"] = "Notify the hook"
    return make_workflow(team=team, definition=definition)


def post_secret(client, workflow_id: str, htmx: bool = False, **data: str):
    page = client.get(f"/workflows/{workflow_id}/secrets").text
    return client.post(
        f"/workflows/{workflow_id}/secrets",
        data={"csrf_token": csrf_token_from(page), **data},
        headers=HTMX if htmx else {},
    )


def stored(workflow_id: str) -> dict[str, str]:
    db.session.expire_all()
    return dict(
        db.session.execute(
            sa.select(WorkflowActionSecret.name, WorkflowActionSecret.value_hash).where(
                WorkflowActionSecret.workflow_id == workflow_id
            )
        ).all()
    )


# --- the panel ----------------------------------------------------------------------


def test_the_panel_lists_secrets_with_the_steps_that_use_them_and_flags_missing_ones(
    client, member, workflow
):
    secret_store.set_secret(workflow, "hook_token", "x")
    secret_store.set_secret(workflow, "unused_one", "y")
    db.session.commit()
    page = client.get(f"/workflows/{workflow.id}/secrets").text
    rows = {
        re.search(r"<code>(\w+)</code>", row).group(1): row
        for row in re.findall(r"<tr[^>]*>.*?</tr>", page.split("<tbody>")[1], re.S)
    }
    assert set(rows) == {
        "hook_token",
        "unused_one",
        "jira_api_token",
        "jira_base_url",
        "jira_email",
    }
    assert "Notify the hook" in rows["hook_token"] and "Yes" in rows["hook_token"]
    assert "No step" in rows["unused_one"]
    assert "Missing" in rows["jira_email"] and "ticket" in rows["jira_email"]
    assert "Missing: jira_api_token, jira_base_url, jira_email." in page


def test_the_value_input_is_a_password_field_that_is_never_prefilled(client, member, workflow):
    page = client.get(f"/workflows/{workflow.id}/secrets").text
    value_input = re.search(r'<input id="secret-value"[^>]*>', page, re.S).group(0)
    assert 'type="password"' in value_input and "value=" not in value_input
    assert 'autocomplete="new-password"' in value_input
    assert '<label for="secret-value">Value</label>' in page


def test_a_secret_value_never_appears_in_a_page_a_row_or_a_log(
    app, client, member, workflow, caplog
):
    caplog.set_level(logging.DEBUG)
    responses = [
        post_secret(client, workflow.id, name="hook_token", value=SECRET_VALUE),
        post_secret(client, workflow.id, htmx=True, name="jira_email", value=SECRET_VALUE),
        post_secret(client, workflow.id, name="Bad Name!", value=SECRET_VALUE),
        post_secret(client, workflow.id, htmx=True, name="", value=SECRET_VALUE),
    ]
    assert [r.status_code for r in responses] == [303, 200, 422, 422]
    for path in (
        f"/workflows/{workflow.id}/secrets",
        "/workflows",
        f"/workflows/{workflow.id}/versions",
        f"/workflows/{workflow.id}/versions/1",
        f"/workflows/{workflow.id}/export",
    ):
        responses.append(client.get(path))
    for response in responses:
        assert SECRET_VALUE not in response.get_data(as_text=True)
    assert SECRET_VALUE not in caplog.text

    db.session.rollback()
    rows = stored(workflow.id)
    assert set(rows) == {"hook_token", "jira_email"}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                assert SECRET_VALUE not in repr(tuple(row)), table.name
    assert secret_store.decrypt_for_request(workflow.id) == {
        "hook_token": SECRET_VALUE,
        "jira_email": SECRET_VALUE,
    }


def test_bad_input_is_shown_next_to_its_field(client, member, workflow):
    response = post_secret(client, workflow.id, htmx=True, name="Bad Name!", value="v")
    assert response.status_code == 422 and "<html" not in response.text
    assert re.search(r'id="name-error"><p>Secret names are 1 to 64 lowercase', response.text)
    response = post_secret(client, workflow.id, htmx=True, name="ok_name", value="")
    assert re.search(r'id="value-error"><p>Enter a value', response.text)
    assert stored(workflow.id) == {}


def test_a_secret_added_without_htmx_redirects_back_to_the_secrets_page(client, member, workflow):
    response = post_secret(client, workflow.id, name="hook_token", value="v")
    assert response.status_code == 303
    assert response.location.endswith(f"/workflows/{workflow.id}/secrets")
    assert "Secret hook_token added." in client.get(response.location).text
    assert set(stored(workflow.id)) == {"hook_token"}


def test_replacing_a_secret_keeps_its_name_and_changes_its_value(client, member, workflow):
    post_secret(client, workflow.id, name="hook_token", value="first")
    response = post_secret(client, workflow.id, htmx=True, name="hook_token", value="second")
    assert "Secret hook_token replaced." in response.text
    db.session.rollback()
    assert secret_store.decrypt_for_request(workflow.id) == {"hook_token": "second"}


def test_deleting_a_secret_of_a_disabled_workflow(client, member, workflow):
    post_secret(client, workflow.id, name="hook_token", value="v")
    response = post_secret(client, workflow.id, htmx=True, delete="hook_token")
    assert response.status_code == 200 and "Secret hook_token deleted." in response.text
    assert stored(workflow.id) == {}
    assert post_secret(client, workflow.id, delete="hook_token").status_code == 404


def test_an_enabled_workflow_keeps_the_secrets_its_steps_use(client, member, team, make_workflow):
    workflow = make_workflow(team=team, definition=hook_with_secret())
    for name in ("hook_token", "spare"):
        secret_store.set_secret(workflow, name, "v")
    workflow = db.session.get(Workflow, workflow.id)
    workflow.is_enabled = True
    db.session.commit()
    refused = post_secret(client, workflow.id, htmx=True, delete="hook_token")
    assert refused.status_code == 409
    assert "hook_token is used by" in refused.text and "the workflow is enabled" in refused.text
    assert set(stored(workflow.id)) == {"hook_token", "spare"}
    allowed = post_secret(client, workflow.id, htmx=True, delete="spare")
    assert allowed.status_code == 200
    assert set(stored(workflow.id)) == {"hook_token"}


def test_members_see_but_cannot_change_a_global_workflows_secrets(client, member, make_workflow):
    workflow = make_workflow(definition=hook_with_secret())
    page = client.get(f"/workflows/{workflow.id}/secrets")
    assert page.status_code == 200 and "hook_token" in page.text
    assert 'id="secret-value"' not in page.text
    response = client.post(
        f"/workflows/{workflow.id}/secrets",
        data={"csrf_token": csrf_token_from(page.text), "name": "hook_token", "value": "v"},
    )
    assert response.status_code == 403
    assert stored(workflow.id) == {}


# --- keys ----------------------------------------------------------------------------


def test_the_embedded_key_is_generated_into_the_instance_folder(app, workflow):
    key_file = Path(app.instance_path) / secret_store.KEY_FILE
    assert not key_file.exists()
    secret_store.set_secret(workflow, "hook_token", "v")
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    Fernet(key_file.read_text().strip().encode())  # a valid key


def test_rotation_reencrypts_every_secret_with_a_new_key(
    app, runner, cli_registered, team, make_workflow
):
    first = make_workflow(team=team, definition=hook_with_secret())
    second = make_workflow(team=team, definition=hook_with_secret())
    secret_store.set_secret(first, "hook_token", "one")
    secret_store.set_secret(second, "hook_token", "two")
    secret_store.set_secret(second, "other", "three")
    db.session.commit()
    (old_key,) = secret_store.configured_keys()

    result = runner.invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 3 secrets with the newest key" in result.output

    keys = secret_store.configured_keys()
    assert len(keys) == 2 and keys[1] == old_key
    old_alone, new_alone = Fernet(old_key), Fernet(keys[0])
    tokens = stored(first.id) | {f"2-{k}": v for k, v in stored(second.id).items()}
    for token in tokens.values():
        with pytest.raises(InvalidToken):
            old_alone.decrypt(token.encode())
        new_alone.decrypt(token.encode())
    assert MultiFernet([Fernet(k) for k in keys]).decrypt(tokens["hook_token"].encode()) == b"one"
    assert secret_store.decrypt_for_request(second.id) == {"hook_token": "two", "other": "three"}


def test_rotation_with_keys_from_the_environment_only_reencrypts(
    app, runner, cli_registered, team, make_workflow, monkeypatch
):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app.config["SECRET_KEYS"] = old_key
    workflow = make_workflow(team=team, definition=hook_with_secret())
    secret_store.set_secret(workflow, "hook_token", "value")
    db.session.commit()

    app.config["SECRET_KEYS"] = f"{new_key},{old_key}"
    result = runner.invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "must already be first in that variable" in result.output
    assert not (Path(app.instance_path) / secret_store.KEY_FILE).exists()
    token = stored(workflow.id)["hook_token"].encode()
    assert Fernet(new_key.encode()).decrypt(token) == b"value"
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(token)


def test_rotation_fails_cleanly_when_a_secret_cannot_be_decrypted(
    app, runner, cli_registered, team, make_workflow, monkeypatch
):
    workflow = make_workflow(team=team, definition=hook_with_secret())
    secret_store.set_secret(workflow, "hook_token", SECRET_VALUE)
    db.session.commit()
    before = stored(workflow.id)
    app.config["SECRET_KEYS"] = Fernet.generate_key().decode()
    result = runner.invoke(args=["secrets", "rotate"])
    assert result.exit_code != 0
    assert "cannot be decrypted" in result.output and SECRET_VALUE not in result.output
    assert stored(workflow.id) == before
