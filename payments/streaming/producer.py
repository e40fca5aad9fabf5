"""An idempotent Kafka producer whose ``send`` can be awaited until the record is durable (acks=all).

Delivery reports are served by a background thread polling the producer, and handed to the event loop in
batches: one wake-up of the loop per ``poll()`` that served reports, not one per record (with thousands of
records in flight a wake-up per report costs the loop more than the work it hands over). ``produce`` itself
is called from the loop (librdkafka's producer is thread-safe).

The one awaitable producer: the gateway's command intake (which must answer 503 rather than wait when the
local queue is full, and stop accepting after a fatal producer error) and the psp-caller and reconciler
(which wait for room) both use it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from payments.streaming.errors import StreamingError

log = logging.getLogger(__name__)


class DeliveryFailed(StreamingError):
    """librdkafka gave up on a record (after its own retries, bounded by ``message.timeout.ms``), or (with
    ``wait_when_full=False``) could not take it. ``reason``: timeout | error | queue_full | fatal."""

    retriable = True

    def __init__(self, detail: str, *, reason: str = "error") -> None:
        super().__init__(detail)
        self.reason = reason


# Extra asyncio-side patience beyond message.timeout.ms in send(timeout_s=...): librdkafka always reports a
# delivery (success or time-out) within message.timeout.ms, so this only fires if the poll thread is stuck.
_REPORT_GRACE_S = 5.0


class AsyncProducer:
    def __init__(
        self,
        client_config: dict[str, Any],
        *,
        linger_ms: int = 5,
        wait_when_full: bool = True,
    ) -> None:
        """``client_config`` carries partitioner=murmur2_random (streaming/config.py): records must land on
        the partition the processor owns for the account, exactly as every other producer of the commands
        topic does. ``wait_when_full=False``: send() raises DeliveryFailed(reason="queue_full") at once."""
        self._fatal: KafkaError | None = None
        self._wait_when_full = wait_when_full
        self._producer = Producer(
            {
                "error_cb": self._on_error,
                **client_config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": linger_ms,
            }
        )
        self._stop = threading.Event()
        # Reports collected by the poll thread's delivery callbacks, handed over after each poll().
        self._reports: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._thread = threading.Thread(target=self._serve, name="producer-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)
            self._hand_off()

    def _hand_off(self) -> None:
        """Settle the collected reports' futures with one call into each loop (only ever one loop)."""
        if not self._reports:
            return
        batch, self._reports = self._reports, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], KafkaError | None]]] = {}
        for done, err in batch:
            by_loop.setdefault(done.get_loop(), []).append((done, err))
        for loop, reports in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, reports)
            except RuntimeError:
                log.warning("%d delivery reports after the event loop closed", len(reports))

    def _on_error(self, err: KafkaError) -> None:
        # Most errors (broker down, all brokers down) are transient and librdkafka retries on its own; a
        # fatal one (e.g. idempotence sequence lost) leaves the producer unusable until restart.
        if err.fatal():
            self._fatal = err
            log.error("fatal producer error, no more sends until restart: %s", err.str())
        else:
            log.warning("producer error: %s", err.str())

    @property
    def fatal_error(self) -> KafkaError | None:
        return self._fatal

    async def send(self, topic: str, key: bytes, value: bytes, *, timeout_s: float | None = None) -> None:
        """Produce one record and return once the broker acknowledged it. Raises DeliveryFailed.

        ``timeout_s``: the producer's ``message.timeout.ms``, to bound the wait even if reports stall."""
        if self._fatal is not None:
            raise DeliveryFailed(f"the producer failed fatally: {self._fatal.str()}", reason="fatal")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            # Runs on the poll thread, inside poll(); or in close()'s flush, which hands off after it.
            self._reports.append((done, err))

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError as exc:
                if not self._wait_when_full:
                    raise DeliveryFailed("the local produce queue is full", reason="queue_full") from exc
                await asyncio.sleep(0.05)  # local queue full: the poll thread is draining it
            except KafkaException as exc:
                raise DeliveryFailed(f"produce failed: {exc}", reason="error") from exc
        if timeout_s is None:
            await done
            return
        try:
            await asyncio.wait_for(done, timeout_s + _REPORT_GRACE_S)
        except TimeoutError as exc:
            raise DeliveryFailed("no delivery report in time", reason="timeout") from exc

    def topic_ready(self, topic: str, timeout_s: float = 2.0) -> bool:
        """Blocking: no fatal error, the broker answers a metadata request and ``topic`` exists."""
        if self._fatal is not None:
            return False
        try:
            md = self._producer.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        meta = md.topics.get(topic)
        return meta is not None and meta.error is None

    def close(self, timeout_s: float = 10.0, *, purge: bool = False) -> None:
        """Deliver what is queued (bounded by ``timeout_s``), then release the producer. ``purge``: drop
        what is still queued after that (its senders get DeliveryFailed now instead of at their time-out)."""
        self._stop.set()
        self._thread.join(timeout_s)
        left = self._producer.flush(timeout_s)
        self._hand_off()
        if left:
            log.warning("%d records not delivered at close", left)
            if purge:
                self._producer.purge()
                self._producer.poll(0)
                self._hand_off()
        self._producer.close()  # releases its connections and threads now, not whenever GC runs


def _settle_all(reports: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for done, err in reports:
        if done.cancelled():
            continue
        if err is None:
            done.set_result(None)
        else:
            reason = "timeout" if err.code() == KafkaError._MSG_TIMED_OUT else "error"
            done.set_exception(DeliveryFailed(f"delivery failed: {err.str()}", reason=reason))
