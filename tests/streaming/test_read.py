"""streaming/read.py on the real broker: read to the end offsets taken at the start, incrementally, and
never past an open transaction when reading to the last stable offset."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer

from payments.settings import KafkaSettings
from payments.streaming.read import EndOffsets, TopicReader, read_to_end

pytestmark = pytest.mark.integration


def _produce(kafka: KafkaSettings, topic: str, n: int, start: int = 0) -> None:
    producer = Producer(kafka.client_config())
    for i in range(start, start + n):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0


def test_read_to_end_yields_every_record_once(kafka_settings: KafkaSettings) -> None:
    topic = kafka_settings.topics.results
    _produce(kafka_settings, topic, 40)
    records = list(read_to_end(kafka_settings, topic, timeout_s=60))
    assert sorted(r.value or b"" for r in records) == sorted(f"v{i}".encode() for i in range(40))
    assert len({(r.partition, r.offset) for r in records}) == 40


def test_a_reader_catches_up_incrementally(kafka_settings: KafkaSettings) -> None:
    topic = kafka_settings.topics.ledger
    _produce(kafka_settings, topic, 10)
    with TopicReader(kafka_settings, [topic], name="test") as reader:
        assert len(list(reader.read_to_end(timeout_s=60))) == 10
        assert reader.complete
        _produce(kafka_settings, topic, 5, start=10)
        again = list(reader.read_to_end(timeout_s=60))
        assert sorted(r.value or b"" for r in again) == sorted(f"v{i}".encode() for i in range(10, 15))
        assert reader.complete


def test_an_open_transaction_is_not_waited_for_at_the_last_stable_offset(
    kafka_settings: KafkaSettings,
) -> None:
    topic = kafka_settings.topics.commands
    _produce(kafka_settings, topic, 4)
    txn = Producer({**kafka_settings.client_config(), "transactional.id": f"test-{uuid.uuid4().hex}"})
    txn.init_transactions(30)
    txn.begin_transaction()
    for i in range(3):
        txn.produce(topic, key=b"k0", value=f"t{i}".encode())  # one partition, behind the committed ones
    txn.flush(30)
    with TopicReader(kafka_settings, [topic], name="test") as reader:
        started = time.monotonic()
        seen = [r.value for r in reader.read_to_end(timeout_s=60, committed=True)]
        assert reader.complete
        assert time.monotonic() - started < 30
        assert sorted(v or b"" for v in seen) == [b"v0", b"v1", b"v2", b"v3"]
        txn.commit_transaction(30)
        # The coordinator writes the commit markers after commit_transaction() returns: the last stable
        # offset moves past the transaction a moment later, and the next catch-up reads it.
        after: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while len(after) < 3 and time.monotonic() < deadline:
            after += [r.value for r in reader.read_to_end(timeout_s=60, committed=True)]
        assert after == [b"t0", b"t1", b"t2"]


def test_end_offsets_of_an_empty_request() -> None:
    assert EndOffsets(KafkaSettings(bootstrap="127.0.0.1:1")).query([]) == {}
