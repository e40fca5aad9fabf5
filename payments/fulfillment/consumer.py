"""The Kafka side of the reference consumer: poll ``payments.results``, hand each batch to the store, and
seek to the store's offsets whenever partitions are assigned.

- ``isolation.level=read_committed``: records of aborted processor transactions are never delivered, so a
  result that was rolled back can never be applied (its ``seq`` would otherwise be taken by a phantom).
- ``enable.auto.commit=false``: the position lives in the store, written in the same transaction as the
  effects. On assignment we seek there (or to the beginning for a partition the store has never seen), so
  a crash anywhere resumes exactly after the last committed batch. Committed group offsets are written
  asynchronously after each batch for lag monitoring only and are never read back.
- The store transaction is always closed before the next poll, so rebalance callbacks (which run inside
  ``consume()``) never see one open.
- A gap or an undecodable record stops the loop after committing the batch's records before it, so the
  stored offset points exactly at the record that needs a human.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pydantic import ValidationError

from payments.fulfillment import metrics
from payments.fulfillment.apply import BatchPlan, Delivered, Verdict, fulfillment_for
from payments.fulfillment.errors import ConsumerFailed, SequenceGap, UndecodableResult
from payments.fulfillment.settings import FulfillmentSettings
from payments.fulfillment.store import FulfillmentStore
from payments.schemas.state import ResultEvent
from payments.streaming.config import consumer_config
from payments.streaming.group import (
    ConsumerFatal,
    ConsumerIssue,
    GroupConsumer,
    KafkaUnavailable,
    PartitionEnd,
    Record,
)
from payments.streaming.read import BEGINNING, TP

log = logging.getLogger(__name__)


def decode(topic: str, msg: Record) -> Delivered:
    """The record as a ``Delivered`` result. Raises UndecodableResult (without echoing the payload)."""
    partition, offset = msg.partition, msg.offset
    where = f"{topic}[{partition}]@{offset}"
    value = msg.value
    if value is None:
        raise UndecodableResult(f"tombstone at {where}: results are never deleted")
    try:
        event = ResultEvent.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise UndecodableResult(
            f"undecodable result at {where}: {exc.error_count()} error(s), first at '{loc}': {first['type']}"
        ) from exc
    key = msg.key
    if key is not None and key != event.account_id.encode():
        # Per-account order holds only within one partition: a mis-keyed result breaks the contract.
        raise UndecodableResult(f"result at {where} is keyed by another account than its account_id")
    return Delivered(partition, offset, event)


class ResultsConsumer:
    def __init__(
        self,
        settings: FulfillmentSettings,
        store: FulfillmentStore,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._s = settings
        self._store = store
        self._topic = settings.kafka.topics.results
        self._on_ready = on_ready
        self._last_poll = 0.0
        self._running = False
        self._consumer = GroupConsumer(
            consumer_config(
                settings.kafka,
                settings.group_id,
                {
                    "enable.auto.offset.store": False,
                    # Used only when a stored offset is out of range (the topic was truncated past it): the
                    # seq check then reports the gap instead of anything being skipped silently.
                    "auto.offset.reset": "earliest",
                    # Eager: on_assign gets the whole assignment and assign()s it with the stored offsets.
                    "partition.assignment.strategy": "range",
                    "session.timeout.ms": settings.session_timeout_ms,
                    "heartbeat.interval.ms": max(100, settings.session_timeout_ms // 3),
                },
            )
        )

    def ready(self) -> bool:
        """Called from the ops HTTP thread: the loop runs and polled recently."""
        return self._running and time.monotonic() - self._last_poll < self._s.stall_after_s

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; closes the consumer (leaving the group) on the way out.

        Raises SequenceGap or UndecodableResult (after committing everything before the offending record)
        and ConsumerFailed on a fatal Kafka error."""
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._running = True
        self._last_poll = time.monotonic()
        log.info(
            "applying %s to %s (group %s, gap policy %s)",
            self._topic,
            self._s.db_path,
            self._s.group_id,
            self._s.gap_policy.value,
        )
        if self._on_ready:
            self._on_ready()
        try:
            while not stop.is_set():
                try:
                    msgs = self._consumer.poll(self._s.batch_max_records, self._s.poll_timeout_s)
                except ConsumerFatal as exc:
                    raise ConsumerFailed(str(exc)) from exc
                self._last_poll = time.monotonic()
                if msgs:
                    self._process(msgs)
        finally:
            self._running = False
            self._consumer.close()

    # -- rebalance callbacks (run inside consume(), never with a store transaction open) ---------------

    def _on_assign(self, partitions: list[TP]) -> dict[TP, int]:
        stored = self._store.stored_offsets(self._topic)
        starts = {tp: stored.get(tp[1], BEGINNING) for tp in partitions}
        metrics.ASSIGNED.set(len(partitions))
        log.info(
            "assigned %s; resuming from stored offsets %s",
            [p for _, p in partitions],
            {p: stored.get(p, "beginning") for _, p in partitions},
        )
        return starts

    def _on_revoke(self, partitions: list[TP]) -> None:
        metrics.ASSIGNED.set(0)
        log.info("revoked %s", [p for _, p in partitions])

    def _on_lost(self, partitions: list[TP]) -> None:
        metrics.ASSIGNED.set(0)
        log.warning("lost %s", [p for _, p in partitions])

    # -- the batch -------------------------------------------------------------------------------------

    def _process(self, msgs: list[Record | PartitionEnd | ConsumerIssue]) -> None:
        records: list[Delivered] = []
        poison: UndecodableResult | None = None
        for msg in msgs:
            if isinstance(msg, ConsumerIssue):
                log.warning("consumer error: %s", msg.message)
                continue
            if not isinstance(msg, Record):
                continue
            try:
                records.append(decode(self._topic, msg))
            except UndecodableResult as exc:
                poison = exc  # commit what came before it, then stop
                break
        if records:
            self._apply(records)
        if poison is not None:
            metrics.STOPPED.labels("undecodable").inc()
            raise poison

    def _apply(self, records: list[Delivered]) -> None:
        started = time.perf_counter()
        plan = self._store.apply_batch(self._topic, records, self._s.gap_policy)
        self._observe(plan, len(records), time.perf_counter() - started)
        self._commit_group_offsets(plan)
        if plan.gap is not None:
            metrics.STOPPED.labels("gap").inc()
            ev = plan.gap.record.event
            raise SequenceGap(
                plan.gap.describe(self._topic),
                account_id=ev.account_id,
                expected=plan.gap.expected,
                got=plan.gap.got,
            )

    def _observe(self, plan: BatchPlan, n: int, seconds: float) -> None:
        for rec, verdict in plan.applied:
            metrics.RESULTS.labels("applied" if verdict is Verdict.APPLY else "baseline").inc()
            if fulfillment_for(rec.event) is not None:
                metrics.FULFILLMENTS.inc()
            if verdict is Verdict.BASELINE:
                log.warning(
                    "account %s first seen at seq %d: accepted as its baseline (gap policy baseline)",
                    rec.event.account_id,
                    rec.event.seq,
                )
        if plan.duplicates:
            metrics.RESULTS.labels("duplicate").inc(len(plan.duplicates))
            log.info("skipped %d re-delivered result(s) already applied", len(plan.duplicates))
        metrics.BATCH_RECORDS.observe(n)
        metrics.BATCH_SECONDS.observe(seconds)

    def _commit_group_offsets(self, plan: BatchPlan) -> None:
        """Monitoring aid only (consumer-group lag tools): the store's offsets are the truth."""
        if not plan.next_offsets:
            return
        offsets = {(self._topic, p): o for p, o in plan.next_offsets.items()}
        try:
            self._consumer.commit(offsets, asynchronous=True)
        except KafkaUnavailable as exc:
            log.debug("group offset commit skipped: %s", exc)
