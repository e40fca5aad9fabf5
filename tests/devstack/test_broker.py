"""The local Kafka broker is a real, transactional Kafka: topics, transactions, partitioning, restarts."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # public, but not re-exported in the hints
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from payments.devstack.errors import DevstackError
from payments.devstack.kafka import KafkaBroker, default_cache_dir, fetch_kafka_jars
from payments.devstack.topics import create_topics
from payments.settings import KafkaSettings


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _new_topic(bootstrap: str, partitions: int) -> str:
    name = f"t{uuid.uuid4().hex[:8]}.devstack-test"
    admin = _admin(bootstrap)  # must outlive the future: destroying the client fails what is pending
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)[name].result()
    return name


def _read_partition(
    bootstrap: str, topic: str, partition: int, *, isolation: str, expect: int, timeout_s: float = 30.0
) -> list[bytes]:
    """Values of one partition from the start, returned once at least ``expect`` were read and the end of
    the partition (for read_committed: the last stable offset) is reached."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None and err.code() == KafkaError._PARTITION_EOF:
                if len(values) >= expect:
                    return values
                continue
            assert err is None, err
            value = msg.value()
            assert value is not None
            values.append(value)
        raise AssertionError(f"read {values} from {topic}[{partition}], wanted {expect} within {timeout_s}s")
    finally:
        consumer.close()


def _transactional_producer(bootstrap: str, **extra: str | int) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}", **extra}
    )
    producer.init_transactions(30)
    return producer


def _commit(producer: Producer, topic: str, values: list[bytes]) -> None:
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value=value, partition=0)
    producer.commit_transaction(30)


# --- topics -------------------------------------------------------------------------------------------


def test_topics_have_the_configured_partitions_and_the_state_topics_compact(
    kafka_settings: KafkaSettings,
) -> None:
    admin = _admin(kafka_settings.bootstrap)
    metadata = admin.list_topics(timeout=10)
    for name in kafka_settings.topics.all():
        assert len(metadata.topics[name].partitions) == kafka_settings.partitions == 8
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in kafka_settings.topics.all()]
    policies = {
        resource.name: future.result()["cleanup.policy"].value
        for resource, future in admin.describe_configs(resources).items()
    }
    t = kafka_settings.topics
    for compacted in (t.state, t.reconciler_state, t.discrepancies):
        assert policies.pop(compacted) == "compact"
    assert set(policies.values()) == {"delete"}


def test_create_topics_is_idempotent(kafka_settings: KafkaSettings) -> None:
    create_topics(kafka_settings.bootstrap, kafka_settings)


def test_create_topics_refuses_existing_topics_with_another_partition_count(
    kafka_settings: KafkaSettings,
) -> None:
    # The gateway routes keys with murmur2 modulo the configured count; a silent mismatch would misroute.
    other = kafka_settings.model_copy(update={"partitions": 4})
    with pytest.raises(DevstackError, match="has 8 partitions, the settings say 4"):
        create_topics(kafka_settings.bootstrap, other)


# --- transactions ------------------------------------------------------------------------------------


def test_read_committed_sees_committed_transactions_and_never_aborted_ones(
    kafka_settings: KafkaSettings,
) -> None:
    topic, bootstrap = kafka_settings.topics.commands, kafka_settings.bootstrap
    producer = _transactional_producer(bootstrap)
    _commit(producer, topic, [b"committed-1", b"committed-2"])
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted", partition=0)
    producer.flush(10)  # the aborted record really is in the log, not just in the client's buffer
    producer.abort_transaction(30)
    _commit(producer, topic, [b"committed-3"])

    committed = _read_partition(bootstrap, topic, 0, isolation="read_committed", expect=3)
    uncommitted = _read_partition(bootstrap, topic, 0, isolation="read_uncommitted", expect=4)

    assert committed == [b"committed-1", b"committed-2", b"committed-3"]
    assert uncommitted == [b"committed-1", b"committed-2", b"aborted", b"committed-3"]


# --- partitioning: Kafka's Utils.murmur2, written out independently of payments.devstack.murmur2 -------


def _int32(x: int) -> int:
    """Wrap to Java's signed 32-bit int."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _ushr(x: int, n: int) -> int:
    """Java's ``x >>> n`` on an int."""
    return (x & 0xFFFFFFFF) >> n


def java_murmur2(data: bytes) -> int:
    """Line for line ``org.apache.kafka.common.utils.Utils.murmur2``."""
    length = len(data)
    seed = _int32(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = _int32(seed ^ length)
    for i in range(length // 4):
        i4 = i * 4
        k = _int32(data[i4] + (data[i4 + 1] << 8) + (data[i4 + 2] << 16) + (data[i4 + 3] << 24))
        k = _int32(k * m)
        k ^= _ushr(k, r)
        k = _int32(k * m)
        h = _int32(h * m)
        h ^= k
    tail = length & ~3
    if length % 4 == 3:
        h ^= data[tail + 2] << 16
    if length % 4 >= 2:
        h ^= data[tail + 1] << 8
    if length % 4 >= 1:
        h ^= data[tail]
        h = _int32(h * m)
    h ^= _ushr(h, 13)
    h = _int32(h * m)
    h ^= _ushr(h, 15)
    return h


def java_partition(key: bytes, partitions: int) -> int:
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions  # Utils.toPositive(h) % n


def test_the_reference_formula_matches_kafkas_published_test_vectors() -> None:
    assert java_murmur2(b"21") == -973932308
    assert java_murmur2(b"foobar") == -790332482
    assert java_murmur2(b"a-little-bit-long-string") == -985981536
    assert java_murmur2(b"abc") == 479470107


def test_keyed_records_land_on_the_partition_javas_murmur2_gives(kafka_settings: KafkaSettings) -> None:
    partitions = 37  # prime, so every bit of the hash matters to the modulo
    topic = _new_topic(kafka_settings.bootstrap, partitions)
    keys = [f"acct-{i}".encode() for i in range(300)] + [b"x", b"xy", b"xyz", "kéy-ünïcode".encode()]
    placed: dict[bytes, int] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        key, partition = msg.key(), msg.partition()
        assert key is not None
        assert partition is not None
        placed[key] = partition

    producer = Producer({**kafka_settings.client_config(), "linger.ms": 5})
    for key in keys:
        producer.produce(topic, key=key, value=b"", on_delivery=on_delivery)
    assert producer.flush(30) == 0

    assert placed == {key: java_partition(key, partitions) for key in keys}
    assert len(set(placed.values())) == partitions  # 300 keys spread over every partition


# --- restarts (the fault suite's tool) ---------------------------------------------------------------


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_restart_keeps_the_address_and_committed_data(kafka_broker: KafkaBroker, hard: bool) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = _new_topic(bootstrap, 1)
    _commit(_transactional_producer(bootstrap), topic, [b"before-restart"])
    # A transaction left open by a producer that dies with the broker: the coordinator must abort it
    # once its 2 s timeout passes, or read_committed readers would be stuck behind it for ever.
    open_txn = _transactional_producer(bootstrap, **{"transaction.timeout.ms": 2000})
    open_txn.begin_transaction()
    open_txn.produce(topic, value=b"never-committed", partition=0)
    open_txn.flush(10)
    old_pid = kafka_broker.pid
    assert old_pid is not None

    kafka_broker.restart(hard=hard)

    assert kafka_broker.bootstrap == bootstrap
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)  # reaped, not left behind
    values = _read_partition(bootstrap, topic, 0, isolation="read_committed", expect=1, timeout_s=60)
    assert values == [b"before-restart"]
    _commit(_transactional_producer(bootstrap), topic, [b"after-restart"])
    values = _read_partition(bootstrap, topic, 0, isolation="read_committed", expect=2)
    assert values == [b"before-restart", b"after-restart"]


# --- jars --------------------------------------------------------------------------------------------


def test_jars_are_the_releases_logging_set(kafka_broker: KafkaBroker) -> None:
    jars = {p.name for p in fetch_kafka_jars().glob("*.jar")}
    assert {"kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar"} <= jars
    assert {"log4j-slf4j-impl-2.24.3.jar", "log4j-core-2.24.3.jar", "log4j-1.2-api-2.24.3.jar"} <= jars
    assert {"jackson-dataformat-yaml-2.19.0.jar", "slf4j-api-1.7.36.jar"} <= jars
    assert not [j for j in jars if j.startswith("slf4j-api-2")]


def test_a_second_fetch_needs_neither_maven_nor_the_network(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no mvn, no java: only the marker file can answer
    started = time.monotonic()
    libs = fetch_kafka_jars()
    assert time.monotonic() - started < 1.0
    assert libs.parent.parent == default_cache_dir()


def test_fetch_without_maven_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DevstackError, match="apt-get install -y maven"):
        fetch_kafka_jars(tmp_path)
