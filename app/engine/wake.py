"""Wake a sleeping worker when work is committed, instead of making it poll.

- PostgreSQL: ``signal_work`` runs ``pg_notify`` inside the transaction that adds
  the work; PostgreSQL delivers it at commit (never for a rollback) to every
  worker that LISTENs, on any machine.
- SQLite (the embedded default, one machine): a datagram to the worker's socket
  in Linux's abstract namespace, named after the database file, sent after the
  commit. No worker listening, or not Linux: nothing happens, and the worker's
  slow safety-net poll finds the work.
- The Celery backend: one ``consume_events`` message after the commit, so exactly
  one worker process wakes (a NOTIFY would wake every process of every machine).

``Waker`` is the worker's side: it sleeps until a signal, a local ``poke`` (a run
finished and a thread is free), or a timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger("incidentflow.engine.wake")

CHANNEL = "incidentflow_work"
_PENDING = "incidentflow.wake_after_commit"
_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL}', '')")


def local_address(database_url: str) -> str | None:
    """The abstract socket name for a SQLite database file (None elsewhere)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or not hasattr(socket, "AF_UNIX"):
        return None
    path = os.path.realpath(url.database)
    return "\0incidentflow-" + hashlib.sha256(path.encode()).hexdigest()[:24]


_BROKER_SEND = "incidentflow.wake_broker_send"


def use_broker(app: Flask, send: Callable[[], None]) -> None:
    """Wake ``app``'s workers with ``send()`` (a broker message) after each commit that
    adds work, instead of NOTIFY or the local socket."""
    app.extensions[_BROKER_SEND] = send


def _broker_send() -> Callable[[], None] | None:
    if not has_app_context():
        return None
    send: Callable[[], None] | None = current_app.extensions.get(_BROKER_SEND)
    return send


def signal_work(session: Session | scoped_session[Any]) -> None:
    """Say, in the session's transaction, that there is new work for the workers."""
    send = _broker_send()
    if send is not None:
        session.info[_PENDING] = send
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        if not session.info.get(_PENDING):  # once per transaction is enough
            session.info[_PENDING] = True
            session.execute(_NOTIFY)
        return
    engine = bind if isinstance(bind, sa.Engine) else bind.engine
    address = _address_of(engine)
    if address is not None:
        session.info[_PENDING] = address


_addresses: dict[str, str | None] = {}


def _address_of(engine: sa.Engine) -> str | None:
    key = engine.url.render_as_string(hide_password=False)
    if key not in _addresses:
        _addresses[key] = local_address(key)
    return _addresses[key]


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if callable(pending):
        try:
            pending()
        except Exception:  # the broker is down: beat's periodic consume finds the work
            log.warning("could not send the wake-up message to the broker", exc_info=True)
    elif isinstance(pending, str):
        _send(pending)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


_sender_lock = threading.Lock()
_sender: socket.socket | None = None


def _send(address: str) -> None:
    global _sender
    try:
        with _sender_lock:
            if _sender is None:
                _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                _sender.setblocking(False)
            _sender.sendto(b"w", address)
    except OSError:
        pass  # nobody listening (or its queue is full: it is awake anyway)


class Waker:
    """Where a worker sleeps until there may be work."""

    def __init__(self, database_url: str, *, listen: bool = True) -> None:
        self._url = sa.make_url(database_url)
        self._read, self._write = os.pipe()
        self._closing = threading.Lock()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._local: socket.socket | None = None
        self._listener: Any = None
        self._listen_failed = False
        address = local_address(database_url)
        if address is not None:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.bind(address)
                sock.setblocking(False)
                self._local = sock
            except OSError:
                # Another worker holds it (the SQLite worker lock says more); poll instead.
                log.warning("wake socket taken; this worker polls for new work")
        elif listen and self._url.get_backend_name() == "postgresql":
            self._listen()
        self._listening = listen

    def _listen(self) -> None:
        import psycopg

        try:
            url = self._url.set(drivername="postgresql")
            conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            conn.execute(f"LISTEN {CHANNEL}")
            self._listener = conn
        except Exception:
            self._listener = None
            if not self._listen_failed:  # once per outage, not once per try
                log.warning("could not LISTEN for new work; polling until it can")
            self._listen_failed = True
        else:
            if self._listen_failed:
                log.info("listening for new work again")
            self._listen_failed = False

    def poke(self) -> None:
        """Wake the sleeper now (from any thread)."""
        # A full pipe means a wake is already pending; a closed one, nobody sleeps.
        # (Never write to a closed descriptor: its number may belong to a new file.)
        with self._closing, contextlib.suppress(OSError):
            if self._write >= 0:
                os.write(self._write, b"p")

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True when woken by a signal or a poke."""
        if (
            self._listener is None
            and self._listening
            and self._url.get_backend_name() == "postgresql"
        ):
            self._listen()  # the database was down; try again
        sources: list[Any] = [self._read]
        if self._local is not None:
            sources.append(self._local)
        if self._listener is not None:
            sources.append(self._listener.pgconn.socket)
        try:
            ready, _, _ = select.select(sources, [], [], max(timeout, 0))
        except (OSError, ValueError):
            self._drop_listener()
            return False
        for source in ready:
            self._drain(source)
        return bool(ready)

    def _drain(self, source: Any) -> None:
        try:
            if source == self._read:
                while os.read(self._read, 4096):
                    pass
            elif self._local is not None and source is self._local:
                while True:
                    self._local.recv(64)
            elif self._listener is not None:
                pgconn = self._listener.pgconn
                pgconn.consume_input()
                while pgconn.notifies() is not None:
                    pass
                if pgconn.status != 0:  # CONNECTION_OK
                    self._drop_listener()
        except BlockingIOError:
            pass
        except Exception:
            self._drop_listener()

    def _drop_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None

    def close(self) -> None:
        self._drop_listener()
        if self._local is not None:
            self._local.close()
            self._local = None
        with self._closing:
            for fd in (self._read, self._write):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._read = self._write = -1
