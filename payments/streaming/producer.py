"""An idempotent Kafka producer whose ``send`` can be awaited until the record is durable (acks=all).

Delivery reports are served by a background thread polling the producer, and handed to the event loop in
batches: one wake-up of the loop per ``poll()`` that served reports, not one per record (with thousands of
records in flight a wake-up per report costs the loop more than the work it hands over). ``produce`` itself
is called from the loop (librdkafka's producer is thread-safe).
"""

from __future__ import annotations

import asyncio
import logging
import threading

from confluent_kafka import KafkaError, Message, Producer

from payments.streaming.errors import StreamingError

log = logging.getLogger(__name__)


class DeliveryFailed(StreamingError):
    """librdkafka gave up on a record (after its own retries, bounded by ``message.timeout.ms``)."""

    retriable = True


class AsyncProducer:
    def __init__(self, client_config: dict[str, str | int | bool], *, linger_ms: int = 5) -> None:
        # client_config carries partitioner=murmur2_random: outcomes must land on the partition the
        # processor owns for the account, exactly as every other producer of the commands topic does.
        self._producer = Producer(
            {**client_config, "enable.idempotence": True, "acks": "all", "linger.ms": linger_ms}
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

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one record and return once the broker acknowledged it. Raises DeliveryFailed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            # Runs on the poll thread, inside poll(); or in close()'s flush, which hands off after it.
            self._reports.append((done, err))

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                await asyncio.sleep(0.05)  # local queue full: the poll thread is draining it
        await done

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        left = self._producer.flush(timeout_s)
        self._hand_off()
        if left:
            log.warning("%d records not delivered at close", left)


def _settle_all(reports: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for done, err in reports:
        if done.cancelled():
            continue
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(DeliveryFailed(f"delivery failed: {err}"))
