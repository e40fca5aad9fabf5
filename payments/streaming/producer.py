"""An idempotent Kafka producer whose ``send`` can be awaited until the record is durable (acks=all).

Delivery reports are served by a background thread polling the producer, and handed to the event loop;
``produce`` itself is called from the loop (librdkafka's producer is thread-safe).
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
        self._thread = threading.Thread(target=self._serve, name="producer-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one record and return once the broker acknowledged it. Raises DeliveryFailed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            # Runs on the poll thread (or in close()'s flush, after the loop may be gone).
            try:
                loop.call_soon_threadsafe(_settle, done, err)
            except RuntimeError:
                log.warning("delivery report after the event loop closed: %s", err)

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
        if left:
            log.warning("%d records not delivered at close", left)


def _settle(done: asyncio.Future[None], err: KafkaError | None) -> None:
    if done.cancelled():
        return
    if err is None:
        done.set_result(None)
    else:
        done.set_exception(DeliveryFailed(f"delivery failed: {err}"))
