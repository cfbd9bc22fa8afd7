"""The one place stored and logged engine output is scrubbed of secret values.

A secret can come back in other spellings than its own: escaped inside a JSON
string (quotes, backslashes, ``\\uXXXX`` for non-ASCII), URL-encoded, in base64,
or inside a longer base64 text such as basic auth's ``base64(user:password)``.
Every one of them is replaced. Text is scrubbed before it is clipped
(:func:`clip`): a clip that cut through a secret would leave its first
characters behind, in no form the scrubber knows.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[secret]"
# Even a one-character secret is scrubbed: a short secret is still a secret.
MIN_LENGTH = 1
#: Secrets that are addresses, not credentials: scrubbing them would break results.
NOT_CREDENTIALS = frozenset({"jira_base_url"})
# A base64 text holding a secret at an unknown offset is matched by the part of
# its encoding that only the secret decides; shorter parts would match by chance.
_MIN_BASE64_CORE = 6
_BASE64_CHAR = "[A-Za-z0-9+/_-]"


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _upper_unicode_escapes(text: str) -> str:
    return re.sub(r"\\u[0-9a-f]{4}", lambda m: "\\u" + m.group(0)[2:].upper(), text)


def _forms(secret: str) -> set[str]:
    """The exact spellings a secret may take in a request, a response or a message."""
    forms = {secret, html.escape(secret), html.escape(secret, quote=False)}
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms |= {escaped, escaped.replace("/", "\\/"), _upper_unicode_escapes(escaped)}
        # JSON inside a JSON string: escaped twice.
        forms.add(json.dumps(escaped)[1:-1])
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms |= {encoded, _lower_percent(encoded)}
    raw = secret.encode()
    for encoded_bytes in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        encoded = encoded_bytes.decode()
        forms |= {encoded, encoded.rstrip("=")}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _base64_cores(secret: str) -> set[str]:
    """What a secret's bytes encode to inside any base64 text, at each of the three
    alignments: ``base64(user + ":" + secret)`` contains one of these."""
    raw = secret.encode()
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Character i encodes bits [6i, 6i + 6): keep those that lie inside the secret.
        start = -(-8 * shift // 6)
        end = 8 * (shift + len(raw)) // 6
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64_CORE:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def basic_credentials(username: str, password: str) -> str:
    """The Authorization value basic auth sends, to be scrubbed like a secret."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


class Scrubber:
    """Replaces every secret value (and its escaped and encoded spellings) with a marker."""

    def __init__(self, secrets: Iterable[str], *, marker: str = REDACTED) -> None:
        forms: set[str] = set()
        cores: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= _forms(secret)
                cores |= _base64_cores(secret)
        self.marker = marker
        # Longest first, so a secret containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)
        # A core takes the base64 characters next to it along: they mix in bits of it.
        self._cores = (
            re.compile(
                f"{_BASE64_CHAR}{{0,2}}(?:"
                + "|".join(re.escape(core) for core in sorted(cores, key=len, reverse=True))
                + f"){_BASE64_CHAR}{{0,3}}={{0,2}}"
            )
            if cores
            else None
        )

    def text(self, value: str) -> str:
        for form in self._forms:
            if form in value:
                value = value.replace(form, self.marker)
        if self._cores is not None:
            value = self._cores.sub(self.marker, value)
        return value

    def __call__(self, value: Any) -> Any:
        """Scrub a JSON-like value (strings inside dicts and lists, keys too)."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


def clip(text: str, limit: int, scrubber: Scrubber | None = None, *, more: str = "...") -> str:
    """``text`` scrubbed, then cut to ``limit`` characters (``more`` marks a cut)."""
    if scrubber is not None:
        text = scrubber.text(text)
    if len(text) <= limit:
        return text
    return text[: max(limit - len(more), 0)] + more
