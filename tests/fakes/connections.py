"""A raw HTTP/1.1 server on 127.0.0.1 that counts TCP connections and answers
each request as the test scripts it, for the outbound pool's keep-alive tests.

``http.server`` hides connections; here each accepted socket is a
``ServedConnection`` recording the requests that arrived on it and whether
the client closed it. ``answer(...)`` queues how the next requests are
answered (``OK`` when nothing is queued):

- ``OK``: 200 with a small JSON body, the connection kept alive;
- ``OK_THEN_CLOSE``: 200, then the server closes the idle connection (as a
  server whose keep-alive timeout ran out does), setting ``idle_closed``;
- ``CONNECTION_CLOSE``: 200 with ``Connection: close``, then close;
- ``HANG_UP``: close without answering (the request was read);
- ``PARTIAL``: the status line only, then close;
- ``TRICKLE``: the status line, then a header line every 50 ms for 3 s
  (every read is quick, only a total timeout ends it);
- ``SLOW_BODY``: the head at once, the body 0.2 s later.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Self

OK = "ok"
OK_THEN_CLOSE = "ok-then-close"
CONNECTION_CLOSE = "connection-close"
HANG_UP = "hang-up"
PARTIAL = "partial"
TRICKLE = "trickle"
SLOW_BODY = "slow-body"

_BODY = b'{"ok": true}'


@dataclass
class ServedConnection:
    """One TCP connection the server accepted."""

    number: int
    requests: list[bytes] = field(default_factory=list)  # request line + body
    #: The client closed it (the server read end of file).
    closed_by_client: threading.Event = field(default_factory=threading.Event)


class KeepAliveServer:
    """Counts connections; answers requests in the order ``answer`` queued."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections: list[ServedConnection] = []
        self.idle_closed = threading.Event()
        self._answers: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[bytes]:
        with self._lock:
            return [request for conn in self.connections for request in conn.requests]

    def answer(self, *answers: str) -> None:
        with self._lock:
            self._answers.extend(answers)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                served = ServedConnection(len(self.connections) + 1)
                self.connections.append(served)
                self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock, served), daemon=True).start()

    def _serve(self, sock: socket.socket, served: ServedConnection) -> None:
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = sock.recv(65536)
                    if not chunk:
                        served.closed_by_client.set()
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = _content_length(head)
                while len(buffer) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        served.closed_by_client.set()
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                with self._lock:
                    served.requests.append(head.split(b"\r\n", 1)[0] + b"\r\n" + body)
                    answer = self._answers.popleft() if self._answers else OK
                if not self._respond(sock, answer):
                    return
        except OSError:
            return
        finally:
            sock.close()

    def _respond(self, sock: socket.socket, answer: str) -> bool:
        """Answer one request; False when the connection is closed after it."""
        ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        length = b"Content-Length: %d\r\n\r\n" % len(_BODY)
        if answer == OK:
            sock.sendall(ok + length + _BODY)
            return True
        if answer == OK_THEN_CLOSE:
            sock.sendall(ok + length + _BODY)
            sock.close()
            self.idle_closed.set()
            return False
        if answer == CONNECTION_CLOSE:
            sock.sendall(ok + b"Connection: close\r\n" + length + _BODY)
            return False
        if answer == HANG_UP:
            return False
        if answer == PARTIAL:
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            return False
        if answer == TRICKLE:
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(60):
                if self._stopping.wait(0.05):
                    return False
                sock.sendall(b"X-Slow: 1\r\n")
            sock.sendall(length + _BODY)
            return True
        if answer == SLOW_BODY:
            sock.sendall(ok + length)
            if self._stopping.wait(0.2):
                return False
            sock.sendall(_BODY)
            return True
        raise AssertionError(f"unknown answer {answer!r}")


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0
