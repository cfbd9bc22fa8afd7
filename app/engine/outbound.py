"""The outbound guard: the only way the engine reaches another server.

Every connection an engine HTTP client opens is made by ``GuardedBackend``:
the host is resolved once (``getaddrinfo``, so numeric forms such as
``2130706433`` or ``0177.0.0.1`` mean what the operating system makes of
them), every resolved address is checked, and the socket is connected to
that checked address. The request keeps the host name for the ``Host``
header, TLS SNI and certificate verification, so a DNS answer that changes
between the check and the connection (rebinding) cannot slip through.

Connections are kept alive and reused: each thread keeps one pooled client
per guard (allowlist, resolver, TLS trust), so a new allowlist gets a new
pool and a kept-alive connection is only ever one this guard checked when it
was opened. ``with guard.client(...) as client`` lends that client for one
attempt, whose total timeout bounds every socket operation of the attempt,
on new and reused connections alike. A forked child starts with no pool.

Loopback, private, link-local, carrier-grade NAT, unique-local IPv6,
IPv4-mapped IPv6, unspecified, multicast, reserved and cloud-metadata
addresses are refused with a message naming the reason, unless an
administrator allows the host name or network (``OUTBOUND_ALLOW``).
Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

__all__ = [
    "AllowList",
    "DestinationRefused",
    "DestinationUnresolved",
    "GuardedBackend",
    "IPAddress",
    "InvalidDestination",
    "OutboundError",
    "OutboundGuard",
    "Resolver",
    "USER_AGENT",
    "blocked_reason",
    "canonical_host",
    "system_resolver",
    "target_url",
]

USER_AGENT = "IncidentFlow-Workflows/1.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` returns the host's addresses as strings, in order.
Resolver = Callable[[str, int], Sequence[str]]

#: Where an administrator sees and changes the allow-list (the page is /admin/outbound).
ALLOW_PAGE = "/admin/outbound"
_ALLOW_HINT = (
    "Requests to internal networks are refused; an administrator can allow this "
    "destination with the INCIDENTFLOW_OUTBOUND_ALLOW setting (see "
    f"{ALLOW_PAGE})."
)


class OutboundError(Exception):
    """A request that the guard did not send."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DestinationRefused(OutboundError):
    """The destination is an address the guard refuses (not retryable)."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        if _literal_address(host) == address:
            what = f"The destination {address} is {reason}"
        else:
            what = f"{host} resolves to {address}, {reason}"
        super().__init__(f"{what}. {_ALLOW_HINT}")


class DestinationUnresolved(OutboundError):
    """The host name could not be resolved (a network error, retryable)."""

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        super().__init__(f"Could not resolve the host name {host}: {detail}.")


class InvalidDestination(OutboundError, ValueError):
    """The URL cannot be sent at all (scheme, credentials, missing host)."""


# --- Addresses -------------------------------------------------------------


def _networks(*specs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(spec) for spec in specs)


# Checked in order; the first match names the reason.
_REFUSED: tuple[tuple[tuple[IPNetwork, ...], str], ...] = (
    (
        _networks(
            "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, Oracle...
            "169.254.170.2/32",  # AWS ECS task metadata
            "100.100.100.200/32",  # Alibaba Cloud
            "fd00:ec2::254/128",  # AWS over IPv6
        ),
        "a cloud metadata service address",
    ),
    (_networks("0.0.0.0/8", "::/128"), "the unspecified address"),
    (_networks("127.0.0.0/8", "::1/128"), "a loopback address"),
    (_networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "a private network address"),
    (_networks("169.254.0.0/16", "fe80::/10"), "a link-local address"),
    (_networks("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_networks("fc00::/7"), "a unique-local IPv6 address"),
    (_networks("224.0.0.0/4", "ff00::/8"), "a multicast address"),
    (_networks("240.0.0.0/4"), "a reserved address"),
)

# IPv6 ranges that carry an IPv4 address inside; refused when that one is.
_NAT64 = _networks("64:ff9b::/96", "64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def blocked_reason(address: IPAddress) -> str | None:
    """Why the guard refuses ``address`` (e.g. "a loopback address (127.0.0.0/8)"), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return f"an IPv4-mapped IPv6 address (it stands for {mapped})"
        embedded: ipaddress.IPv4Address | None = None
        if any(address in net for net in _NAT64) or (
            address in _IPV4_COMPATIBLE and int(address) > 1
        ):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address in _SIX_TO_FOUR:
            embedded = ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner is not None:
                return f"an IPv6 address that carries {embedded}, {inner}"
    for networks, reason in _REFUSED:
        for network in networks:
            if address.version == network.version and address in network:
                return f"{reason} ({network})"
    if not address.is_global:
        return "a reserved or otherwise non-public address"
    return None


_NUMERIC_HOST_RE = re.compile(r"[0-9a-fA-FxX.]+")


def canonical_host(host: str) -> str:
    """Lower-case ``host`` without a trailing dot or brackets; a numeric IPv4
    form (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) becomes the dotted quad
    the system resolver would connect to."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith("."):
        host = host[:-1]
    if _NUMERIC_HOST_RE.fullmatch(host) and any(ch.isdigit() for ch in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return host
    return host


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# Whitespace (``\s`` is what str.isspace() accepts) and control characters.
_UNSENDABLE_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


@lru_cache(maxsize=256)
def target_url(url: str) -> httpx.URL:
    """Parse ``url`` for sending: http(s) only, a host, no user name or
    password; numeric IPv4 hosts canonical. Raises InvalidDestination.

    Cached: preparing a request and sending it parse the same URL (an error is
    raised again each time; only results are kept, and httpx.URL is immutable)."""
    if _UNSENDABLE_URL_CHARS.search(url):
        raise InvalidDestination(
            "The URL contains spaces, line breaks or control characters; "
            "encode them (for example with the urlencode filter)."
        )
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise InvalidDestination(f"The URL is not valid: {exc}.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidDestination("The URL must start with http:// or https://.")
    if not hostname:
        raise InvalidDestination("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InvalidDestination("Do not put a user name or password in the URL; use auth instead.")
    host = canonical_host(hostname)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    rebuilt = parts._replace(scheme=parts.scheme.lower(), netloc=netloc).geturl()
    try:
        return httpx.URL(rebuilt)
    except httpx.InvalidURL as exc:
        raise InvalidDestination(f"The URL is not valid: {exc}.") from None


# --- The allowlist -----------------------------------------------------------

_HOSTNAME_RE = re.compile(
    r"(?:\*\.|\.)?[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*"
)


@dataclass(frozen=True)
class AllowList:
    """Destinations an administrator allows although the guard would refuse them.

    Entries are IP addresses or CIDR networks (matched against the resolved
    address), host names (matched exactly against the URL's host) and
    ``*.example.com`` / ``.example.com`` (any name under example.com).
    """

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str | Iterable[str] | None) -> AllowList:
        """Parse a comma- or space-separated string or a list of entries.

        Raises ValueError naming an entry that is neither a host name nor an
        address or network.
        """
        if value is None:
            return cls()
        items = [value] if isinstance(value, str) else list(value)
        entries = [part for item in items for part in re.split(r"[\s,]+", str(item)) if part]
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        domains: list[str] = []
        for entry in entries:
            text = entry.strip().lower()
            if text.startswith("[") and "]" in text:
                text = text[1:].replace("]", "", 1)
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            text = text.rstrip(".")
            if not _HOSTNAME_RE.fullmatch(text):
                raise ValueError(
                    f"OUTBOUND_ALLOW: '{entry}' is not a host name, IP address or "
                    "network (for example hooks.internal, *.corp.example, "
                    "10.1.2.3 or 10.1.0.0/16)."
                )
            if text.startswith(("*.", ".")):
                domains.append("." + text.split(".", 1)[1])
            else:
                hosts.add(text)
        return cls(tuple(networks), frozenset(hosts), tuple(domains))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AllowList:
        """The allowlist from ``config["OUTBOUND_ALLOW"]`` (list or comma string)."""
        return cls.parse(config.get("OUTBOUND_ALLOW"))

    def allows_host(self, host: str) -> bool:
        name = canonical_host(host)
        return name in self.hosts or any(name.endswith(suffix) for suffix in self.domains)

    def allows_address(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts or self.domains)


# --- Resolution --------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (getaddrinfo), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _new_resolver_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="outbound-dns")


# getaddrinfo has no timeout of its own; it runs here so a request's
# connect timeout also bounds name resolution.
_resolver_pool = _new_resolver_pool()


class _Deadline:
    """The total time one attempt may take, enforced on every socket operation."""

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self.seconds = seconds
        self.end = monotonic() + seconds

    def budget(self, timeout: float | None, timeout_error: type[Exception]) -> float:
        left = self.end - self._monotonic()
        if left <= 0:
            raise timeout_error(f"the total timeout of {self.seconds:g} s passed")
        return left if timeout is None else min(timeout, left)


@dataclass(frozen=True)
class OutboundGuard:
    """Checks destinations and builds the engine's HTTP clients."""

    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver | None = None
    #: TLS settings for outgoing requests; None uses the certifi bundle.
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutboundGuard:
        return cls(allow=AllowList.from_config(config))

    def resolve(self, host: str, port: int, *, timeout: float | None = None) -> list[IPAddress]:
        """Resolve ``host`` once and return its addresses, all of them allowed.

        Raises DestinationRefused when any address is refused (a name that
        answers with one public and one private address is refused),
        DestinationUnresolved when the name does not resolve, and
        httpcore.ConnectTimeout when resolving takes longer than ``timeout``.
        """
        name = canonical_host(host)
        literal = _literal_address(name)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
            allowed_by_name = False
        else:
            addresses = self._lookup(name, port, timeout)
            allowed_by_name = self.allow.allows_host(name)
        if not allowed_by_name:
            for address in addresses:
                reason = blocked_reason(address)
                if reason is not None and not self.allow.allows_address(address):
                    raise DestinationRefused(name, address, reason)
        return addresses

    def check_url(self, url: str) -> list[IPAddress]:
        """Whether ``url`` may be requested now (for previews); same errors as resolve."""
        target = target_url(url)
        return self.resolve(target.host, target.port or _default_port(target.scheme))

    def client(
        self,
        *,
        connect_timeout: float,
        total_timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> AbstractContextManager[httpx.Client]:
        """This thread's pooled client for this guard, lent for one attempt:
        ``with guard.client(...) as client: ...``.

        Every new connection goes through this guard; kept-alive ones were
        checked when they were opened. ``connect_timeout`` bounds resolving
        and connecting, ``total_timeout`` the whole attempt (every request
        made inside the ``with`` block, including reading the responses).
        Redirects are not followed, proxy settings from the environment are
        ignored (the guard sees the real target) and cookies last one attempt.
        Use the client only inside the block: outside it a connection refuses
        to read or write.
        """
        timeout = httpx.Timeout(total_timeout, connect=min(connect_timeout, total_timeout))
        return _AttemptScope(self, timeout, _Deadline(total_timeout, monotonic))

    def _lookup(self, name: str, port: int, timeout: float | None) -> list[IPAddress]:
        resolver = self.resolver or system_resolver
        future = _resolver_pool.submit(resolver, name, port)
        try:
            answers = future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            raise httpcore.ConnectTimeout(f"resolving {name} took too long") from None
        except socket.gaierror as exc:
            raise DestinationUnresolved(name, exc.strerror or str(exc)) from None
        except OSError as exc:
            raise DestinationUnresolved(name, exc.strerror or str(exc)) from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError:
                continue
        if not addresses:
            raise DestinationUnresolved(name, "no address was returned")
        return addresses


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


_ssl_lock = threading.Lock()


@lru_cache(maxsize=1)
def _cached_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _default_ssl_context() -> ssl.SSLContext:
    with _ssl_lock:  # lru_cache may build it twice under concurrent first use
        return _cached_ssl_context()


# --- httpcore plumbing -------------------------------------------------------

#: Per pooled client: at most this many connections, this many of them kept
#: open while idle, each reused for at most this long after its last answer.
_MAX_CONNECTIONS = 10
_MAX_KEEPALIVE_CONNECTIONS = 5
# Below the 5 s keep-alive timeout of Node.js and other servers that close early.
_KEEPALIVE_EXPIRY_SECONDS = 4.0
#: Pooled clients kept per thread (one per guard); the least recently used goes.
_CLIENTS_PER_THREAD = 8


class _AttemptState:
    """What the connections of one pooled client know of the attempt using it."""

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        self.deadline: _Deadline | None = None

    def budget(self, timeout: float | None, timeout_error: type[Exception]) -> float:
        if self.deadline is None:
            raise RuntimeError(
                "An outbound connection was used outside an attempt; "
                "use the client only inside `with guard.client(...)`."
            )
        return self.deadline.budget(timeout, timeout_error)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation is bounded by the current attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, state: _AttemptState) -> None:
        self._inner = inner
        self._state = state

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._state.budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._state.budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name, so SNI and certificate
        # checks use the name even though the socket went to a checked IP.
        stream = self._inner.start_tls(
            ssl_context,
            server_hostname=server_hostname,
            timeout=self._state.budget(timeout, httpcore.ConnectTimeout),
        )
        return _DeadlineStream(stream, self._state)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses the guard checked."""

    def __init__(self, guard: OutboundGuard, state: _AttemptState) -> None:
        self._guard = guard
        self._state = state
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        budget = self._state.budget(timeout, httpcore.ConnectTimeout)
        addresses = self._guard.resolve(host, port, timeout=budget)
        stream = self._inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=self._state.budget(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._state)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise InvalidDestination("Unix sockets are not a destination for workflow requests.")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - retries=0, never called
        raise RuntimeError("the outbound client does not retry by itself")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport (request mapping, errors, streaming) over a keep-alive
    pool of GuardedBackend connections."""

    def __init__(self, guard: OutboundGuard, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False, retries=0)
        self.state = _AttemptState()
        # httpx.HTTPTransport takes no network backend, so its pool is
        # replaced by the same pool built over the guarded one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=_MAX_CONNECTIONS,
            max_keepalive_connections=_MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=_KEEPALIVE_EXPIRY_SECONDS,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(guard, self.state),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Never sent again by the transport itself: a connection that breaks after the
        # request went out may have delivered it, so that is the attempt's outcome (a
        # retryable failure, recorded and counted like any other), and only the run's
        # retry policy decides whether to send it again, with the same Idempotency-Key.
        # Idle connections expire before common servers' keep-alive timeouts
        # (_KEEPALIVE_EXPIRY_SECONDS), and the pool checks an idle connection is still
        # open before it reuses it, so a stale one rarely costs an attempt.
        return super().handle_request(request)

    def all_idle(self) -> bool:
        """No connection is in the middle of an exchange (every answer was closed)."""
        return all(
            connection.is_idle() or connection.is_closed() for connection in self._pool.connections
        )


class _AttemptCookies(httpx.Cookies):
    """Cookies for one attempt; a response without Set-Cookie costs nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _PooledClient(httpx.Client):
    """A thread's long-lived client for one guard; lent to one attempt at a time."""

    def __init__(self, guard: OutboundGuard) -> None:
        self._guarded = _GuardedTransport(guard, guard.ssl_context or _default_ssl_context())
        self._attempt_cookies = _AttemptCookies()
        self._depth = 0
        super().__init__(
            transport=self._guarded,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    # Cookies belong to the attempt, as they did when each attempt had its own
    # client: nothing one workflow's request receives reaches another's.
    @property
    def cookies(self) -> httpx.Cookies:
        return self._attempt_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._attempt_cookies = _AttemptCookies(cookies)

    @property
    def in_use(self) -> bool:
        return self._depth > 0

    def begin(self, deadline: _Deadline, timeout: httpx.Timeout) -> tuple[Any, ...]:
        """Serve one attempt; returns what ``end`` restores."""
        saved = (self._guarded.state.deadline, self.timeout, self._attempt_cookies)
        self._guarded.state.deadline = deadline
        self.timeout = timeout
        self._attempt_cookies = _AttemptCookies()
        self._depth += 1
        return saved

    def end(self, saved: tuple[Any, ...]) -> bool:
        """The attempt is over; True when the pool must not serve another one
        (a response was left open, so its connection is still busy)."""
        self._guarded.state.deadline, self.timeout, self._attempt_cookies = saved
        self._depth -= 1
        return self._depth == 0 and not self._guarded.all_idle()


class _AttemptScope:
    """``with guard.client(...)``: this thread's pooled client, for one attempt."""

    def __init__(self, guard: OutboundGuard, timeout: httpx.Timeout, deadline: _Deadline) -> None:
        self._guard = guard
        self._timeout = timeout
        self._deadline = deadline

    def __enter__(self) -> httpx.Client:
        self._client = _thread_client(self._guard)
        self._saved = self._client.begin(self._deadline, self._timeout)
        return self._client

    def __exit__(self, *exc_info: object) -> None:
        if self._client.end(self._saved):
            _drop_thread_client(self._guard, self._client)


class _ThreadClients(threading.local):
    def __init__(self) -> None:
        self.clients: OrderedDict[OutboundGuard, _PooledClient] = OrderedDict()


_thread_clients = _ThreadClients()


def _thread_client(guard: OutboundGuard) -> _PooledClient:
    """This thread's pooled client for ``guard`` (equal guards share one)."""
    clients = _thread_clients.clients
    client = clients.get(guard)
    if client is not None and not client.is_closed:
        clients.move_to_end(guard)
        return client
    clients.pop(guard, None)  # a closed one: the new client is the most recently used
    client = clients[guard] = _PooledClient(guard)
    for key, old in list(clients.items())[:-1]:
        if len(clients) <= _CLIENTS_PER_THREAD:
            break
        if not old.in_use:  # an attempt still open keeps its client
            del clients[key]
            old.close()
    return client


def _drop_thread_client(guard: OutboundGuard, client: _PooledClient) -> None:
    clients = _thread_clients.clients
    if clients.get(guard) is client:
        del clients[guard]
    client.close()


def _after_fork_in_child() -> None:
    """A forked child (Celery prefork, gunicorn) shares no connection or thread
    with its parent: it starts with no pooled client and a new resolver pool,
    whose parent's threads do not exist in the child."""
    global _resolver_pool, _thread_clients
    inherited = _thread_clients.clients
    _thread_clients = _ThreadClients()
    _resolver_pool = _new_resolver_pool()
    for client in inherited.values():
        # Closes the child's copies of the sockets; the parent's stay open.
        client.close()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere nothing forks
    os.register_at_fork(after_in_child=_after_fork_in_child)
