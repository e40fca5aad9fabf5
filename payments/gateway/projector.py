"""The projector: ``payments.results`` and ``payments.ledger`` → the Redis read model (layout in
``readmodel``).

At-least-once: a batch is written to Redis first (one pipelined round trip, one Lua call per record), and
only then are its offsets committed. A crash in between re-delivers the batch, which is harmless because
every result write is guarded by the account sequence number (``seq`` must exceed the stored one) and
every index write is ``ZADD NX``/``HSETNX``, so the read model converges to the same state and never moves
backwards. Reads are ``read_committed``, so records of aborted processor transactions are never shown.

Results and ledger transactions of one account are on two topics, so a listing may briefly show a ledger
transaction whose result is not projected yet (or the reverse); each converges on its own.

If Redis fails mid-batch, the consumer seeks back to the batch's first offsets and retries after a pause
(it keeps polling meanwhile, so it stays in its group). An undecodable record is logged, counted and
skipped: it can never become decodable, and blocking the partition on it would stall every account there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from payments.gateway.metrics import ProjectorMetrics
from payments.gateway.readmodel import (
    APPLY_LEDGER_LUA,
    APPLY_RESULT_LUA,
    apply_ledger_call,
    apply_result_call,
)
from payments.gateway.settings import ProjectorSettings
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import ResultEvent

log = logging.getLogger(__name__)

_REDIS_BACKOFF_S = 1.0

Partition = tuple[str, int]


class ReadModelWriter:
    """Applies results and ledger transactions to the read model. Synchronous: the projector's loop is a
    plain thread."""

    def __init__(self, redis: Redis, *, operation_retention_s: int | None) -> None:
        self._redis = redis
        self._result_script = redis.register_script(APPLY_RESULT_LUA)
        self._ledger_script = redis.register_script(APPLY_LEDGER_LUA)
        self._op_ttl_ms = (operation_retention_s or 0) * 1000

    def apply(self, events: list[ResultEvent]) -> list[bool]:
        """Apply results in order, in one round trip; True where the result changed the model."""
        return self.apply_records(list(events))

    def apply_ledger(self, txs: list[LedgerTransaction]) -> list[bool]:
        """Index ledger transactions, in one round trip; True where the transaction was new."""
        return self.apply_records(list(txs))

    def apply_records(self, records: list[ResultEvent | LedgerTransaction]) -> list[bool]:
        """Apply in order, in one round trip; True where the record changed the model (False = stale or
        already indexed)."""
        if not records:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for record in records:
            if isinstance(record, ResultEvent):
                keys, args = apply_result_call(record, self._op_ttl_ms)
                self._result_script(keys=keys, args=args, client=pipe)
            else:
                keys, args = apply_ledger_call(record)
                self._ledger_script(keys=keys, args=args, client=pipe)
        return [bool(r) for r in pipe.execute()]


class Projector:
    def __init__(
        self,
        settings: ProjectorSettings,
        redis: Redis,
        metrics: ProjectorMetrics,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._metrics = metrics
        self._writer = ReadModelWriter(redis, operation_retention_s=settings.operation_retention_s)
        self._topic = settings.kafka.topics.results
        self._ledger_topic = settings.kafka.topics.ledger
        self._consumer = Consumer(
            {
                **settings.kafka.consumer_config(),
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.session_timeout_ms,
                **(consumer_config or {}),
            }
        )
        self._running = False
        self._last_poll = 0.0

    def ready(self) -> bool:
        """Called from the ops HTTP thread: the loop polls and Redis answers."""
        if not self._running or time.monotonic() - self._last_poll > self._settings.stall_after_s:
            return False
        try:
            return bool(self._redis.ping())
        except RedisError:
            return False

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; closes the consumer (leaving the group) on the way out."""
        self._consumer.subscribe([self._topic, self._ledger_topic])
        self._running = True
        log.info(
            "projecting %s and %s into the read model (group %s)",
            self._topic,
            self._ledger_topic,
            self._settings.group_id,
        )
        try:
            while not stop.is_set():
                msgs = self._consumer.consume(self._settings.batch_max_records, self._settings.poll_timeout_s)
                self._last_poll = time.monotonic()
                if msgs and not self._process(msgs):
                    stop.wait(_REDIS_BACKOFF_S)
        finally:
            self._running = False
            self._consumer.close()

    def _process(self, msgs: list[Message]) -> bool:
        started = time.perf_counter()
        first: dict[Partition, int] = {}
        after: dict[Partition, int] = {}
        records: list[ResultEvent | LedgerTransaction] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err.str())
                continue
            tp = (msg.topic() or self._topic, msg.partition() or 0)
            offset = msg.offset() or 0
            first.setdefault(tp, offset)
            after[tp] = offset + 1
            model = LedgerTransaction if tp[0] == self._ledger_topic else ResultEvent
            try:
                records.append(model.model_validate_json(msg.value() or b""))
            except ValidationError:
                self._metrics.poison.inc()
                log.error("skipping undecodable record at %s[%d]@%d", tp[0], tp[1], offset)
        try:
            applied = self._writer.apply_records(records)
        except RedisError as exc:
            self._metrics.redis_errors.inc()
            log.warning("redis write failed (%s); re-consuming %d record(s)", exc, len(msgs))
            self._rewind(first)
            return False
        for record, changed in zip(records, applied, strict=True):
            if isinstance(record, ResultEvent):
                self._metrics.results.labels("applied" if changed else "stale").inc()
            else:
                self._metrics.ledger.labels("indexed" if changed else "duplicate").inc()
        self._commit(after)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.last_batch.set_to_current_time()
        return True

    def _commit(self, after: dict[Partition, int]) -> None:
        if not after:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in after.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # E.g. the partition was revoked by a rebalance: its new owner re-applies from the last
            # committed offset, which the version guard makes harmless.
            log.warning("offset commit failed (%s); results will be re-applied", exc)

    def _rewind(self, first: dict[Partition, int]) -> None:
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.info(
                    "cannot rewind %s[%d] (%s); its next owner resumes from the commit", topic, partition, exc
                )
