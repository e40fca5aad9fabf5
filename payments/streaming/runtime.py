"""The exactly-once consume-transform-produce loop (docs/design.md §5).

Per batch: begin -> transform each record (outputs + state writes) -> changelog records for the batch's
dirty keys (explicit partition = input partition) -> input offsets into the transaction with the consumer's
group metadata (KIP-447 fencing) -> commit. Abortable errors abort, restore the pre-batch state and seek
back; fatal errors stop the process. No transaction is open across a poll, so rebalance callbacks never see
one and only have to drop or restore partition state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NoReturn

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from payments.streaming import metrics
from payments.streaming.errors import FatalStreamingError
from payments.streaming.restore import restore_partitions
from payments.streaming.settings import RuntimeSettings, consumer_base
from payments.streaming.store import BatchState, PartitionStore
from payments.streaming.types import InputRecord, StateCodec, Transformer
from payments.streaming.watchdog import Watchdog

log = logging.getLogger(__name__)

# Called between batches (no transaction open) with a read-only view of every owned partition's state:
# partition -> key -> value. It must copy what it needs before returning, and must not block for long.
Punctuator = Callable[[Mapping[int, Mapping[str, object]]], None]

# Called between batches with one owned partition's state and the wall clock (ms since the epoch): the keys
# whose state has outlived its retention. The runtime deletes them in a transaction of its own (tombstones
# on the changelog), so that memory and restore time stay bounded as history accumulates. Pure: it must not
# modify the state it is shown.
Pruner = Callable[[Mapping[str, object], int], Iterable[str]]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _Abort(Exception):
    """Internal: the current transaction must be aborted and the batch re-consumed."""


class ExactlyOnceRuntime:
    def __init__(
        self,
        *,
        client_config: dict[str, str | int | bool],
        settings: RuntimeSettings,
        input_topic: str,
        changelog_topic: str,
        transformer: Transformer,
        codec: StateCodec,
        on_ready: Callable[[], None] | None = None,
        punctuator: Punctuator | None = None,
        punctuate_interval_s: float = 1.0,
        pruner: Pruner | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        fetch_config: Mapping[str, str | int | bool] | None = None,
    ) -> None:
        self._client_config = client_config
        self._s = settings
        self._input = input_topic
        self._changelog = changelog_topic
        self._transform = transformer
        self._codec = codec
        self._on_ready = on_ready
        self._punctuator = punctuator
        self._punctuate_interval_s = punctuate_interval_s
        self._pruner = pruner
        self._clock_ms = clock_ms
        self._stores: dict[int, PartitionStore] = {}
        self._watchdog = Watchdog(settings.stuck_margin_s)
        self._labels = {"group": settings.group_id}
        self._producer = Producer(
            {
                **client_config,
                "transactional.id": settings.transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": settings.linger_ms,
                "transaction.timeout.ms": settings.transaction_timeout_ms,
            }
        )
        self._consumer = Consumer(
            {
                **consumer_base(client_config),
                # Long-poll fetch settings (KafkaSettings.fetch_config): fewer, fuller fetches.
                **(fetch_config or {}),
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "max.poll.interval.ms": settings.max_poll_interval_ms,
                "session.timeout.ms": settings.session_timeout_ms,
                # No static membership (group.instance.id): with cooperative-sticky, a warm restart of
                # several static members left one of them subscribed but never assigned (half the
                # partitions unowned). Dynamic membership plus KIP-447 fencing is what
                # docs/design.md §5 relies on.
            }
        )

    # -- lifecycle -------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set. Raises FatalStreamingError if this instance was fenced."""
        # Fences any earlier incarnation with the same transactional.id and aborts its open transaction.
        self._producer.init_transactions(60)
        self._watchdog.start()
        self._consumer.subscribe(
            [self._input], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        if self._on_ready:
            self._on_ready()
        next_punctuation = time.monotonic()
        next_prune = time.monotonic() + self._s.prune_interval_s
        try:
            while not stop.is_set():
                msgs = self._consumer.consume(
                    num_messages=self._s.batch_max_records, timeout=self._s.poll_timeout_s
                )
                records = self._records(msgs)
                if records:
                    self._process_batch(records)
                if self._punctuator is not None and time.monotonic() >= next_punctuation:
                    self._punctuator({p: s.data for p, s in self._stores.items()})
                    next_punctuation = time.monotonic() + self._punctuate_interval_s
                if self._pruner is not None and time.monotonic() >= next_prune:
                    self._prune(self._pruner)
                    next_prune = time.monotonic() + self._s.prune_interval_s
        finally:
            self._close()

    def _close(self) -> None:
        self._watchdog.stop()
        try:
            self._consumer.close()
        finally:
            self._producer.flush(5)

    # -- rebalance callbacks (only ever called inside consume(), never with a transaction open) -------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = [tp.partition for tp in partitions]
        if not parts:
            return
        started = time.monotonic()
        restored = restore_partitions(
            self._client_config, self._changelog, parts, self._codec, self._s.restore_timeout_s
        )
        self._stores.update(restored)
        metrics.RESTORE_SECONDS.labels(**self._labels).observe(time.monotonic() - started)
        self._update_gauges()
        log.info("assigned partitions=%s restored in %.3fs", parts, time.monotonic() - started)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop(partitions, "revoked")

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop(partitions, "lost")

    def _drop(self, partitions: list[TopicPartition], why: str) -> None:
        for tp in partitions:
            self._stores.pop(tp.partition, None)
        self._update_gauges()
        log.info("%s partitions=%s", why, [tp.partition for tp in partitions])

    def _update_gauges(self) -> None:
        metrics.ASSIGNED.labels(**self._labels).set(len(self._stores))
        metrics.STATE_KEYS.labels(**self._labels).set(sum(len(s) for s in self._stores.values()))

    # -- the batch -------------------------------------------------------------------------------------

    def _records(self, msgs: list[Message]) -> list[InputRecord]:
        out: list[InputRecord] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise FatalStreamingError(f"consumer error: {err}")
                log.warning("consumer error: %s", err)
                continue
            partition, offset = m.partition(), m.offset()
            assert partition is not None
            assert offset is not None
            out.append(InputRecord(partition, offset, m.key(), m.value(), m.timestamp()[1]))
        return out

    def _process_batch(self, records: Sequence[InputRecord]) -> None:
        started = time.monotonic()
        batch = BatchState()
        first: dict[int, int] = {}
        nxt: dict[int, int] = {}
        try:
            self._txn(self._producer.begin_transaction)
            for rec in records:
                store = self._stores.get(rec.partition)
                if store is None:  # cannot happen: callbacks run only inside consume()
                    raise FatalStreamingError(f"record for unowned partition {rec.partition}")
                for out in self._transform(batch.access(store), rec):
                    self._produce(out.topic, out.key, out.value)
                first.setdefault(rec.partition, rec.offset)
                nxt[rec.partition] = rec.offset + 1
            for partition, key, value in batch.dirty():
                raw = None if value is None else self._codec.encode(key, value)
                self._produce(self._changelog, key.encode(), raw, partition=partition)
            offsets = [TopicPartition(self._input, p, o) for p, o in nxt.items()]
            self._txn(
                lambda: self._producer.send_offsets_to_transaction(
                    offsets, self._consumer.consumer_group_metadata(), self._s.call_timeout_s
                ),
                guard=("send_offsets_to_transaction", self._s.call_timeout_s),
            )
            self._commit()
        except _Abort:
            self._abort(batch, first)
            return
        metrics.RECORDS.labels(**self._labels).inc(len(records))
        metrics.TRANSACTIONS.labels(outcome="committed", **self._labels).inc()
        metrics.BATCH_RECORDS.labels(**self._labels).observe(len(records))
        metrics.BATCH_SECONDS.labels(**self._labels).observe(time.monotonic() - started)
        self._update_gauges()

    # -- pruning ---------------------------------------------------------------------------------------

    def _prune(self, pruner: Pruner) -> None:
        """Delete what ``pruner`` names, at most ``prune_max_keys`` a round, in one transaction.

        The transaction also re-sends each pruned partition's committed input offset with the consumer's
        group metadata: progress does not move, but a zombie that lost the partition is fenced (KIP-447)
        exactly as for a batch, so it can never tombstone state that another instance now owns."""
        now = self._clock_ms()
        batch = BatchState()
        budget = self._s.prune_max_keys
        for store in self._stores.values():
            if budget <= 0:
                break
            expired = [key for key, _ in zip(pruner(store.data, now), range(budget), strict=False)]
            if not expired:
                continue
            access = batch.access(store)
            for key in expired:
                access.delete(key)
            budget -= len(expired)
        dirty = list(batch.dirty())
        if not dirty:
            return
        partitions = sorted({partition for partition, _, _ in dirty})
        try:
            committed = self._consumer.committed(
                [TopicPartition(self._input, p) for p in partitions], timeout=self._s.call_timeout_s
            )
        except KafkaException as exc:
            log.warning("pruning skipped, committed offsets unavailable: %s", exc)
            batch.rollback()
            return
        offsets = [tp for tp in committed if tp.offset >= 0]
        fenced = {tp.partition for tp in offsets}
        if fenced != set(partitions):
            # No committed offset means nothing to fence with; such a partition has processed nothing
            # since it was created, so it has nothing old to prune either. Keep its keys until it has.
            batch.rollback()
            batch = BatchState()
            for partition, key, _ in dirty:
                if partition in fenced:
                    batch.access(self._stores[partition]).delete(key)
            dirty = list(batch.dirty())
            if not dirty:
                return
        try:
            self._txn(self._producer.begin_transaction)
            for partition, key, _ in dirty:
                self._produce(self._changelog, key.encode(), None, partition=partition)
            self._txn(
                lambda: self._producer.send_offsets_to_transaction(
                    offsets, self._consumer.consumer_group_metadata(), self._s.call_timeout_s
                ),
                guard=("send_offsets_to_transaction", self._s.call_timeout_s),
            )
            self._commit()
        except _Abort:
            self._abort(batch, {})
            return
        metrics.PRUNED.labels(**self._labels).inc(len(dirty))
        self._update_gauges()
        log.info("pruned %d state keys past their retention", len(dirty))

    def _produce(self, topic: str, key: bytes, value: bytes | None, partition: int = -1) -> None:
        # partition=-1 lets the configured murmur2_random partitioner pick, as every producer must.
        # Called once per output record, so it calls produce() directly rather than through _txn: a closure
        # and an extra frame per record showed in the processor's profile (bench/README.md). Failures are
        # classified the same way.
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, partition=partition)
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room. Still inside the transaction.
                self._producer.poll(0.05)
            except KafkaException as exc:
                self._classify(exc)

    def _txn(self, op: Callable[[], object], guard: tuple[str, float] | None = None) -> None:
        """Run one transactional call, classifying failures per the librdkafka transactional API.

        ``guard`` (name, timeout given to the call) puts a blocking call under the watchdog."""
        try:
            if guard is None:
                op()
            else:
                with self._watchdog.guard(*guard):
                    op()
        except KafkaException as exc:
            self._classify(exc)

    @staticmethod
    def _classify(exc: KafkaException) -> NoReturn:
        err: KafkaError = exc.args[0]
        if err.txn_requires_abort():
            log.warning("transaction must abort: %s", err)
            raise _Abort from exc
        if err.fatal() or err.code() == KafkaError._FENCED:
            raise FatalStreamingError(f"producer fenced or fatal: {err}") from exc
        raise exc

    def _commit(self) -> None:
        timeout = self._s.call_timeout_s
        for attempt in range(self._s.commit_retries):
            try:
                self._txn(lambda: self._producer.commit_transaction(timeout), ("commit_transaction", timeout))
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if not err.retriable():
                    raise FatalStreamingError(f"commit failed: {err}") from exc
                log.warning("commit retry %d: %s", attempt + 1, err)
        raise _Abort

    def _abort(self, batch: BatchState, first: dict[int, int]) -> None:
        try:
            with self._watchdog.guard("abort_transaction", self._s.call_timeout_s):
                self._producer.abort_transaction(self._s.call_timeout_s)
        except KafkaException as exc:
            raise FatalStreamingError(f"abort failed: {exc.args[0]}") from exc
        batch.rollback()
        metrics.TRANSACTIONS.labels(outcome="aborted", **self._labels).inc()
        for p, offset in first.items():
            if p in self._stores:  # re-consume the batch; a partition we lost is someone else's now
                try:
                    self._consumer.seek(TopicPartition(self._input, p, offset))
                except KafkaException as exc:
                    log.warning("seek after abort failed for partition %d: %s", p, exc)
