"""Real infrastructure for the whole suite: one Kafka broker and one redis-server per test session.

Nothing is mocked and nothing is skipped: if the broker or Redis cannot start, every test that needs them
errors with the reason (run ``scripts/setup.sh`` first on a fresh machine).

- ``PAYMENTS_TEST_BOOTSTRAP`` points ``kafka_bootstrap`` at an external broker instead of starting one.
- ``PAYMENTS_TEST_REDIS_URL`` does the same for ``redis_url``.

Tests share the broker but not topics: ``kafka_settings`` gives each test its own topic names under a
unique prefix, and deletes them afterwards so a long run does not pile up partitions.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from payments.devstack.kafka import KafkaBroker
from payments.devstack.redis import RedisServer
from payments.devstack.topics import create_topics
from payments.settings import KafkaSettings, TopicNames

TEST_PARTITIONS = 8

# Gateways built or started by tests use the development profile (no production rate limit) unless a test
# says otherwise; subprocesses inherit it.
os.environ.setdefault("PAYMENTS_ENV", "development")
_LOG = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker this session runs itself, for tests that restart or crash it.

    Started even when ``PAYMENTS_TEST_BOOTSTRAP`` is set (an external broker cannot be restarted), so such
    tests must use ``kafka_broker.bootstrap``, not ``kafka_bootstrap``. Restarts keep its address.
    """
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), partitions=TEST_PARTITIONS)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """``host:port`` of the session's broker: ``$PAYMENTS_TEST_BOOTSTRAP``, else ``kafka_broker``."""
    external = os.environ.get("PAYMENTS_TEST_BOOTSTRAP")
    if external:
        return external
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return broker.bootstrap


def _unique_topic_names() -> TopicNames:
    """The default topic names under a fresh ``t<8 hex>.`` prefix."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    defaults = TopicNames()
    return TopicNames(
        commands=prefix + defaults.commands,
        state=prefix + defaults.state,
        results=prefix + defaults.results,
        ledger=prefix + defaults.ledger,
        psp_requests=prefix + defaults.psp_requests,
        reconciler_state=prefix + defaults.reconciler_state,
        discrepancies=prefix + defaults.discrepancies,
    )


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Iterator[KafkaSettings]:
    """Settings for this test alone: its own topics (created, 8 partitions each) on the session broker."""
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, partitions=TEST_PARTITIONS, topics=_unique_topic_names()
    )
    create_topics(kafka_bootstrap, settings)
    yield settings
    _delete_topics(settings)


def _delete_topics(settings: KafkaSettings) -> None:
    # Best effort: a failure to clean up must not turn a passing test into an error.
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    for name, future in admin.delete_topics(settings.topics.all(), operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            _LOG.warning("could not delete test topic %s: %s", name, exc)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of the session's redis-server, or ``$PAYMENTS_TEST_REDIS_URL``."""
    external = os.environ.get("PAYMENTS_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_db(redis_url: str) -> str:
    """The session's Redis URL with its database emptied (FLUSHDB) before this test."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url
