"""The outbound guard's keep-alive pool: connections are reused between attempts,
while every attempt keeps its own total timeout, new connections are still
checked, and nothing is shared across allowlists, threads or forked processes."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from app.engine.outbound import AllowList, DestinationRefused, OutboundGuard
from tests.fakes.connections import HANG_UP, PARTIAL, SLOW_BODY, TRICKLE, KeepAliveServer

LOOPBACK_ALLOWED = AllowList.parse("127.0.0.1")


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    """A raw HTTP server on 127.0.0.1 that counts connections and answers as scripted."""
    running = KeepAliveServer().start()
    yield running
    running.stop()


def get(guard: OutboundGuard, url: str, *, total: float = 2.0) -> httpx.Response:
    """One attempt: one request on the guard's pooled client."""
    with guard.client(connect_timeout=1, total_timeout=total) as client:
        return client.get(url)


def test_consecutive_attempts_reuse_one_connection(server: KeepAliveServer) -> None:
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    assert get(guard, f"{server.url}/a").status_code == 200
    # An equal guard (as every attempt builds from the same settings) shares the pool.
    assert get(OutboundGuard(allow=AllowList.parse("127.0.0.1")), f"{server.url}/b").json() == {
        "ok": True
    }
    assert len(server.connections) == 1
    assert server.connections[0].requests == [b"GET /a HTTP/1.1\r\n", b"GET /b HTTP/1.1\r\n"]


def test_a_request_a_reused_connection_lost_after_sending_is_not_sent_again(
    server: KeepAliveServer,
) -> None:
    """The server read the request, then closed the kept-alive connection: the request
    may have been delivered, so the transport reports the failure and sends nothing more
    (the run's retry policy decides, and records it as an attempt)."""
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    assert get(guard, f"{server.url}/first").status_code == 200
    server.answer(HANG_UP)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        guard.client(connect_timeout=1, total_timeout=2) as client,
    ):
        client.post(f"{server.url}/second", content=b'{"n": 2}')
    assert len(server.connections) == 1
    assert server.requests == [b"GET /first HTTP/1.1\r\n", b'POST /second HTTP/1.1\r\n{"n": 2}']


def test_a_new_connection_that_fails_is_not_tried_again(server: KeepAliveServer) -> None:
    server.answer(HANG_UP)
    with pytest.raises(httpx.RemoteProtocolError):
        get(OutboundGuard(allow=LOOPBACK_ALLOWED), f"{server.url}/once")
    assert len(server.connections) == 1
    assert len(server.requests) == 1


def test_a_reused_connection_that_began_to_answer_is_not_tried_again(
    server: KeepAliveServer,
) -> None:
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    assert get(guard, f"{server.url}/first").status_code == 200
    server.answer(PARTIAL)
    with pytest.raises(httpx.RemoteProtocolError):
        get(guard, f"{server.url}/second")
    assert len(server.requests) == 2  # the answer had begun: not sent a third time


def test_the_total_timeout_bounds_each_attempt_on_a_reused_connection(
    server: KeepAliveServer,
) -> None:
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    assert get(guard, f"{server.url}/fast", total=0.3).status_code == 200
    time.sleep(0.4)  # longer than the first attempt's total: its deadline has passed
    assert get(guard, f"{server.url}/fast-again", total=0.3).status_code == 200

    server.answer(TRICKLE)  # every read is quick; only the total ends it
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        get(guard, f"{server.url}/slow", total=0.3)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.0
    assert len(server.connections) == 1  # all three attempts went over one connection


def test_a_changed_allowlist_does_not_reuse_the_old_pool(server: KeepAliveServer) -> None:
    assert get(OutboundGuard(allow=LOOPBACK_ALLOWED), f"{server.url}/allowed").status_code == 200
    # The connection opened under the old allowlist is still alive, and is not used.
    with pytest.raises(DestinationRefused, match="loopback"):
        get(OutboundGuard(), f"{server.url}/refused")
    with pytest.raises(DestinationRefused, match="loopback"):
        get(OutboundGuard(allow=AllowList.parse("127.0.0.2")), f"{server.url}/refused")
    assert len(server.requests) == 1
    wider = OutboundGuard(allow=AllowList.parse("127.0.0.1, 10.0.0.0/8"))
    assert get(wider, f"{server.url}/wider").status_code == 200
    assert len(server.connections) == 2  # another allowlist, another pool


def test_the_client_does_no_io_outside_its_attempt(server: KeepAliveServer) -> None:
    """Outside ``with guard.client(...)`` no deadline runs, so nothing is read or sent."""
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    with guard.client(connect_timeout=1, total_timeout=2) as client:
        assert client.get(f"{server.url}/inside").status_code == 200
    with pytest.raises(RuntimeError, match="outside an attempt"):
        client.get(f"{server.url}/later")
    server.answer(SLOW_BODY)
    with guard.client(connect_timeout=1, total_timeout=2) as client:
        response = client.send(client.build_request("GET", f"{server.url}/kept"), stream=True)
    with pytest.raises(RuntimeError, match="outside an attempt"):
        response.read()  # the body had not arrived when the attempt ended
    assert [request.split(b" ")[1] for request in server.requests] == [b"/inside", b"/kept"]


def test_a_response_left_open_does_not_keep_its_connection(server: KeepAliveServer) -> None:
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    with guard.client(connect_timeout=1, total_timeout=2) as client:
        client.send(client.build_request("GET", f"{server.url}/unread"), stream=True)
    assert server.connections[0].closed_by_client.wait(2)
    assert get(guard, f"{server.url}/next").status_code == 200
    assert len(server.connections) == 2


def test_a_client_closed_by_its_caller_is_replaced(server: KeepAliveServer) -> None:
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    with guard.client(connect_timeout=1, total_timeout=2) as client:
        assert client.get(f"{server.url}/a").status_code == 200
        client.close()
    assert get(guard, f"{server.url}/b").status_code == 200
    assert len(server.connections) == 2


def test_each_thread_keeps_at_most_eight_pools(server: KeepAliveServer) -> None:
    guards = [
        OutboundGuard(allow=AllowList.parse(f"127.0.0.1, 10.0.0.{number}")) for number in range(9)
    ]
    for guard in guards:
        assert get(guard, f"{server.url}/").status_code == 200
    # The least recently used pool was closed with its connection; the others keep theirs.
    assert server.connections[0].closed_by_client.wait(2)
    assert not any(conn.closed_by_client.is_set() for conn in server.connections[1:])
    assert get(guards[-1], f"{server.url}/").status_code == 200
    assert len(server.connections) == 9


def test_threads_do_not_share_a_pool_or_a_deadline(server: KeepAliveServer) -> None:
    """An attempt that starts on another thread while this one waits, with a longer
    total and an equal guard, does not lengthen this one."""
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED)
    slow = KeepAliveServer().start()
    slow.answer(TRICKLE)
    outcome: dict[str, float] = {}

    def short_attempt() -> None:
        started = time.monotonic()
        with contextlib.suppress(httpx.ReadTimeout):
            get(guard, f"{slow.url}/slow", total=0.3)
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=short_attempt)
    try:
        thread.start()
        waited = time.monotonic()
        while not slow.requests and time.monotonic() - waited < 2:
            time.sleep(0.01)
        assert slow.requests, "the short attempt never reached the server"
        with guard.client(connect_timeout=1, total_timeout=5) as client:
            assert client.get(f"{server.url}/long").status_code == 200
            thread.join(4)  # the short attempt ends while this one is still open
    finally:
        slow.stop()
    assert outcome["elapsed"] < 1.0


def test_a_forked_child_opens_its_own_connections(server: KeepAliveServer) -> None:
    """After fork the child neither reuses the parent's kept-alive connection nor
    waits for the parent's name-resolution threads."""
    guard = OutboundGuard(allow=LOOPBACK_ALLOWED, resolver=lambda host, port: ["127.0.0.1"])
    url = f"http://hooks.test:{server.port}"
    assert get(guard, f"{url}/parent").status_code == 200
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave, whatever happens
        try:
            os.close(read_end)
            try:
                result = str(get(guard, f"{url}/child").status_code)
            except BaseException as exc:
                result = f"{type(exc).__name__}: {exc}"
            os.write(write_end, result.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready, "the child did not answer within 10 s"
        assert os.read(read_end, 1000).decode() == "200"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert [conn.requests for conn in server.connections] == [
        [b"GET /parent HTTP/1.1\r\n"],
        [b"GET /child HTTP/1.1\r\n"],
    ]
    # The parent's connection was left open by the child and is still the parent's.
    assert not server.connections[0].closed_by_client.is_set()
    assert get(guard, f"{url}/parent-again").status_code == 200
    assert len(server.connections[0].requests) == 2
