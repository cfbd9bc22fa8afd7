"""The crash of issue 12 in isolation: a channel holding unacknowledged messages is
closed after its connection was collected (Celery's consumer does both on a lost
broker connection). Kombu's own Redis transport raises AttributeError, which stops
a Celery worker; ours leaves the messages to Redis and the dispatcher."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection
from kombu.message import Message
from kombu.transport import redis as kombu_redis

from app.ops.broker import TRANSPORT, Transport, transport_for
from tests.conftest import require_service
from tests.support import REDIS_URL

QUEUE = "incidentflow.test.unacked"


@pytest.fixture
def broker_db() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        available = bool(client.ping())
    except redis.RedisError:
        available = False
    require_service("Redis", available, f"start redis-server or set TEST_REDIS_URL ({REDIS_URL})")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def hold_a_message(transport: type | str) -> tuple[Connection, Message]:
    """A consumer holding one unacknowledged message (a task in flight)."""
    conn = Connection(REDIS_URL, transport=transport)
    channel = conn.default_channel
    channel.queue_declare(QUEUE)
    channel.basic_publish(channel.prepare_message("look at run 1"), exchange="", routing_key=QUEUE)
    message = channel.basic_get(QUEUE, no_ack=False)
    assert message is not None
    return conn, message


def lose_the_connection(conn: Connection) -> None:
    """What Celery's collect() leaves when it could not close the default channel:
    the transport detached from the connection, the channel still open."""
    conn._do_close_transport()


def test_kombus_transport_crashes_closing_a_detached_channel(broker_db) -> None:
    """Upstream behaviour (kombu 5.7.0). If this starts passing without the error,
    kombu fixed it, and app/ops/broker.py may go."""
    conn, _ = hold_a_message(kombu_redis.Transport)
    lose_the_connection(conn)
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'hostname'"):
        conn.close()  # restores the unacknowledged message: a worker exits


def test_our_transport_turns_both_into_connection_errors(broker_db, caplog) -> None:
    conn, message = hold_a_message(Transport)
    lose_the_connection(conn)
    conn.close()  # the connection error is swallowed, as kombu does for those
    assert "broker connection closed: could not put back 1 unacknowledged message(s)" in (
        caplog.text
    )
    with pytest.raises(conn.connection_errors) as raised:
        message.ack()  # Celery logs "Couldn't ack" and goes on
    assert "The broker connection is closed; cannot acknowledge a message." in str(raised.value)
    # Still held in Redis's unacked hash: redelivered after the visibility timeout (and
    # the dispatcher sends its run again before that).
    assert broker_db.hlen("unacked") == 1


def test_our_transport_restores_as_usual_while_connected(broker_db) -> None:
    conn = Connection(REDIS_URL, transport=TRANSPORT)
    channel = conn.default_channel
    channel.queue_declare(QUEUE)
    channel.basic_publish(channel.prepare_message("look at run 2"), exchange="", routing_key=QUEUE)
    assert channel.basic_get(QUEUE, no_ack=False) is not None
    conn.close()  # a clean close puts the message back in its queue
    assert broker_db.llen(QUEUE) == 1 and broker_db.hlen("unacked") == 0


def test_only_redis_urls_use_it() -> None:
    assert transport_for("redis://h:6379/0") == TRANSPORT
    assert transport_for("rediss://h:6379/0") is None
    assert transport_for("amqp://h//") is None
