"""The scrubber removes a secret in every spelling it comes back in, before any clip."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from app.engine.actions.base import PreparedRequest, ResponseData
from app.engine.scrub import REDACTED, Scrubber, basic_credentials, clip
from app.workflows.enums import ActionType
from tests.support import spellings

# Quotes, a backslash, a slash, non-ASCII, characters URLs and HTML escape.
SECRET = 'p"ä\\ss/wörd+&=?x 9Zq'


@pytest.mark.parametrize(("form", "spelled"), list(spellings(SECRET).items()))
def test_every_spelling_of_a_secret_is_scrubbed(form: str, spelled: str) -> None:
    text = f"before {spelled} after"
    assert Scrubber([SECRET]).text(text) == f"before {REDACTED} after", form


@pytest.mark.parametrize("user", ["", "a", "ab", "abc", "alice", "svc-deploy@example.com"])
def test_basic_auth_pairs_are_scrubbed_whatever_the_user_name(user: str) -> None:
    """base64(user:password) holds the password at any of three alignments."""
    header = f"Authorization: Basic {basic_credentials(user, SECRET)}"
    scrubbed = Scrubber([SECRET]).text(header)
    assert scrubbed.startswith("Authorization: Basic ") and scrubbed.endswith(REDACTED)
    # What is left encodes the user name (not a secret) and no bit of the password.
    kept = scrubbed[len("Authorization: Basic ") : -len(REDACTED)]
    user_only = base64.b64encode(f"{user}:".encode()).decode()
    assert user_only[: 8 * len(f"{user}:") // 6].startswith(kept), (kept, user_only)
    echoed = json.dumps({"seen": header})
    assert basic_credentials(user, SECRET)[4:-4] not in Scrubber([SECRET]).text(echoed)


def test_text_is_scrubbed_before_it_is_clipped() -> None:
    text = "x" * 95 + SECRET  # a clip at 100 would cut through the secret
    clipped = clip(text, 100, Scrubber([SECRET]))
    assert SECRET[:3] not in clipped and clipped.startswith("x" * 95)
    assert clip(text, 100).endswith(SECRET[:2] + "...")  # what scrubbing afterwards missed


def test_response_excerpts_and_snippets_are_scrubbed_before_the_cut() -> None:
    body = ("y" * (4096 - 4) + SECRET + " tail").encode()
    response = ResponseData(
        status_code=500,
        reason="Server Error",
        headers=httpx.Headers(),
        body=body,
        truncated=False,
        scrub_values=(SECRET,),
    )
    excerpt = response.excerpt()["body"]
    assert SECRET[:4] not in excerpt and SECRET[:4].encode() not in body[:4000]
    assert REDACTED[:4] in excerpt
    assert SECRET[:4] not in response.text(4096)


def test_a_request_preview_is_masked_before_it_is_clipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine.actions import base

    monkeypatch.setattr(base, "MAX_PREVIEW_BODY_CHARS", 100)
    prepared = PreparedRequest(
        action_type=ActionType.WEBHOOK,
        method="POST",
        url="https://hooks.example.com/",
        headers={},
        body=("z" * 97 + SECRET).encode(),
        target="hooks.example.com",
        secret_values=(SECRET,),
    )
    shown = prepared.masked()["body"]
    assert SECRET[:3] not in shown


def test_short_secrets_do_not_scrub_base64_by_chance() -> None:
    """Alignment cores are only used for secrets long enough to be told apart."""
    text = base64.b64encode(b"the quick brown fox").decode()
    assert Scrubber(["ab"]).text(text) == text
