"""SQLite writers queue on a lock file from their first write to the transaction's end;
readers never take it."""

from __future__ import annotations

import fcntl
import os

import pytest
import sqlalchemy as sa

from app import sqlite_writer


@pytest.fixture
def engine(tmp_path):
    """A SQLite engine (WAL) with the writer queue installed, and a table ``t``."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", connect_args={"timeout": 30})
    sqlite_writer.install(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("PRAGMA journal_mode=WAL"))
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    yield engine
    engine.dispose()


def lock_is_free(tmp_path) -> bool:
    fd = os.open(str(tmp_path / "db.sqlite") + "-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # also releases the probe's own lock
    return True


def test_a_writing_transaction_holds_the_queue_until_it_commits(engine, tmp_path) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT count(*) FROM t"))
        assert lock_is_free(tmp_path)  # reading takes nothing
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert not lock_is_free(tmp_path)  # the next writer waits here, not in SQLite
        with engine.connect() as reader:  # readers still read (WAL)
            assert reader.scalar(sa.text("SELECT count(*) FROM t")) == 0
    assert lock_is_free(tmp_path)


def test_a_rolled_back_writer_lets_the_next_one_in(engine, tmp_path) -> None:
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(sa.text("UPDATE t SET n = 2"))
        assert not lock_is_free(tmp_path)
        trans.rollback()
        assert lock_is_free(tmp_path)
