"""A consumer-group member that decides itself where each assigned partition starts.

For consumers whose progress lives outside Kafka (the projector's marks in Redis, the reference
consumer's offsets in SQLite): on every assignment ``on_assign`` returns the start offset of each new
partition, read from that store, and the member starts there. Kafka's committed offsets are only a
monitoring aid for them (lag tools).

``poll`` returns records, ends of partitions and non-fatal errors as values, so that the caller's batch
logic stays free of librdkafka types; a fatal error raises :class:`ConsumerFatal`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from payments.streaming.errors import FatalStreamingError, StreamingError
from payments.streaming.read import TP, Record

__all__ = [
    "ConsumerFatal",
    "ConsumerIssue",
    "Event",
    "GroupConsumer",
    "KafkaUnavailable",
    "PartitionEnd",
    "Record",
]


@dataclass(frozen=True, slots=True)
class PartitionEnd:
    """The consumer reached the end of a partition (``offset``: the next offset to be written there)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ConsumerIssue:
    """A non-fatal error librdkafka reports and recovers from on its own (e.g. a broker connection)."""

    message: str


class ConsumerFatal(FatalStreamingError):
    """The consumer cannot go on (e.g. fenced, or an unrecoverable protocol error)."""


class KafkaUnavailable(StreamingError):
    """A metadata request, commit or seek failed (broker unreachable, partition revoked meanwhile...)."""

    retriable = True


Event = Record | PartitionEnd | ConsumerIssue


class GroupConsumer:
    def __init__(self, config: Mapping[str, Any]) -> None:
        """``config``: from ``payments.streaming.config.consumer_config`` (group.id, read_committed...)."""
        self._consumer = Consumer(dict(config))

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: Callable[[list[TP]], Mapping[TP, int] | None],
        on_revoke: Callable[[list[TP]], None],
        on_lost: Callable[[list[TP]], None] | None = None,
    ) -> None:
        """Join the group. ``on_assign`` gets the assigned partitions (the whole assignment: eager
        protocols) and returns where each starts, or None to leave the assignment to the client (the
        committed offsets; used while shutting down)."""

        def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            starts = on_assign([(tp.topic, tp.partition) for tp in partitions])
            if starts is not None:
                consumer.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in starts])

        def revoked(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
            on_revoke([(tp.topic, tp.partition) for tp in partitions])

        def lost(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
            (on_lost or on_revoke)([(tp.topic, tp.partition) for tp in partitions])

        self._consumer.subscribe(list(topics), on_assign=assigned, on_revoke=revoked, on_lost=lost)

    def poll(self, max_records: int, timeout_s: float) -> list[Event]:
        """What arrived within ``timeout_s`` (at most ``max_records``). Raises ConsumerFatal."""
        out: list[Event] = []
        for m in self._consumer.consume(max_records, timeout_s):
            err = m.error()
            if err is None:
                out.append(Record(m.topic() or "", m.partition() or 0, m.offset() or 0, m.key(), m.value()))
            elif err.code() == KafkaError._PARTITION_EOF:
                out.append(PartitionEnd(m.topic() or "", m.partition() or 0, m.offset() or 0))
            elif err.fatal():
                raise ConsumerFatal(f"consumer error: {err.str()}")
            else:
                out.append(ConsumerIssue(err.str()))
        return out

    def partition_count(self, topic: str, timeout_s: float = 10.0) -> int:
        """How many partitions ``topic`` has now. Raises KafkaUnavailable."""
        try:
            meta = self._consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        except KafkaException as exc:
            raise KafkaUnavailable(f"no metadata for {topic}: {exc}") from exc
        if meta.error is not None:
            raise KafkaUnavailable(f"no metadata for {topic}: {meta.error}")
        return len(meta.partitions)

    def commit(self, offsets: Mapping[TP, int], *, asynchronous: bool) -> None:
        """Commit the next offsets to read. Raises KafkaUnavailable (e.g. revoked by a rebalance)."""
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if asynchronous:
                self._consumer.commit(offsets=tps, asynchronous=True)
            else:
                self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            raise KafkaUnavailable(f"offset commit failed: {exc}") from exc

    def seek(self, tp: TP, offset: int) -> None:
        """Continue ``tp`` at ``offset``. Raises KafkaUnavailable (e.g. not assigned (yet))."""
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot seek {tp[0]}[{tp[1]}]: {exc}") from exc

    def close(self) -> None:
        """Leave the group (a clean leave: the partitions move at once, not after the session time-out)."""
        self._consumer.close()
