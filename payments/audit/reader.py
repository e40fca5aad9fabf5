"""Reading a whole topic as a read_committed consumer would (in per-partition order)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, TopicPartition

from payments.settings import KafkaSettings


def read_topic(
    kafka: KafkaSettings,
    topic: str,
    *,
    stall_s: float = 30.0,
    timeout_s: float = 300,
    keep_tombstones: bool = False,
) -> Iterator[tuple[bytes, bytes | None]]:
    """Yield (key, value) of every committed record up to the end offsets taken at the start.

    Stops once every partition reached the end offset seen at the start, or after ``stall_s`` without a
    record (an open transaction keeps a read_committed reader behind the LSO until it is resolved, which
    takes at most ``transaction.timeout.ms``).
    """
    c = Consumer(
        {
            **kafka.consumer_config(),
            "group.id": f"audit-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in parts
        }
        pending = {p for p, end in ends.items() if end > 0}
        c.assign([TopicPartition(topic, p, 0) for p in pending])
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while pending and time.monotonic() < deadline and time.monotonic() - last < stall_s:
            for m in c.consume(5000, 0.2):
                last = time.monotonic()
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if (m.offset() or 0) >= ends.get(m.partition() or 0, 0):
                            pending.discard(m.partition() or 0)
                        continue
                    raise RuntimeError(f"reading {topic}: {err}")
                key = m.key() or b""
                value = m.value()
                if value is not None or keep_tombstones:
                    yield key, value
            for tp in c.position([TopicPartition(topic, p) for p in list(pending)]):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
    finally:
        c.close()
