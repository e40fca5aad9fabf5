"""``payments.devstack.murmur2`` is Kafka's partitioner: same hash as the Java client, same partition as
librdkafka's ``murmur2_random`` on a real broker."""

from __future__ import annotations

import random
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # public, not re-exported

from payments.devstack.kafka import fetch_kafka_jars, require_java
from payments.devstack.murmur2 import murmur2, partition_for
from payments.settings import KafkaSettings

# From Kafka's own UtilsTest.testMurmur2.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

# Reads hex keys on stdin, prints Utils.murmur2 of each: the Java client's own code as the oracle.
JAVA_ORACLE = """
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import org.apache.kafka.common.utils.Utils;

public class Murmur2Oracle {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            System.out.println(Utils.murmur2(HexFormat.of().parseHex(line.strip())));
        }
    }
}
"""


def _keys() -> list[bytes]:
    rng = random.Random(20240601)  # fixed: a failure must be reproducible
    keys = [rng.randbytes(n) for n in range(0, 33) for _ in range(8)]  # every tail length, empty too
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(100)]  # account-id shaped
    keys += ["clé-ünïcode-账户".encode()]
    return keys


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS.items())
def test_matches_kafkas_published_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_clears_the_sign_bit_rather_than_taking_abs() -> None:
    h = murmur2(b"21")
    assert h < 0
    assert partition_for(b"21", 1000) == (h & 0x7FFFFFFF) % 1000 == 340
    assert abs(h) % 1000 != 340  # the classic mistake would route this key elsewhere


def test_a_topic_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"k", 0)


def test_matches_the_java_clients_utils_murmur2(tmp_path: Path) -> None:
    source = tmp_path / "Murmur2Oracle.java"
    source.write_text(JAVA_ORACLE)
    keys = _keys()
    done = subprocess.run(
        [require_java(), "-cp", f"{fetch_kafka_jars()}/*", str(source)],
        input="".join(key.hex() + "\n" for key in keys),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    java = [int(line) for line in done.stdout.split()]
    assert [murmur2(key) for key in keys] == java


@pytest.mark.parametrize("partitions", [8, 64])
def test_predicts_where_librdkafkas_murmur2_random_puts_each_key(
    kafka_settings: KafkaSettings, partitions: int
) -> None:
    topic = f"{kafka_settings.topics.commands}.p{partitions}"
    admin = AdminClient({"bootstrap.servers": kafka_settings.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)[topic].result()
    keys = _keys()  # the empty key too: it is hashed like any other, only a null key is random
    placed: dict[bytes, int] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        key, partition = msg.key(), msg.partition()
        assert key is not None
        assert partition is not None
        placed[key] = partition

    producer = Producer({**kafka_settings.client_config(), "linger.ms": 5})  # partitioner: murmur2_random
    for key in keys:
        producer.produce(topic, key=key, value=b"", on_delivery=on_delivery)
    assert producer.flush(30) == 0
    admin.delete_topics([topic])

    assert placed == {key: partition_for(key, partitions) for key in keys}
