"""Secrets that come back escaped, encoded or inside basic auth are scrubbed from what a
run stores and shows, and scrubbed before anything is clipped."""

from __future__ import annotations

import html

import pytest

from app.definition.builders import definition, edge, trigger_config, trigger_node
from app.engine.scrub import basic_credentials
from tests.builders import attempts_of, webhook
from tests.fakes.servers import Reply
from tests.support import drain, runs_of, spellings

PASSWORD = 'p"ä\\ss/wörd+&=?x 9Zq'
TOKEN = "tok-7f3a9c2e5b1d"


@pytest.fixture(autouse=True)
def allow_loopback(app):
    """The receiver lives on 127.0.0.1, which the guard refuses by default."""
    app.config["OUTBOUND_ALLOW"] = "127.0.0.1"


def leaks(text: str) -> list[str]:
    """The spellings of the secrets (and their first characters) found in ``text``."""
    found = []
    forms = {
        **spellings(PASSWORD),
        **{f"token {k}": v for k, v in spellings(TOKEN).items()},
        "basic pair": basic_credentials("svc", PASSWORD),
        "password start": PASSWORD[:5],
        "token start": TOKEN[:5],
    }
    for name, form in forms.items():
        if form in text or html.escape(form) in text:
            found.append(name)
    return found


def test_escaped_encoded_and_basic_auth_forms_never_reach_rows_or_pages(
    app, client, sign_in, responder, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    node = webhook(
        "hook",
        webhook_receiver.url + "/hook",
        body='{"ok": true}',
        attempts=1,
        auth={"type": "basic", "username": "svc", "password": "{{ secrets.password }}"},
    )
    workflow = make_enabled_workflow(
        definition([trigger_node(), node], [edge("start", "hook")], trigger_config()),
        secrets={"password": PASSWORD},
    )
    # A careless API answers 500, echoing the credentials in every spelling; the first
    # one straddles the 300-character cut of the error message's snippet.
    forms = spellings(PASSWORD)
    echo = "x" * 296 + PASSWORD + " | " + " | ".join(forms.values())
    echo += " | Authorization: Basic " + basic_credentials("svc", PASSWORD)
    webhook_receiver.reply(Reply(status=500, body=echo, headers={"Content-Type": "text/plain"}))

    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED"
    assert webhook_receiver.last.header("Authorization") == (
        f"Basic {basic_credentials('svc', PASSWORD)}"
    )
    (attempt,) = attempts_of(run)
    stored = f"{attempt.response!r} {attempt.error!r} {attempt.request!r} {run.error!r}"
    stored += repr(run.completed_nodes)
    assert "answered 500" in attempt.error and "[secret]" in stored
    assert leaks(stored) == []
    sign_in(responder.email)
    page = client.get(f"/runs/{run.id}")
    assert page.status_code == 200 and "answered 500" in page.text
    assert leaks(page.text) == []


def test_a_url_is_scrubbed_before_the_error_message_clips_it(
    app, worker, webhook_receiver, make_enabled_workflow, open_incident
) -> None:
    # 112 characters before the secret; the message keeps 117: five of it used to show.
    url = webhook_receiver.url + "/" + "{{ 'a' * " + str(111 - len(webhook_receiver.url)) + " }}"
    url += "{{ secrets.token }} has a space"
    node = webhook("hook", url, attempts=1)
    workflow = make_enabled_workflow(
        definition([trigger_node(), node], [edge("start", "hook")], trigger_config()),
        secrets={"token": TOKEN},
    )
    open_incident()
    drain(worker)
    (run,) = runs_of(workflow)
    assert run.status == "FAILED" and "The URL rendered to" in run.error
    assert leaks(run.error) == [] and webhook_receiver.requests == []
