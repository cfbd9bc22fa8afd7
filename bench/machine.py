"""The machine the figures were taken on: CPU, cores, memory, versions, load."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _postgres_version() -> str:
    if env.postgres_available():
        return "not available"
    import sqlalchemy as sa

    from app.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(env.POSTGRES_URL))
    with engine.connect() as conn:
        version = str(conn.scalar(sa.text("SHOW server_version")))
    engine.dispose()
    return version


def _redis_version() -> str:
    if env.redis_available():
        return "not available"
    import redis

    client = redis.Redis.from_url(env.REDIS_URL)
    version = str(client.info("server").get("redis_version", "unknown"))
    client.close()
    return version


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=env.ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=env.ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def fsync_latency_ms(count: int = 200) -> dict[str, float]:
    """p50/p99 of writing 4 KiB and ``fdatasync`` in the temporary folder (where the
    SQLite files live): what one durable commit waits for at least."""
    from bench.results import percentile

    times = []
    with tempfile.NamedTemporaryFile(prefix="iflow-bench-fsync-") as handle:
        for _ in range(count):
            handle.write(b"x" * 4096)
            handle.flush()
            started = time.perf_counter()
            os.fdatasync(handle.fileno())
            times.append((time.perf_counter() - started) * 1000)
    return {"p50": round(percentile(times, 50), 2), "p99": round(percentile(times, 99), 2)}


def describe() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgres_version(),
        "redis": _redis_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
        "load_average_at_start": load_average(),
        "fdatasync_ms": fsync_latency_ms(),
    }
