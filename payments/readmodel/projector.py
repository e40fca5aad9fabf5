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

When Redis loses the read model (a restart without persistence, ``FLUSHALL``), its progress goes with it
(``progress_store``): the epoch token, the per-partition marks written in each batch's pipeline, and the
completeness flags. Each batch, and every ``check_interval_s`` when idle, checks the epoch and the marks it
expects. When they are gone, the projector logs a warning, counts ``payments_projector_rebuilds_total``,
adopts a new epoch and seeks every assigned partition back to its Redis mark, i.e. to the beginning of the
log, re-projecting everything (the seq guards make re-applying harmless). Partitions are likewise assigned
at their Redis mark, never at the Kafka commit (which would skip what Redis lost); Kafka offsets are still
committed, for lag monitoring. A partition is complete once what is written reaches the end offset it had
when its (re)build began; when every partition of both topics is complete, whichever instance owns it,
``readmodel:ready`` is set and the gateway serves reads again. On fresh, empty topics that is right after
the first assignment.

A rebuild can only restore what the topics still hold (30 days by default, ``devstack.topics``): an
account with no result within the retention comes back absent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from payments.readmodel.layout import (
    APPLY_LEDGER_LUA,
    APPLY_RESULT_LUA,
    apply_ledger_call,
    apply_result_call,
)
from payments.readmodel.metrics import ProjectorMetrics
from payments.readmodel.progress import (
    Partition,
    Progress,
    Verdict,
    VerdictKind,
    parse_verdict,
    partition_field,
    start_offset,
)
from payments.readmodel.progress_store import ProgressStore
from payments.readmodel.settings import ProjectorSettings
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import ResultEvent
from payments.streaming import config as kafka_config
from payments.streaming.group import ConsumerIssue, Event, GroupConsumer, KafkaUnavailable, PartitionEnd
from payments.streaming.read import EndOffsets, EndOffsetsUnavailable

log = logging.getLogger(__name__)

_REDIS_BACKOFF_S = 1.0
_ADMIN_TIMEOUT_S = 10.0


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
        self.queue(pipe, records)
        return [bool(r) for r in pipe.execute()]

    def queue(self, pipe: Pipeline, records: list[ResultEvent | LedgerTransaction]) -> None:
        """Append one call per record to ``pipe``; each replies 1 if it changed the model."""
        for record in records:
            if isinstance(record, ResultEvent):
                keys, args = apply_result_call(record, self._op_ttl_ms)
                self._result_script(keys=keys, args=args, client=pipe)
            else:
                keys, args = apply_ledger_call(record)
                self._ledger_script(keys=keys, args=args, client=pipe)


class Projector:
    def __init__(
        self,
        settings: ProjectorSettings,
        redis: Redis,
        metrics: ProjectorMetrics,
        consumer_config: dict[str, Any] | None = None,
        *,
        new_epoch: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._metrics = metrics
        self._writer = ReadModelWriter(redis, operation_retention_s=settings.operation_retention_s)
        self._store = ProgressStore(redis)
        self._new_epoch = new_epoch
        self._topic = settings.kafka.topics.results
        self._ledger_topic = settings.kafka.topics.ledger
        self._consumer = GroupConsumer(
            kafka_config.consumer_config(
                settings.kafka,
                settings.group_id,
                {
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": settings.session_timeout_ms,
                    # End-of-partition events tell when a partition has caught up (see ``progress``).
                    "enable.partition.eof": True,
                    **(consumer_config or {}),
                },
            )
        )
        self._end_offsets = EndOffsets(settings.kafka)
        self._progress = Progress()
        self._epoch: str | None = None  # the epoch token this instance works under; None = to adopt
        self._resync: set[Partition] = set()  # partitions to seek back to their Redis marks
        self._total_partitions = 0  # of both topics: how many must be complete for readmodel:ready
        self._last_check = 0.0
        self._stop = threading.Event()
        self._running = False
        self._last_poll = 0.0

    def ready(self) -> bool:
        """Called from the ops HTTP thread: the loop polls and Redis answers. (Not whether the read model
        is complete: a rebuild is work this process is doing, not a reason to restart or bypass it; see
        ``payments_projector_read_model_ready``.)"""
        if not self._running or time.monotonic() - self._last_poll > self._settings.stall_after_s:
            return False
        try:
            return bool(self._redis.ping())
        except RedisError:
            return False

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; closes the consumer (leaving the group) on the way out."""
        self._stop = stop
        try:
            self._total_partitions = self._count_partitions()
        except KafkaUnavailable as exc:  # counted again on assignment; until then nothing completes
            log.warning("cannot count the topics' partitions yet (%s)", exc)
        self._consumer.subscribe(
            [self._topic, self._ledger_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self._running = True
        log.info(
            "projecting %s and %s into the read model (group %s)",
            self._topic,
            self._ledger_topic,
            self._settings.group_id,
        )
        try:
            while not stop.is_set():
                msgs = self._consumer.poll(self._settings.batch_max_records, self._settings.poll_timeout_s)
                self._last_poll = time.monotonic()
                ok = self._process(msgs) if msgs else True
                if not (ok and self._housekeeping()):
                    stop.wait(_REDIS_BACKOFF_S)
        finally:
            self._running = False
            self._consumer.close()

    # --- assignment ---------------------------------------------------------------------------------------

    def _on_assign(self, tps: list[Partition]) -> dict[Partition, int] | None:
        """Start every partition at its Redis mark (the beginning of the log without one).

        Blocks while Redis is unreachable: nothing can be projected without it, and starting at the Kafka
        commit instead could skip exactly what Redis lost."""
        while True:
            try:
                self._adopt_epoch()
                marks = self._load(tps)
                break
            except RedisError as exc:
                self._metrics.redis_errors.inc()
                log.warning("cannot read the read model's progress from redis (%s); retrying", exc)
                if self._stop.wait(_REDIS_BACKOFF_S):
                    return None  # shutting down: the client assigns on its own, nothing more is processed
        self._resync.difference_update(tps)
        try:
            self._total_partitions = self._count_partitions()  # partitions may have been added
        except KafkaUnavailable as exc:
            log.warning("cannot refresh the partition count (%s); keeping %d", exc, self._total_partitions)
        fresh = sum(1 for tp in tps if marks[tp] is None)
        log.info("assigned %d partition(s), %d without a progress mark (from the beginning)", len(tps), fresh)
        return {tp: start_offset(marks[tp]) for tp in tps}

    def _on_revoke(self, tps: list[Partition]) -> None:
        self._progress.revoke(tps)
        self._resync.difference_update(tps)

    def _adopt_epoch(self) -> None:
        candidate = self._new_epoch()
        epoch = self._store.ensure_epoch(candidate)
        if self._epoch is not None and epoch != self._epoch:
            self._lost("the epoch token changed")
        elif self._epoch is None and epoch == candidate:
            log.info("no read-model epoch in redis (new deployment or lost data): started epoch %s", epoch)
        self._epoch = epoch

    def _load(self, tps: list[Partition]) -> dict[Partition, int | None]:
        """Track ``tps`` from their marks and completeness in Redis; their marks."""
        fields = [partition_field(tp) for tp in tps]
        marks, complete = self._store.load(fields)
        out: dict[Partition, int | None] = {}
        for tp, name in zip(tps, fields, strict=True):
            self._progress.assign(tp, marks[name], name in complete)
            out[tp] = marks[name]
        return out

    def _count_partitions(self) -> int:
        return sum(
            self._consumer.partition_count(topic, _ADMIN_TIMEOUT_S)
            for topic in (self._topic, self._ledger_topic)
        )

    # --- batches --------------------------------------------------------------------------------------------

    def _writable(self, tp: Partition) -> bool:
        """Records of ``tp`` may be written: it is ours, and not waiting to be sought back after a loss."""
        return self._epoch is not None and self._progress.owns(tp) and tp not in self._resync

    def _process(self, msgs: list[Event]) -> bool:
        started = time.perf_counter()
        first: dict[Partition, int] = {}
        after: dict[Partition, int] = {}
        ends: dict[Partition, int] = {}
        records: list[ResultEvent | LedgerTransaction] = []
        for msg in msgs:
            if isinstance(msg, ConsumerIssue):
                log.warning("consumer error: %s", msg.message)
                continue
            tp = (msg.topic or self._topic, msg.partition)
            if isinstance(msg, PartitionEnd):
                ends[tp] = msg.offset
                continue
            if not self._writable(tp):
                continue  # read from before a seek that is still to come
            offset = msg.offset
            first.setdefault(tp, offset)
            after[tp] = offset + 1
            model = LedgerTransaction if tp[0] == self._ledger_topic else ResultEvent
            try:
                records.append(model.model_validate_json(msg.value or b""))
            except ValidationError:
                self._metrics.poison.inc()
                log.error("skipping undecodable record at %s[%d]@%d", tp[0], tp[1], offset)
        ends = {tp: end for tp, end in ends.items() if self._writable(tp)}
        if not after:
            self._progress.written({}, ends)  # nothing new to write: everything before them is written
            return True
        assert self._epoch is not None  # _writable
        try:
            pipe = self._redis.pipeline(transaction=False)
            self._writer.queue(pipe, records)
            self._store.queue_sync(pipe, self._epoch, self._progress.sync_entries(after))
            *applied, sync_reply = pipe.execute()
        except RedisError as exc:
            self._metrics.redis_errors.inc()
            log.warning("redis write failed (%s); re-consuming %d record(s)", exc, len(msgs))
            self._rewind(first)
            return False
        if not self._on_verdict(parse_verdict(sync_reply), set(after)):
            return True  # the records are written (harmless) but not marked: the partitions are re-read
        self._progress.written(after, ends)
        self._last_check = time.monotonic()
        for record, changed in zip(records, applied, strict=True):
            if isinstance(record, ResultEvent):
                self._metrics.results.labels("applied" if changed else "stale").inc()
            else:
                self._metrics.ledger.labels("indexed" if changed else "duplicate").inc()
        self._commit(after)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.last_batch.set_to_current_time()
        return True

    def _on_verdict(self, verdict: Verdict, batch: set[Partition]) -> bool:
        """Act on Redis' answer to a batch's (or a check's) expectations; True if they held."""
        if verdict.kind is VerdictKind.OK:
            self._metrics.ready.set(1 if verdict.ready else 0)
            return True
        if verdict.kind is VerdictKind.LOST:
            self._lost("the epoch token is gone")
            return False
        self._metrics.rebuilds.labels("behind").inc()
        self._metrics.ready.set(0)
        behind = {tp for name in verdict.behind if (tp := self._progress.by_field(name)) is not None}
        log.warning(
            "read model behind what was written in %d partition(s) (redis restored from an older copy?); "
            "re-projecting them from their marks, reads answer 503 until they catch up",
            len(behind),
        )
        self._resync |= behind | batch
        return False

    def _lost(self, why: str) -> None:
        self._metrics.rebuilds.labels("lost").inc()
        self._metrics.ready.set(0)
        assigned = self._progress.assigned()
        log.warning(
            "redis lost the read model (%s): rebuilding it from the beginning of the topics for %d "
            "assigned partition(s); reads answer 503 read_model_rebuilding until every partition caught up",
            why,
            len(assigned),
        )
        self._epoch = None
        self._resync = set(assigned)

    def _commit(self, after: dict[Partition, int]) -> None:
        try:
            self._consumer.commit(after, asynchronous=False)
        except KafkaUnavailable as exc:
            # E.g. the partition was revoked by a rebalance: its new owner starts from the Redis mark.
            log.warning("offset commit failed (%s)", exc)

    def _rewind(self, first: dict[Partition, int]) -> None:
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek((topic, partition), offset)
            except KafkaUnavailable as exc:
                log.info(
                    "cannot rewind %s[%d] (%s); its next owner resumes from the redis mark",
                    topic,
                    partition,
                    exc,
                )

    # --- rebuild and completeness ---------------------------------------------------------------------------

    def _housekeeping(self) -> bool:
        """Between batches: seek back what a loss requires, complete what caught up, check Redis when
        idle. False on a Redis error (the caller backs off)."""
        try:
            if self._resync:
                self._seek_to_marks()
            self._fetch_targets()
            self._complete_caught_up()
            if time.monotonic() - self._last_check >= self._settings.check_interval_s:
                self._check()
        except RedisError as exc:
            self._metrics.redis_errors.inc()
            log.warning("redis unavailable for the read model's progress (%s)", exc)
            return False
        finally:
            self._metrics.rebuilding_partitions.set(self._progress.incomplete())
        return True

    def _seek_to_marks(self) -> None:
        if self._epoch is None:
            self._adopt_epoch()
        tps = sorted(tp for tp in self._resync if self._progress.owns(tp))
        for tp, mark in self._load(tps).items():
            try:
                self._consumer.seek(tp, start_offset(mark))
            except KafkaUnavailable as exc:
                log.info("cannot seek %s[%d] yet (%s); retrying", tp[0], tp[1], exc)
                continue
            self._resync.discard(tp)
        self._resync.intersection_update(self._progress.assigned())

    def _fetch_targets(self) -> None:
        """The end offsets (last stable offsets: read_committed) of partitions whose rebuild just began,
        in one batched ListOffsets request."""
        need = [tp for tp in self._progress.needing_target() if tp not in self._resync]
        if not need:
            return
        try:
            ends = self._end_offsets.query(need, committed=True, timeout_s=_ADMIN_TIMEOUT_S)
        except EndOffsetsUnavailable as exc:
            # Retriable ones are routine right after topics are created (no leader elected yet).
            log.log(
                logging.INFO if exc.retriable else logging.WARNING,
                "cannot read end offsets (%s); retrying",
                exc,
            )
            return
        self._progress.set_targets(ends)

    def _complete_caught_up(self) -> None:
        done = [tp for tp in self._progress.caught_up() if tp not in self._resync]
        if not done or self._epoch is None or self._total_partitions == 0:
            return
        ready = self._store.complete(self._epoch, self._total_partitions, [partition_field(t) for t in done])
        if ready < 0:
            self._lost("the epoch token is gone")
            return
        self._progress.mark_complete(done)
        self._metrics.ready.set(ready)
        log.info("%d partition(s) caught up%s", len(done), "; the read model is complete" if ready else "")

    def _check(self) -> None:
        """With no batch written lately: does Redis still hold what this instance wrote?"""
        self._last_check = time.monotonic()
        if self._epoch is None or not self._progress.assigned():
            return
        self._on_verdict(self._store.sync(self._epoch, self._progress.sync_entries({})), set())
