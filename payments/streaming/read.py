"""Reading topics as a read_committed consumer sees them: to their end, or following them.

One :class:`TopicReader` serves every reader that is not a member of a consumer group: the audit (read
each topic once, from the beginning), the settlement books (catch up again and again, from where the
last catch-up stopped), the chaos suite's results tail (follow), and :class:`EndOffsets` answers the
projector's "where does this partition end now". Such readers never join their (unique) group and never
commit: where they are is their own state.

"The end" is taken when a read starts: the last stable offset (``committed=True``: everything committed
by then, nothing of a transaction still open) or the high watermark (``committed=False``: also waits,
up to ``stall_s``, for transactions open at the start to be resolved).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)

# The documented import path; confluent-kafka's own type hints re-export these without marking them public.
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from payments.settings import KafkaSettings
from payments.streaming.config import admin_config, consumer_config
from payments.streaming.errors import StreamingError

log = logging.getLogger(__name__)

TP = tuple[str, int]  # (topic, partition)

# Between attempts to list end offsets while a partition has no leader (s).
_RETRY_BACKOFF_S = 0.2
# What a partition without a leader yet answers (right after topic creation or a broker restart); the
# broker's errors do not always carry librdkafka's retriable flag.
_LEADERSHIP_ERRORS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
    }
)

# librdkafka's "start at the log start offset", whatever retention removed before it.
BEGINNING: int = OFFSET_BEGINNING


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone


class ReadFailed(StreamingError, RuntimeError):
    """The broker answered a read with an error that is not the end of a partition."""

    retriable = True


class EndOffsetsUnavailable(StreamingError):
    """The end offsets could not be listed (routine right after topics are created: no leader yet)."""


class EndOffsets:
    """End offsets of many partitions in one batched ListOffsets request. (A consumer's per-partition
    watermark query waits behind its own long-poll fetch: about 0.5 s each, a minute for 2 x 64.)"""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._admin = AdminClient(admin_config(kafka))

    def query(
        self, tps: Iterable[TP], *, committed: bool = True, timeout_s: float = 10.0, retry_s: float = 0.0
    ) -> dict[TP, int]:
        """Last stable offsets (``committed``) or high watermarks. Retriable errors (no leader yet, right
        after topics are created or a broker restarted) are retried for ``retry_s``. Raises
        EndOffsetsUnavailable."""
        request = {TopicPartition(t, p): OffsetSpec.latest() for t, p in tps}  # type: ignore[no-untyped-call]
        if not request:
            return {}
        isolation = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
        deadline = time.monotonic() + retry_s
        while True:
            try:
                futures = self._admin.list_offsets(
                    request, isolation_level=isolation, request_timeout=timeout_s
                )
                return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                retriable = isinstance(err, KafkaError) and (
                    err.retriable() or err.code() in _LEADERSHIP_ERRORS
                )
                if not retriable or time.monotonic() >= deadline:
                    raise EndOffsetsUnavailable(
                        f"cannot list end offsets: {exc}", retriable=retriable
                    ) from exc
                log.info("end offsets not available yet (%s); retrying", exc)
                time.sleep(_RETRY_BACKOFF_S)


class TopicReader:
    """Every partition of ``topics``, assigned (not subscribed) from ``start`` or the beginning."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        *,
        name: str,
        start: Mapping[TP, int] | None = None,
        overrides: Mapping[str, Any] | None = None,
        metadata_timeout_s: float = 10.0,
    ) -> None:
        self._consumer = Consumer(
            consumer_config(
                kafka,
                f"{name}-{uuid.uuid4().hex}",  # never joined, never committed
                {"enable.partition.eof": True, "auto.offset.reset": "earliest", **(overrides or {})},
            )
        )
        self._kafka = kafka
        self._ends: EndOffsets | None = None  # made on the first read_to_end(): a follower needs none
        self.complete = False  # whether the last read_to_end() reached every end
        try:
            parts: list[TP] = []
            for topic in topics:
                meta = self._consumer.list_topics(topic, timeout=metadata_timeout_s).topics[topic]
                parts += [(topic, p) for p in sorted(meta.partitions)]
            starts = start or {}
            self._consumer.assign([TopicPartition(t, p, starts.get((t, p), BEGINNING)) for t, p in parts])
        except BaseException:
            self._consumer.close()
            raise
        self.partitions: tuple[TP, ...] = tuple(parts)

    def close(self) -> None:
        self._consumer.close()
        self._ends = None  # the admin client has no close(); dropping it releases its connections

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _caught_up(self, pending: set[TP], ends: Mapping[TP, int]) -> None:
        for tp in self._consumer.position([TopicPartition(t, p) for t, p in pending]):
            if tp.offset >= ends[(tp.topic, tp.partition)]:
                pending.discard((tp.topic, tp.partition))

    def read_to_end(
        self,
        *,
        timeout_s: float,
        stall_s: float | None = None,
        committed: bool = True,
        batch: int = 5000,
    ) -> Iterator[Record]:
        """Every record up to the end offsets taken now (see the module docstring), tombstones included.

        Stops at the ends, after ``timeout_s``, or after ``stall_s`` without any event; ``complete`` says
        whether every end was reached. Raises ReadFailed on an error that is not an end of partition."""
        self.complete = False
        if self._ends is None:
            self._ends = EndOffsets(self._kafka)
        # Retried for up to a third of the read's budget: the same patience the consumer's own metadata
        # requests had in the hand-written loops this replaces.
        ends = self._ends.query(self.partitions, committed=committed, retry_s=min(30.0, timeout_s / 3))
        pending = {tp for tp, end in ends.items() if end > 0}
        self._caught_up(pending, ends)
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while pending and time.monotonic() < deadline:
            if stall_s is not None and time.monotonic() - last >= stall_s:
                break
            for m in self._consumer.consume(batch, 0.2):
                last = time.monotonic()
                where = (m.topic() or "", m.partition() or 0)
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if (m.offset() or 0) >= ends.get(where, 0):
                            pending.discard(where)
                        continue
                    raise ReadFailed(f"reading {where[0]}: {err}")
                yield Record(where[0], where[1], m.offset() or 0, m.key(), m.value())
            self._caught_up(pending, ends)
        self.complete = not pending

    def poll(self, timeout_s: float = 0.2, batch: int = 1000) -> list[Record]:
        """The records available now, for a reader that follows the topics. Errors are skipped: librdkafka
        reconnects by itself, and a follower only needs what arrives."""
        out = []
        for m in self._consumer.consume(batch, timeout_s):
            if m.error() is None:
                out.append(Record(m.topic() or "", m.partition() or 0, m.offset() or 0, m.key(), m.value()))
        return out


def read_to_end(
    kafka: KafkaSettings,
    topic: str,
    *,
    name: str = "read",
    stall_s: float = 30.0,
    timeout_s: float = 300.0,
    committed: bool = False,
) -> Iterator[Record]:
    """Every record of ``topic`` from the beginning to its end taken now, in per-partition order."""
    with TopicReader(kafka, [topic], name=name) as reader:
        yield from reader.read_to_end(timeout_s=timeout_s, stall_s=stall_s, committed=committed)
