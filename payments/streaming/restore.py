"""Restoring partition state from the compacted changelog before a partition is processed."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from payments.streaming.errors import RestoreTimeout
from payments.streaming.settings import consumer_base
from payments.streaming.store import PartitionStore
from payments.streaming.types import StateCodec

log = logging.getLogger(__name__)


def restore_partitions(
    client_config: dict[str, str | int | bool],
    changelog_topic: str,
    partitions: Iterable[int],
    codec: StateCodec,
    timeout_s: float,
) -> dict[int, PartitionStore]:
    """Read each changelog partition (read_committed) up to the high watermark taken now.

    Reading to the *high watermark*, not to the first end-of-partition event, matters: a previous owner's
    transaction may still be open (LSO < HW). Stopping at the LSO would miss that batch's state if it then
    commits together with its input offsets. A read_committed consumer cannot pass the LSO, so waiting for
    position >= HW waits exactly until that transaction is resolved (committed or aborted/timed out).
    """
    parts = sorted(set(partitions))
    stores = {p: PartitionStore(p) for p in parts}
    if not parts:
        return stores
    consumer = Consumer(
        {
            **consumer_base(client_config),
            "group.id": f"restore-{uuid.uuid4().hex}",  # never commits; the id is only required by the client
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    started = time.monotonic()
    try:
        deadline = started + timeout_s
        targets: dict[int, int] = {}
        for p in parts:
            low, high = _watermarks(consumer, TopicPartition(changelog_topic, p), deadline)
            if high > low:
                targets[p] = high
        if not targets:
            return stores
        consumer.assign([TopicPartition(changelog_topic, p, 0) for p in targets])
        pending = dict(targets)
        while pending:
            if time.monotonic() > deadline:
                raise RestoreTimeout(
                    f"changelog restore of partitions {sorted(pending)} exceeded {timeout_s}s"
                )
            for msg in consumer.consume(num_messages=10_000, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise RestoreTimeout(f"changelog read failed: {err}")
                    eof_partition, eof_offset = msg.partition(), msg.offset()
                    if eof_partition is not None and (eof_offset or 0) >= pending.get(eof_partition, 1 << 62):
                        pending.pop(eof_partition, None)
                    continue
                partition, raw_key = msg.partition(), msg.key()
                assert partition is not None
                assert raw_key is not None
                data = stores[partition].data
                key = raw_key.decode()
                raw = msg.value()
                if raw is None:
                    data.pop(key, None)
                else:
                    data[key] = codec.decode(key, raw)
            for tp in consumer.position([TopicPartition(changelog_topic, p) for p in list(pending)]):
                if tp.offset >= pending[tp.partition]:
                    pending.pop(tp.partition, None)
        log.info(
            "restored partitions=%s keys=%d in %.3fs",
            parts,
            sum(len(s) for s in stores.values()),
            time.monotonic() - started,
        )
        return stores
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    """(low, high) of one partition, retrying while leadership is moving.

    Right after topic creation or a broker restart a partition may briefly have no leader
    (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE, timeouts): those are retriable, so retry them until
    the restore deadline rather than failing the assignment.
    """
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if not err.retriable() and err.code() not in _LEADERSHIP_ERRORS:
                raise
            if time.monotonic() > deadline:
                raise RestoreTimeout(f"no watermarks for {tp.topic}[{tp.partition}]: {err}") from exc
            log.warning("watermarks of %s[%d] not available yet: %s", tp.topic, tp.partition, err.str())
            time.sleep(0.2)


_LEADERSHIP_ERRORS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
    }
)
