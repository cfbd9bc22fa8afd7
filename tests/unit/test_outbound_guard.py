"""The outbound guard: refused destinations, the allowlist, resolving once, TLS by name."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.engine.outbound import (
    AllowList,
    DestinationRefused,
    DestinationUnresolved,
    InvalidDestination,
    OutboundGuard,
    blocked_reason,
    canonical_host,
    target_url,
)
from tests.fakes.servers import FakeServer, WebhookReceiver

# The fakes' fixtures (webhook_receiver, ...); the root conftest may list it instead.

LOOPBACK_ALLOWED = AllowList.parse("127.0.0.1")


def refused(url: str, guard: OutboundGuard | None = None) -> DestinationRefused:
    with pytest.raises(DestinationRefused) as caught:
        (guard or OutboundGuard()).check_url(url)
    return caught.value


# --- Refused destinations ------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("[::1]", "loopback"),
        ("[::]", "unspecified"),
        ("[::ffff:127.0.0.1]", "IPv4-mapped IPv6"),
        ("169.254.169.254", "cloud metadata"),
        ("10.0.0.1", "private network"),
        ("172.16.5.4", "private network"),
        ("192.168.1.1", "private network"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("fd00::1", "unique-local IPv6"),
        ("[fd00::1]", "unique-local IPv6"),
        ("[fe80::1]", "link-local"),
        ("169.254.1.1", "link-local"),
        ("2130706433", "loopback"),  # 127.0.0.1 as one number
        ("0177.0.0.1", "loopback"),  # octal
        ("0x7f.1", "loopback"),  # hexadecimal, short form
        ("127.1", "loopback"),
        ("[64:ff9b::a00:1]", "private network"),  # NAT64 around 10.0.0.1
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_destinations_are_refused_with_the_reason(host: str, reason: str) -> None:
    literal = f"[{host}]" if ":" in host and not host.startswith("[") else host
    error = refused(f"http://{literal}:8080/hook")
    assert reason in error.message
    assert "administrator can allow" in error.message
    with pytest.raises(DestinationRefused, match=reason):
        OutboundGuard().resolve(host, 8080)


def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    guard = OutboundGuard(resolver=lambda host, port: ["10.20.30.40"])
    error = refused("https://hooks.partner.example/incident", guard)
    assert error.message.startswith("hooks.partner.example resolves to 10.20.30.40, a private")


def test_localhost_is_refused_through_the_system_resolver() -> None:
    error = refused("http://localhost:9/")
    assert "localhost resolves to" in error.message and "loopback" in error.message


def test_a_name_with_one_public_and_one_private_address_is_refused() -> None:
    guard = OutboundGuard(resolver=lambda host, port: ["93.184.216.34", "192.168.0.10"])
    assert "private network" in refused("https://mixed.example/", guard).message


def test_public_addresses_pass() -> None:
    guard = OutboundGuard(resolver=lambda host, port: ["93.184.216.34", "2606:4700::6810:85e5"])
    assert guard.check_url("https://hooks.example.com/x") == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:4700::6810:85e5"),
    ]
    assert blocked_reason(ipaddress.ip_address("8.8.8.8")) is None


def test_an_unresolvable_name_is_reported_as_such() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(DestinationUnresolved, match="Could not resolve the host name nowhere"):
        OutboundGuard(resolver=fail).check_url("https://nowhere.invalid/")


def test_urls_that_cannot_be_sent_are_invalid() -> None:
    for url in ("ftp://example.com/", "http://user:pw@example.com/", "http:///path", "http://a b/"):
        with pytest.raises(InvalidDestination):
            target_url(url)


def test_numeric_hosts_become_the_address_the_system_would_use() -> None:
    assert canonical_host("2130706433") == "127.0.0.1"
    assert canonical_host("0177.0.0.1") == "127.0.0.1"
    assert canonical_host("0x7f.1") == "127.0.0.1"
    assert canonical_host("Hooks.Example.COM.") == "hooks.example.com"
    assert str(target_url("http://0177.0.0.1:8080/a?b=1")) == "http://127.0.0.1:8080/a?b=1"


# --- The allowlist ---------------------------------------------------------------


def test_the_allowlist_takes_a_comma_string_or_a_list() -> None:
    parsed = AllowList.parse("127.0.0.1, 10.1.0.0/16 hooks.internal,*.corp.example")
    listed = ["127.0.0.1", "10.1.0.0/16", "hooks.internal", ".corp.example"]
    assert parsed == AllowList.parse(listed)
    assert parsed.allows_address(ipaddress.ip_address("10.1.200.3"))
    assert not parsed.allows_address(ipaddress.ip_address("10.2.0.1"))
    assert parsed.allows_host("hooks.internal") and parsed.allows_host("a.b.corp.example")
    assert not parsed.allows_host("corp.example.evil.test")
    assert AllowList.from_config({"OUTBOUND_ALLOW": ["127.0.0.1"]}) == AllowList.parse("127.0.0.1")
    assert not AllowList.from_config({})


def test_the_allowlist_rejects_entries_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="'http://x' is not a host name"):
        AllowList.parse("http://x")


def test_an_allowed_network_lets_only_its_addresses_through() -> None:
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    assert guard.check_url("http://127.0.0.1:5000/") == [ipaddress.ip_address("127.0.0.1")]
    assert guard.check_url("http://2130706433:5000/") == [ipaddress.ip_address("127.0.0.1")]
    assert "loopback" in refused("http://127.0.0.2:5000/", guard).message
    assert "private network" in refused("http://10.0.0.1/", guard).message


def test_an_allowed_host_name_passes_whatever_it_resolves_to() -> None:
    guard = OutboundGuard(
        allow=AllowList.parse("hooks.internal"), resolver=lambda host, port: ["10.9.8.7"]
    )
    assert guard.check_url("https://hooks.internal/x") == [ipaddress.ip_address("10.9.8.7")]
    assert "private network" in refused("https://other.internal/x", guard).message


# --- Through a real client ---------------------------------------------------------


def test_the_client_refuses_before_connecting(webhook_receiver: WebhookReceiver) -> None:
    with OutboundGuard().client(connect_timeout=1, total_timeout=2) as client:
        for host in ("127.0.0.1", "localhost", str(target_url("http://2130706433/").host)):
            with pytest.raises(DestinationRefused, match="loopback"):
                client.get(f"http://{host}:{webhook_receiver.port}/")
    assert webhook_receiver.requests == []


def test_a_destination_is_resolved_once_and_the_request_goes_to_that_address(
    webhook_receiver: WebhookReceiver,
) -> None:
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding DNS server
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    guard = OutboundGuard(allow=LOOPBACK_ALLOWED, resolver=rebinding)
    with guard.client(connect_timeout=1, total_timeout=2) as client:
        response = client.post(f"http://hooks.test:{webhook_receiver.port}/in", json={"a": 1})
    assert response.status_code == 200
    assert calls == ["hooks.test"]
    assert webhook_receiver.last.header("Host") == f"hooks.test:{webhook_receiver.port}"


def test_redirects_are_not_followed_and_a_redirect_to_loopback_is_refused(
    webhook_receiver: WebhookReceiver,
) -> None:
    inner = FakeServer(host="127.0.0.2").start()
    try:
        webhook_receiver.redirect(f"{inner.url}/admin")
        webhook_receiver.redirect(f"{inner.url}/admin")
        # The receiver is allowed by name only; the redirect target is not.
        guard = OutboundGuard(
            allow=AllowList.parse("receiver.test"), resolver=lambda host, port: ["127.0.0.1"]
        )
        url = f"http://receiver.test:{webhook_receiver.port}/hook"
        with guard.client(connect_timeout=1, total_timeout=2) as client:
            response = client.post(url, json={})
            assert response.status_code == 302  # handed back, not followed
            with pytest.raises(DestinationRefused, match="127.0.0.2 is a loopback address"):
                client.post(url, json={}, follow_redirects=True)
        assert inner.requests == []
    finally:
        inner.stop()


def test_environment_proxies_are_ignored(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.0.0.1:3128")
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    with guard.client(connect_timeout=1, total_timeout=2) as client:
        assert client.get(f"{webhook_receiver.url}/").status_code == 200


def test_the_total_timeout_bounds_a_server_that_trickles() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            # A header line every 50 ms, each well inside the read timeout, for 2 s.
            for _ in range(40):
                if stop.wait(0.05):
                    return
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    return
            with contextlib.suppress(OSError):
                conn.sendall(b"Content-Length: 0\r\n\r\n")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    started = time.monotonic()
    try:
        with (
            guard.client(connect_timeout=1, total_timeout=0.3) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            client.get(f"http://127.0.0.1:{listener.getsockname()[1]}/")
        assert time.monotonic() - started < 1.5
    finally:
        stop.set()
        listener.close()
        thread.join(2)


def test_slow_name_resolution_counts_against_the_connect_timeout() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(2)
        return ["93.184.216.34"]

    guard = OutboundGuard(resolver=hanging)
    try:
        with (
            guard.client(connect_timeout=0.2, total_timeout=1) as client,
            pytest.raises(httpx.ConnectTimeout),
        ):
            client.get("https://slow-dns.example/")
    finally:
        release.set()


# --- TLS: connect to the checked address, verify the name ---------------------------


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a certificate for hooks.test signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_receiver(tls_material: dict[str, Path]) -> Iterator[FakeServer]:
    """A recording HTTPS server on 127.0.0.1 presenting the hooks.test certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_material["cert"], tls_material["key"])
    server = FakeServer(tls=context).start()
    yield server
    server.stop()


def test_tls_uses_the_host_name_for_sni_and_the_certificate(
    tls_material: dict[str, Path], tls_receiver: FakeServer
) -> None:
    trust = ssl.create_default_context(cafile=str(tls_material["ca"]))
    guard = OutboundGuard(
        allow=LOOPBACK_ALLOWED, resolver=lambda host, port: ["127.0.0.1"], ssl_context=trust
    )
    with guard.client(connect_timeout=1, total_timeout=3) as client:
        response = client.get(f"https://hooks.test:{tls_receiver.port}/tls")
        assert response.status_code == 200
        assert tls_receiver.last.server_name == "hooks.test"
        assert tls_receiver.last.header("Host") == f"hooks.test:{tls_receiver.port}"
        # The same address under another name: the certificate does not match.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(f"https://other.test:{tls_receiver.port}/tls")
    assert len(tls_receiver.requests) == 1
