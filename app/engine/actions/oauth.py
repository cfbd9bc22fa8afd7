"""OAuth2 client credentials (RFC 6749 section 4.4) for webhook actions.

Tokens are cached per (token URL, client id, hash of the client secret)
until shortly before they expire. A token that the API answers 401 to is
replaced once: the first thread to notice fetches a new one, the others use
it. Times come from the ``now`` callable the caller passes (the engine clock).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote_plus

import httpx

from app.engine.retry import parse_retry_after, retryable_status
from app.engine.scrub import Scrubber, clip

__all__ = [
    "DEFAULT_TOKEN_LIFETIME_SECONDS",
    "OAuthParams",
    "TokenCache",
    "TokenRequestFailed",
    "default_token_cache",
]

#: Used when the token response gives no ``expires_in``.
DEFAULT_TOKEN_LIFETIME_SECONDS = 300
#: A token is renewed this long before it expires (or at half its life if shorter).
EXPIRY_MARGIN_SECONDS = 30.0
_MAX_TOKEN_RESPONSE = 64 * 1024


@dataclass(frozen=True)
class OAuthParams:
    """Where and as whom to ask for a token. ``client_secret`` is a secret."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def cache_key(self) -> tuple[str, str, str]:
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (self.token_url, self.client_id, digest)


class TokenRequestFailed(Exception):
    """The token endpoint did not hand out a token. The message is for users."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after_seconds: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds
        self.timed_out = timed_out


@dataclass
class _Token:
    value: str = field(repr=False)
    renew_at: datetime


class TokenCache:
    """Thread-safe cache of client-credentials tokens."""

    def __init__(self, margin_seconds: float = EXPIRY_MARGIN_SECONDS) -> None:
        self._margin = margin_seconds
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._fetch_locks: dict[tuple[str, str, str], threading.Lock] = {}

    def token(
        self,
        client: httpx.Client,
        params: OAuthParams,
        *,
        now: Callable[[], datetime],
        rejected: str | None = None,
    ) -> str:
        """A valid access token, fetched with ``client`` when none is cached.

        ``rejected`` is a token the API just answered 401 to: it is dropped
        and replaced, unless another caller already replaced it.
        Raises TokenRequestFailed and the client's transport errors.
        """
        key = params.cache_key
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and rejected is not None and cached.value == rejected:
                    del self._tokens[key]
                    cached = None
                if cached is not None and now() < cached.renew_at:
                    return cached.value
            value, lifetime = _request_token(client, params, now)
            margin = min(self._margin, lifetime / 2)
            with self._lock:
                self._tokens[key] = _Token(value, now() + timedelta(seconds=lifetime - margin))
            return value

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


default_token_cache = TokenCache()


def _request_token(
    client: httpx.Client, params: OAuthParams, now: Callable[[], datetime]
) -> tuple[str, float]:
    where = f"the token endpoint {params.token_url}"
    # RFC 6749 2.3.1: every server must accept the client id and secret as
    # HTTP Basic credentials, each form-encoded first.
    credentials = f"{quote_plus(params.client_id)}:{quote_plus(params.client_secret)}"
    basic = base64.b64encode(credentials.encode()).decode("ascii")
    try:
        with client.stream(
            "POST",
            params.token_url,
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json", "Authorization": f"Basic {basic}"},
        ) as response:
            body = _read_bounded(response)
    except httpx.TimeoutException:
        raise TokenRequestFailed(
            f"Could not get an OAuth2 token: {where} did not answer in time.",
            retryable=True,
            timed_out=True,
        ) from None
    except httpx.TransportError as exc:
        raise TokenRequestFailed(
            f"Could not get an OAuth2 token: the connection to {where} failed ({exc}).",
            retryable=True,
        ) from None
    payload = _json_object(body)
    if response.status_code != 200:
        detail = ""
        if payload is not None and isinstance(payload.get("error"), str):
            detail = f" ({payload['error']}"
            description = payload.get("error_description")
            if isinstance(description, str) and description:
                # Scrubbed, then clipped: a cut through the secret would show its start.
                detail += f": {clip(description, 300, Scrubber([params.client_secret]), more='')}"
            detail += ")"
        retryable = retryable_status(response.status_code)
        raise TokenRequestFailed(
            f"Could not get an OAuth2 token: {where} answered "
            f"{response.status_code} {response.reason_phrase}{detail}.",
            status_code=response.status_code,
            retryable=retryable,
            retry_after_seconds=(
                parse_retry_after(response.headers.get("Retry-After"), now()) if retryable else None
            ),
        )
    access_token = payload.get("access_token") if payload is not None else None
    if payload is None or not isinstance(access_token, str) or not access_token:
        raise TokenRequestFailed(
            f"Could not get an OAuth2 token: {where} answered without an access_token.",
            status_code=response.status_code,
        )
    token_type = payload.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenRequestFailed(
            f"Could not get an OAuth2 token: {where} issued a '{token_type}' token; "
            "only Bearer tokens are supported.",
            status_code=response.status_code,
        )
    lifetime = _lifetime(payload.get("expires_in"))
    return access_token, lifetime


def _lifetime(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float(DEFAULT_TOKEN_LIFETIME_SECONDS)
    if seconds != seconds or seconds <= 0:  # NaN or already expired
        return 0.0
    return min(seconds, 365 * 86_400.0)


def _read_bounded(response: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > _MAX_TOKEN_RESPONSE:
            break
    return bytes(body[:_MAX_TOKEN_RESPONSE])


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
