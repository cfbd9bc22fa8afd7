"""Beat stopped: /readyz answers 503 within READY_SWEEP_SECONDS, and 200 again once
beat is back (issue 12, item 7), with real ``celery worker`` and ``celery beat``."""

from __future__ import annotations

import os
import signal
import time

from app.ops.sweep import forget_recorded
from tests.builders import ready
from tests.support import REDIS_URL, wait_for

SWEEP_SECONDS = 4


def test_readyz_fails_within_the_interval_when_beat_stops(
    app, celery_app, celery_processes, client
) -> None:
    app.config.update(READY_SWEEP_SECONDS=SWEEP_SECONDS, CELERY_BROKER_URL=REDIS_URL)
    forget_recorded()
    processes = celery_processes(heartbeat_seconds=1)
    processes.environment["INCIDENTFLOW_READY_SWEEP_SECONDS"] = str(SWEEP_SECONDS)
    processes.worker()
    beat = processes.beat()

    def readiness() -> tuple[int, dict]:
        return ready(client)  # with its details, shown to the metrics token

    def ready_with_sweep() -> bool:
        status, body = readiness()
        return status == 200 and body["checks"]["sweep"]["checked"] is True

    wait_for(ready_with_sweep, 90, "/readyz 200 with beat's sweep recorded", processes.logs)

    os.killpg(beat.pid, signal.SIGKILL)
    beat.wait(timeout=30)
    stopped = time.monotonic()

    def unready() -> dict | None:
        status, body = readiness()
        return body if status == 503 else None

    body = wait_for(unready, 30, "/readyz 503 after beat stopped", processes.logs, every=0.2)
    waited = time.monotonic() - stopped
    # At most the interval, plus the time between two recordings (a quarter of it).
    assert waited <= SWEEP_SECONDS * 1.25 + 1, waited
    assert body["checks"]["sweep"]["ok"] is False
    assert "beat (dispatch_due)" in body["checks"]["sweep"]["error"]
    # The worker is alive and the broker answers: only the sweep says what is wrong.
    assert body["checks"]["workers"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True

    processes.beat()
    wait_for(lambda: readiness()[0] == 200, 60, "/readyz 200 with beat back", processes.logs)
