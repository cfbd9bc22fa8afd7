"""A webhook receiver that answers at once and timestamps every arrival.

Runs as its own process (``python -m bench.receiver``), so its work never
competes with the harness for a GIL. It speaks just enough HTTP/1.1 (keep-alive,
``Content-Length`` bodies) for the engine's client, answers ``200 {}`` to every
request, and records ``(time.time(), method, path)`` when a request's headers
have arrived — the moment the engine's request reached it.

Two paths behave differently, for the end-to-end group (``bench/endtoend.py``):

- ``/hang/...`` — the request is read and recorded, and never answered (the
  connection stays open), until the harness releases it;
- ``/slow/...`` — answered after ``SLOW_SECONDS`` (1 s).

Control endpoints, for the harness:

- ``GET /_arrivals`` — the arrivals recorded since the last reset, as JSON
  ``[[unix_time, method, path], ...]``;
- ``POST /_reset`` — forget them (and hang new ``/hang`` requests again);
- ``POST /_release`` — close every connection held by ``/hang`` and answer later
  ``/hang`` requests at once, until the next reset.

On start it prints ``PORT <n>`` on stdout, then serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\n{}"
)
MAX_HEADER = 64 * 1024
SLOW_SECONDS = 1.0


class Receiver(asyncio.Protocol):
    """One connection: parse requests as bytes arrive, answer each immediately."""

    arrivals: list[tuple[float, str, str]] = []
    hanging: list[asyncio.Transport] = []
    released = False

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.pending_body = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        while self._one_request(now):
            pass
        if len(self.buffer) > MAX_HEADER and self.transport is not None:
            self.transport.close()

    def _one_request(self, now: float) -> bool:
        if self.pending_body:
            taken = min(self.pending_body, len(self.buffer))
            self.buffer = self.buffer[taken:]
            self.pending_body -= taken
            if self.pending_body:
                return False
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = self.buffer[:end].decode("latin-1")
        self.buffer = self.buffer[end + 4 :]
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("?", "?")
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
        self.pending_body = length
        if self.pending_body:
            taken = min(self.pending_body, len(self.buffer))
            body = self.buffer[:taken]
            self.buffer = self.buffer[taken:]
            self.pending_body -= taken
        else:
            body = b""
        del body
        assert self.transport is not None
        if path.startswith("/_"):
            self.transport.write(self._control(method, path))
        else:
            Receiver.arrivals.append((now, method, path))
            if path.startswith("/hang/") and not Receiver.released:
                Receiver.hanging.append(self.transport)  # never answered
            elif path.startswith("/slow/"):
                transport = self.transport
                asyncio.get_running_loop().call_later(
                    SLOW_SECONDS, lambda: None if transport.is_closing() else transport.write(OK)
                )
            else:
                self.transport.write(OK)
        return True

    @staticmethod
    def _control(method: str, path: str) -> bytes:
        payload: Any
        if path == "/_arrivals":
            payload = Receiver.arrivals
        elif path == "/_reset" and method == "POST":
            Receiver.arrivals = []
            Receiver.released = False
            payload = {"reset": True}
        elif path == "/_release" and method == "POST":
            Receiver.released = True
            for transport in Receiver.hanging:
                transport.close()
            payload = {"released": len(Receiver.hanging)}
            Receiver.hanging = []
        else:
            payload = {"error": "unknown control path"}
        data = json.dumps(payload).encode()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> None:
    port = int(argv[1]) if len(argv) > 1 else 0
    asyncio.run(serve(port))


if __name__ == "__main__":
    main(sys.argv)
