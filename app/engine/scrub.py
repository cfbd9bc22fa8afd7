"""The one place stored and logged engine output is scrubbed of secret values."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[secret]"
# Even a one-character secret is scrubbed: a short secret is still a secret.
MIN_LENGTH = 1


def _forms(secret: str) -> set[str]:
    """The spellings a secret may take in a request or response."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    forms.add(base64.b64encode(secret.encode()).decode())
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Scrubber:
    """Replaces every secret value (and its URL and base64 spellings) with a marker."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= _forms(secret)
        # Longest first, so a secret containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def text(self, value: str) -> str:
        for form in self._forms:
            if form in value:
                value = value.replace(form, REDACTED)
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
