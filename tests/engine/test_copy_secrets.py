"""Copying secrets on purpose: duplicating a workflow, or using a template saved from one,
can copy its secrets (never shown, each audited) instead of asking for every value again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.auth.tokens import create_token
from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.errors import InvalidInput
from app.extensions import db
from app.ops.models import AuditEntry
from app.workflows import secrets as secret_store
from app.workflows import service as workflows
from app.workflows.models import Workflow
from tests.builders import webhook
from tests.conftest import csrf_token_from as csrf
from tests.support import drain, runs_of

TOKEN = "c0py-me-Bearer-Xk29"
SIGNING = "signing-Value-77q"


@pytest.fixture(autouse=True)
def allow_loopback(app):
    """The receiver lives on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


@pytest.fixture
def original(responder, webhook_receiver, make_enabled_workflow) -> Workflow:
    """A team workflow whose webhook sends two secrets."""
    return make_enabled_workflow(
        definition(
            [
                trigger_node(),
                webhook(
                    "hook",
                    webhook_receiver.url + "/hook",
                    body='{"sig": "{{ secrets.signing }}"}',
                    auth={"type": "bearer", "token": "{{ secrets.api_token }}"},
                ),
            ],
            [edge("start", "hook")],
            trigger_config("incident_created"),
        ),
        team=responder.team,
        secrets={"api_token": TOKEN, "signing": SIGNING},
    )


def copied_audit(workflow: Workflow) -> list[str]:
    return sorted(
        entry.details["name"]
        for entry in db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.workflow_id == workflow.id, AuditEntry.action == "secret.copied"
            )
        )
    )


def no_value_in(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and SIGNING not in text


def test_a_duplicate_with_its_secrets_runs_with_them(
    app, client, sign_in, admin, responder, worker, webhook_receiver, original, open_incident
) -> None:
    original.is_enabled = False  # only the copy runs
    db.session.commit()
    sign_in(responder.email)
    page = client.get(f"/workflows/{original.id}/duplicate").text
    assert 'name="copy_secrets"' in page and "api_token, signing" in page
    response = client.post(
        f"/workflows/{original.id}/duplicate",
        data={
            "csrf_token": csrf(page),
            "name": "Copy with secrets",
            "owner": responder.team.id,
            "copy_secrets": "y",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Secrets copied: api_token, signing." in response.text
    copy = db.session.scalar(sa.select(Workflow).where(Workflow.name == "Copy with secrets"))
    assert secret_store.secret_names(copy) == ["api_token", "signing"]
    assert copied_audit(copy) == ["api_token", "signing"]
    secrets_page = client.get(f"/workflows/{copy.id}/secrets").text
    assert "Missing" not in secrets_page
    no_value_in(page, response.text, secrets_page)

    workflows.set_enabled(responder, copy, True)  # nothing missing: it may be enabled
    db.session.commit()
    open_incident()
    drain(worker)
    (run,) = runs_of(copy)
    assert run.status == "COMPLETED", run.error
    assert webhook_receiver.last.header("Authorization") == f"Bearer {TOKEN}"
    assert webhook_receiver.last.json() == {"sig": SIGNING}
    no_value_in(client.get(f"/runs/{run.id}").text)
    sign_in(admin.email)
    audit_page = client.get("/admin/audit?action=secret.copied").text
    assert audit_page.count("Secret copied") >= 2
    no_value_in(audit_page)


def test_a_duplicate_without_its_secrets_lists_them_as_missing(
    app, client, sign_in, responder, original
) -> None:
    sign_in(responder.email)
    page = client.get(f"/workflows/{original.id}/duplicate").text
    response = client.post(
        f"/workflows/{original.id}/duplicate",
        data={"csrf_token": csrf(page), "name": "Bare copy", "owner": responder.team.id},
        follow_redirects=True,
    )
    assert "Secrets to add before enabling: api_token, signing." in response.text
    copy = db.session.scalar(sa.select(Workflow).where(Workflow.name == "Bare copy"))
    assert secret_store.secret_names(copy) == [] and copied_audit(copy) == []
    secrets_page = client.get(f"/workflows/{copy.id}/secrets").text
    assert "Missing: api_token, signing." in secrets_page
    with pytest.raises(InvalidInput):
        workflows.set_enabled(responder, copy, True)


def test_a_template_saved_from_a_workflow_offers_its_secrets_to_its_editors(
    app, client, sign_in, admin, responder, make_user, make_team, original
) -> None:
    template = workflows.save_as_template(admin, original, "Communication", name="Hook tpl")
    db.session.commit()
    assert template.template_source_id == original.id
    assert secret_store.secret_names(template) == []

    sign_in(responder.email)
    page = client.get(f"/workflows/templates/{template.id}/use").text
    assert 'name="copy_secrets"' in page
    response = client.post(
        f"/workflows/templates/{template.id}/use",
        data={
            "csrf_token": csrf(page),
            "name": "From the template",
            "owner": responder.team.id,
            "copy_secrets": "y",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    made = db.session.scalar(sa.select(Workflow).where(Workflow.name == "From the template"))
    assert secret_store.secret_names(made) == ["api_token", "signing"]
    assert copied_audit(made) == ["api_token", "signing"]
    assert secret_store.decrypt_for_request(made.id) == {"api_token": TOKEN, "signing": SIGNING}
    no_value_in(page, response.text)

    # Someone outside the original's team may use the template, but not take its secrets.
    other_team = make_team("Search")
    outsider = make_user("outsider@example.com", teams=[other_team])
    sign_in(outsider.email)
    page = client.get(f"/workflows/templates/{template.id}/use").text
    assert 'name="copy_secrets"' not in page
    refused = client.post(
        f"/workflows/templates/{template.id}/use",
        data={
            "csrf_token": csrf(page),
            "name": "Sneaky",
            "owner": other_team.id,
            "copy_secrets": "y",
        },
    )
    assert refused.status_code == 403
    assert db.session.scalar(sa.select(Workflow).where(Workflow.name == "Sneaky")) is None


def test_copy_secrets_over_the_api(app, client, admin, responder, original) -> None:
    template = workflows.save_as_template(admin, original, "Communication", name="Hook tpl")
    db.session.commit()
    _, token = create_token(responder, "copy")
    db.session.commit()
    response = client.post(
        f"/api/v1/templates/{template.id}/use",
        headers={"Authorization": f"Bearer {token}"},
        json={"teamId": responder.team.id, "name": "Via API", "copySecrets": True},
    )
    assert response.status_code == 201, response.get_json()
    no_value_in(response.text)
    made = db.session.get(Workflow, response.get_json()["id"])
    assert secret_store.secret_names(made) == ["api_token", "signing"]
    assert copied_audit(made) == ["api_token", "signing"]
