"""Kombu's Redis transport, with Celery workers surviving a broker outage with tasks
in flight (issue 12).

The crashes, as they happen with celery 5.7.0, kombu 5.7.0 and redis-py 8.2.0: on
a lost connection, Celery's consumer calls ``connection.collect()`` and then
``connection.close()``; ``collect()`` detaches the transport from the connection
(``transport.client = None``) even when it could not close the default channel
(its poll read fails again while Redis is down), and closing a channel detaches
it from the transport. Two things then reach Redis through a detached channel:

* ``close()`` closes that channel for real and its QoS restores the
  unacknowledged messages;
* a task that was running during the outage finishes and is acknowledged on the
  channel it came from.

Both build a new connection pool from the missing transport or client and raise
``AttributeError: 'NoneType' object has no attribute 'hostname'`` (or
``'client'``). That is no connection error, so Celery stops the worker
("Unrecoverable error"). It happens only while the worker holds unacknowledged
messages, i.e. tasks in flight (``task_acks_late``); no upstream fix exists at
the time of writing (tests/celery/test_broker_transport.py shows kombu's own
transport failing, and will say when that changes).

Here the QoS raises the connection error it is: Celery and kombu already handle
those (the restore is skipped, the ack is logged as not sent). Nothing is lost:
the messages stay in Redis's ``unacked`` hash (if Redis kept them) and come back
after the visibility timeout, and in any case the database is the source of
truth: ``dispatch_due`` sends every run that is still due again after
``ENGINE_DISPATCH_WINDOW_SECONDS``, and a duplicate message finds nothing to do.

Used for ``redis://`` brokers through Celery's ``broker_transport`` setting.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

log = logging.getLogger("incidentflow.broker")

TRANSPORT = "app.ops.broker:Transport"


class QoS(kombu_redis.QoS):
    def _require_connection(self, doing: str) -> None:
        transport = self.channel.connection
        if transport is None or getattr(transport, "client", None) is None:
            log.warning("broker connection closed: could not %s", doing)
            raise redis.ConnectionError(f"The broker connection is closed; cannot {doing}.")

    def restore_unacked(self, client: Any = None) -> Any:
        if client is None:
            self._require_connection(f"put back {len(self._delivered)} unacknowledged message(s)")
        return super().restore_unacked(client)  # type: ignore[no-untyped-call]

    def ack(self, delivery_tag: Any) -> None:
        self._require_connection("acknowledge a message")
        super().ack(delivery_tag)  # type: ignore[no-untyped-call]

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        self._require_connection("reject a message")
        super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(url: str) -> str | None:
    """Celery's ``broker_transport`` for ``url``: this transport for ``redis://``,
    Celery's own choice (None) for anything else."""
    return TRANSPORT if url.startswith("redis://") else None
