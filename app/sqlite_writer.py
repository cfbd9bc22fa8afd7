"""SQLite's one writer, shared fairly between the web processes and the worker.

SQLite lets one transaction write at a time. A connection that finds the file
locked sleeps in its busy handler (1, 2, 5 ... 100 ms) and tries again, so under
sustained load the side that writes most often (the web processes, one commit
per incident) keeps winning while the worker sleeps: runs waited for the burst
to end. Here every connection queues for a lock file (``flock``, which the
kernel hands over the moment it is released) before its transaction's first
write, and lets go when the transaction ends. Readers never take it (WAL lets
them read during a write). Each connection has its own open file, so threads
of one process queue like processes do.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

import sqlalchemy as sa

_WRITES = ("insert", "update", "delete", "replace")
_FD = "incidentflow.writer_fd"
_HELD = "incidentflow.writer_held"


def install(engine: sa.Engine) -> None:
    """Queue the engine's write transactions on ``<database file>-writer.lock``."""
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        return
    path = os.path.realpath(database) + "-writer.lock"

    @sa.event.listens_for(engine, "connect")
    def open_lock_file(_dbapi_connection: Any, record: Any) -> None:
        record.info[_FD] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @sa.event.listens_for(engine, "close")
    def close_lock_file(_dbapi_connection: Any, record: Any) -> None:
        fd = record.info.pop(_FD, None)
        if fd is not None:
            os.close(fd)  # closing the file also releases a lock still held

    @sa.event.listens_for(engine, "before_cursor_execute")
    def queue_for_the_writer(
        conn: sa.Connection, _cursor: Any, statement: str, *_args: Any
    ) -> None:
        info = conn.info
        if info.get(_HELD) or not statement.lstrip()[:7].lower().startswith(_WRITES):
            return
        fd = info.get(_FD)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            info[_HELD] = True

    def release(conn: sa.Connection) -> None:
        info = conn.info
        if info.pop(_HELD, False):
            fcntl.flock(info[_FD], fcntl.LOCK_UN)

    sa.event.listen(engine, "commit", release)
    sa.event.listen(engine, "rollback", release)
