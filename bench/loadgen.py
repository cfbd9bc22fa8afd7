"""The end-to-end load generator: HTTP clients POSTing incidents, in a process of its own.

``python -m bench.loadgen`` reads its instructions as JSON on stdin and writes
what happened as JSON on stdout. Standard library only (it starts in a fraction
of a second and never imports the app), one keep-alive ``http.client``
connection per client thread, and its own GIL: the harness measuring the app
does not slow the clients down, and the clients do not slow the harness.

Instructions::

    {"host": "127.0.0.1", "port": 8000, "token": "...", "team_id": "...",
     "prefix": "c0", "priority": "P1",
     "mode": "closed", "clients": 8, "seconds": 30}       # closed loop
    {"mode": "paced", "rate": 20, "seconds": 30, ...}     # open loop, fixed rate

Closed loop: each client sends its next POST as soon as the previous one is
answered, until ``seconds`` have passed. Paced: POST number n is due at
``start + n / rate`` (an absolute schedule), taken by whichever client thread is
free (two threads per POST due each second, at least 4), so a slow answer does not
delay the following sends.

Output: ``{"started", "ended", "cpu_seconds", "behind_ms", "requests":
[[title, sent, status, answered], ...], "errors": [...]}`` with ``time.time()``
stamps; ``sent`` is taken right before the request is written, and the title
(``<prefix>-<client>-<n>``) is what the workflow's webhook carries in its URL.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import sys
import threading
import time
from typing import Any

API_PATH = "/api/v1/incidents"


class Client:
    """One keep-alive connection; reconnects once when the server closed an idle one."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return self.connection

    def post(self, body: bytes) -> tuple[float, int]:
        """(time the request was sent, status)."""
        for attempt in (1, 2):
            connection = self._connect()
            sent = time.time()
            try:
                connection.request("POST", API_PATH, body, self.headers)
                response = connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return sent, response.status
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                # An idle keep-alive connection the server had closed: nothing was
                # processed, so sending again on a new connection is safe.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def body_for(title: str, priority: str, team_id: str) -> bytes:
    return json.dumps({"title": title, "priority": priority, "teamId": team_id}).encode()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    seconds = float(spec["seconds"])
    mode = spec["mode"]
    prefix = spec["prefix"]
    priority = spec.get("priority", "P1")
    team_id = spec["team_id"]
    requests: list[list[Any]] = []
    errors: list[str] = []
    lock = threading.Lock()
    behind = [0.0]
    if mode == "closed":
        clients = int(spec["clients"])
    else:
        rate = float(spec["rate"])
        count = int(spec.get("count") or max(1, round(rate * seconds)))
        # Enough clients that slow answers do not hold up the schedule (open loop):
        # two per POST due each second, at least 4.
        clients = int(spec.get("clients") or min(64, max(4, math.ceil(2 * rate))))
        counter = itertools.count()
    start_barrier = threading.Barrier(clients + 1)
    begin = [0.0, 0.0]  # monotonic, time.time() at the start

    def record(title: str, sent: float, status: int) -> None:
        with lock:
            requests.append([title, sent, status, time.time()])

    def worker(index: int) -> None:
        client = Client(spec["host"], int(spec["port"]), spec["token"])
        start_barrier.wait()
        start = begin[0]
        try:
            if mode == "closed":
                for n in itertools.count():
                    if time.monotonic() - start >= seconds:
                        break
                    title = f"{prefix}-{index}-{n}"
                    sent, status = client.post(body_for(title, priority, team_id))
                    record(title, sent, status)
            else:
                while True:
                    with lock:
                        n = next(counter)
                    if n >= count:
                        break
                    wait = start + n / rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    elif -wait > behind[0]:
                        behind[0] = -wait
                    title = f"{prefix}-{index}-{n}"
                    sent, status = client.post(body_for(title, priority, team_id))
                    record(title, sent, status)
        except Exception as error:
            with lock:
                errors.append(f"{type(error).__name__}: {error}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before = time.process_time()
    begin[0], begin[1] = time.monotonic(), time.time()
    start_barrier.wait()
    for thread in threads:
        thread.join()
    ended = time.time()
    return {
        "started": begin[1],
        "ended": ended,
        "cpu_seconds": time.process_time() - cpu_before,
        "behind_ms": round(behind[0] * 1000, 1),
        "clients": clients,
        "requests": requests,
        "errors": errors[:5],
    }


def main() -> None:
    spec = json.loads(sys.stdin.read())
    json.dump(run(spec), sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
