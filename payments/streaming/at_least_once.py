"""An asyncio at-least-once consumer: many handlers in flight, offsets committed in order (docs/design.md §5).

Contract with the handler: ``await handler(record)`` returning means the record's effects are durable, and
only then may its offset be committed. A handler may run more than once for one record (after a crash or a
rebalance), so its effects must be idempotent. A handler that raises stops the worker without committing
that record: it is delivered again after the restart. Handlers must therefore deal with expected failures
(bad input, retries) themselves and raise only for what a restart may fix.

Threading: everything, including librdkafka's rebalance callbacks, runs on the event loop's thread.
``consume(timeout=0)`` never blocks, so the loop alternates between polling and the handlers. Periodic
commits of explicit offsets are asynchronous (the loop does not wait a broker round trip every
``commit_interval_s``): librdkafka reports each result through ``on_commit`` inside a later ``consume``,
and a position counts as committed only then. The commits that must have landed before we go on — when
partitions are revoked and at shutdown — are synchronous.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import BaseModel, ConfigDict, Field

from payments.streaming.errors import FatalStreamingError, StreamingError
from payments.streaming.ordered import OffsetBook, PartitionOffsets, Ticket
from payments.streaming.settings import consumer_base

log = logging.getLogger(__name__)

TopicPart = tuple[str, int]


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


Handler = Callable[[Record], Awaitable[None]]


class AtLeastOnceSettings(BaseModel):
    """Tuning of the worker. Units are in the names."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    # Handlers running at once. At the cap the worker pauses its partitions but keeps polling, so it stays
    # in the group (max.poll.interval.ms) and serves rebalances however long the handlers take.
    max_in_flight: int = Field(default=2000, ge=1)
    poll_batch: int = Field(default=500, ge=1)
    # Sleep when a poll returned nothing: bounds the idle CPU cost of a non-blocking poll loop.
    idle_sleep_s: float = Field(default=0.01, gt=0)
    commit_interval_s: float = Field(default=0.2, gt=0)
    # Graceful stop: how long to wait for handlers in flight before abandoning them (they are redelivered).
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    # A resumed partition is fetched only after the broker answers the long-poll fetch already in flight,
    # so this bounds how long a pause at the cap costs (librdkafka's default is 500 ms).
    fetch_wait_max_ms: int = Field(default=100, ge=1)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"


class HandlerFailed(StreamingError):
    """A handler raised: the worker stopped without committing that record, so a restart redelivers it."""

    retriable = True


class AtLeastOnceWorker:
    def __init__(
        self,
        *,
        consumer_config: dict[str, str | int | bool],
        topics: Sequence[str],
        settings: AtLeastOnceSettings,
        handler: Handler,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._s = settings
        self._topics = list(topics)
        self._handler = handler
        self._on_ready = on_ready
        self._book: OffsetBook[TopicPart] = OffsetBook()
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused: set[TopicPart] = set()
        self._pause_all = False
        self._failure: BaseException | None = None
        self._consumer = Consumer(
            {
                **consumer_base(consumer_config),
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": settings.auto_offset_reset,
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": settings.session_timeout_ms,
                # A third of the session time-out, as Kafka advises, so short test time-outs stay valid.
                "heartbeat.interval.ms": max(100, settings.session_timeout_ms // 3),
                "max.poll.interval.ms": settings.max_poll_interval_ms,
                "fetch.wait.max.ms": settings.fetch_wait_max_ms,
                "on_commit": self._on_commit,
            }
        )

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- the loop --------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then drain, commit and close. Raises HandlerFailed if a handler
        raised, FatalStreamingError on a fatal consumer error."""
        loop = asyncio.get_running_loop()
        self._consumer.subscribe(
            self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        if self._on_ready is not None:
            self._on_ready()
        next_commit = loop.time() + self._s.commit_interval_s
        drain_until: float | None = None
        try:
            while True:
                now = loop.time()
                if drain_until is None and (stop.is_set() or self._failure is not None):
                    drain_until = now + self._s.shutdown_timeout_s
                    log.info("stopping: draining %d handlers in flight", len(self._tasks))
                if drain_until is not None and (not self._tasks or now >= drain_until):
                    break
                got = self._poll(draining=drain_until is not None)
                if now >= next_commit:
                    self._commit(wait=False)
                    next_commit = now + self._s.commit_interval_s
                # Yield even after a full poll so handlers and the HTTP client get the loop.
                await asyncio.sleep(0 if got else self._s.idle_sleep_s)
        finally:
            await self._shutdown()
        if self._failure is not None:
            raise HandlerFailed(f"a handler failed: {self._failure!r}") from self._failure

    def _poll(self, *, draining: bool) -> int:
        in_flight = len(self._tasks)
        room = self._s.max_in_flight - in_flight
        # Hysteresis: pause at the cap, resume only once half the cap is free. Every resume costs a fresh
        # fetch round trip (librdkafka drops what it prefetched for a paused partition), so resuming at
        # every free slot would fetch a handful of records per round trip.
        if draining or room <= 0:
            self._set_pause_all(True)
        elif self._pause_all and in_flight <= self._s.max_in_flight // 2:
            self._set_pause_all(False)
        # Polling continues while paused: it serves rebalance callbacks and keeps us in the group.
        msgs = self._consumer.consume(num_messages=max(1, min(room, self._s.poll_batch)), timeout=0)
        for msg in msgs:
            self._accept(msg, draining=draining)
        return len(msgs)

    def _accept(self, msg: Message, *, draining: bool) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise FatalStreamingError(f"consumer error: {err}")
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", err)
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        tracker = self._book.tracker((topic, partition))
        if draining or tracker is None:
            # Never dispatched, so never committed past: safe to drop. Only happens for records already
            # fetched when the pause or the revocation took effect; nothing of that partition follows them
            # in this process (draining) or it is no longer ours (no tracker).
            return
        ticket = tracker.dispatch(offset)
        record = Record(topic, partition, offset, msg.key(), msg.value(), msg.timestamp()[1])
        task = asyncio.create_task(self._run_handler(record, tracker, ticket))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, record: Record, tracker: PartitionOffsets, ticket: Ticket) -> None:
        try:
            await self._handler(record)
        except Exception as exc:
            # Not completed, so its offset is never committed; the worker stops and a restart retries.
            log.exception("handler failed at %s[%d]@%d", record.topic, record.partition, record.offset)
            if self._failure is None:
                self._failure = exc
            return
        # A tracker that was dropped (revoked) or reset since the dispatch ignores this: harmless.
        tracker.complete(ticket)

    async def _shutdown(self) -> None:
        try:
            self._commit()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                log.warning(
                    "abandoned %d handlers still in flight; their records will be redelivered",
                    len(self._tasks),
                )
                await asyncio.gather(*self._tasks, return_exceptions=True)
            # close() runs the revoke callback, which commits once more (nothing new by now) and leaves.
            self._consumer.close()

    # -- pausing ---------------------------------------------------------------------------------------

    def _set_pause_all(self, pause: bool) -> None:
        self._pause_all = pause
        if pause:
            todo = [tp for tp in self._consumer.assignment() if (tp.topic, tp.partition) not in self._paused]
            if todo:
                self._consumer.pause(todo)
                self._paused.update((tp.topic, tp.partition) for tp in todo)
        elif self._paused:
            # librdkafka resumes fetching from the last record it returned to us, so nothing is skipped.
            self._consumer.resume([TopicPartition(t, p) for t, p in self._paused])
            self._paused.clear()

    # -- commits ---------------------------------------------------------------------------------------

    def _commit(
        self, partitions: Sequence[TopicPart] | None = None, why: str = "periodic", *, wait: bool = True
    ) -> None:
        """Commit the completed prefix of ``partitions`` (default: every owned partition); with ``wait``
        synchronously, else in the background (confirmed by ``_on_commit``)."""
        # A synchronous commit must land before we go on (revocation, shutdown): it also re-sends what an
        # asynchronous commit still has on its way, which may yet fail.
        positions = self._book.committable(partitions, resend=wait)
        if not positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        if not wait:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as exc:
                log.warning("%s offset commit failed: %s", why, exc.args[0])
                return
            self._book.sent(positions)
            return
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # E.g. a rebalance in progress: the positions stay committable and go with the next commit.
            log.warning("%s offset commit failed: %s", why, exc.args[0])
            return
        confirmed: dict[TopicPart, int] = {}
        for tp in result or []:
            key = (tp.topic, tp.partition)
            if tp.error is None and key in positions:
                confirmed[key] = positions[key]
            elif tp.error is not None:
                log.warning("%s offset commit failed for %s[%d]: %s", why, tp.topic, tp.partition, tp.error)
        self._book.committed(confirmed)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's report of a commit (asynchronous or not), served inside consume() on the loop."""
        confirmed: dict[TopicPart, int] = {}
        failed: dict[TopicPart, int] = {}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if err is None and tp.error is None:
                confirmed[key] = tp.offset
            else:
                failed[key] = tp.offset
        self._book.committed(confirmed)
        if failed:
            # The positions become committable again and go with the next periodic commit.
            self._book.commit_failed(failed)
            if err is None or err.code() != KafkaError._NO_OFFSET:
                log.warning("offset commit failed for %s: %s", _fmt(list(failed)), err)

    # -- rebalance callbacks (run inside consume()/close(), on the loop's thread) ----------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._book.assign(keys)
        consumer.incremental_assign(partitions)
        if self._pause_all and partitions:
            consumer.pause(partitions)
            self._paused.update(keys)
        log.info("assigned %s", _fmt(keys))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        # Still ours until this callback returns: hand the completed prefix to the next owner. Handlers
        # still running for these partitions may finish (the effects are idempotent) but never commit.
        self._commit(keys, "revoke")
        self._release(keys, "revoked")

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Already someone else's: committing now could overwrite the new owner's progress.
        self._release([(tp.topic, tp.partition) for tp in partitions], "lost")

    def _release(self, keys: list[TopicPart], why: str) -> None:
        self._book.drop(keys)
        self._paused.difference_update(keys)
        log.info("%s %s", why, _fmt(keys))


def _fmt(keys: Sequence[TopicPart]) -> str:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in keys:
        by_topic.setdefault(topic, []).append(partition)
    return ", ".join(f"{t}{sorted(ps)}" for t, ps in by_topic.items()) or "nothing"
