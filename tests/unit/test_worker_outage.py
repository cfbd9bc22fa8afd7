"""A worker that loses its database backs off (capped, with jitter) and says so once
each way, instead of retrying in a hot loop."""

from __future__ import annotations

import logging
import random
import socket
import threading
import time

from app import create_app
from app.engine.worker import Outage, Worker, WorkerSettings


def test_the_backoff_grows_is_capped_and_logs_once_each_way(caplog) -> None:
    caplog.set_level(logging.INFO, logger="incidentflow.engine.worker")
    outage = Outage(cap=5.0, rng=random.Random(1))
    pauses = [outage.failed(ConnectionError()) for _ in range(12)]
    assert pauses[0] < pauses[3] < pauses[6]
    assert max(pauses) <= 5.0 and pauses[-1] >= 2.5  # capped, with jitter below the cap
    outage.recovered()
    outage.recovered()  # nothing more to say
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "database unreachable; retrying with backoff",
        "database reachable again",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_without_its_database_does_not_hot_loop(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="incidentflow.engine.worker")
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp_path)}
    )
    worker = Worker(app, settings=WorkerSettings(backoff_max_seconds=1.0))
    passes = 0
    original = worker._pass

    def counting(outage: Outage) -> float:
        nonlocal passes
        passes += 1
        return original(outage)

    worker._pass = counting  # type: ignore[method-assign]
    loop = threading.Thread(target=worker._loop)
    loop.start()
    time.sleep(3)
    worker.stop()
    loop.join(10)
    assert not loop.is_alive()
    # Pauses of 0.1, 0.2, 0.4, 0.8, 1, 1 ... s (halved at worst by jitter): a handful
    # of tries in 3 s, where a hot loop makes hundreds.
    assert 2 <= passes <= 15
    unreachable = [r for r in caplog.records if "database unreachable" in r.getMessage()]
    assert len(unreachable) == 1
