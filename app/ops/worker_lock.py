"""One embedded worker per SQLite database: an exclusive lock file next to the file.

Two embedded workers on one SQLite file drive the same runs (SQLite has no
``SKIP LOCKED``), so ``flask worker run`` takes ``<database>.worker.lock`` with
``flock`` before it starts and holds it until the process ends; the kernel drops
the lock when the process dies, however it dies. The file keeps the holder's pid
so that the refusal can say who holds it. PostgreSQL needs no such lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

LOCK_SUFFIX = ".worker.lock"


class WorkerLockHeld(RuntimeError):
    """Another embedded worker holds the lock of this SQLite database."""


def lock_path(database_uri: str) -> Path | None:
    """``<database file>.worker.lock`` for a SQLite file; None for other databases."""
    url = sa.make_url(database_uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database) + LOCK_SUFFIX).resolve()


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 100).decode(errors="replace").strip()
    return f"process {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def embedded_worker_lock(database_uri: str) -> Iterator[Path | None]:
    """Hold the database's worker lock for the block; raises WorkerLockHeld if taken."""
    path = lock_path(database_uri)
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerLockHeld(
                f"Another embedded worker ({_holder(fd)}) is running on this SQLite "
                f"database; it holds {path}. Stop it first: two workers on one SQLite "
                "file would drive the same runs twice. (Several workers need PostgreSQL.)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
