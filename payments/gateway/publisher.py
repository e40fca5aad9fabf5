"""``CommandPublisher``: an awaitable, durable publish of commands to ``payments.commands``.

``await publish(cmd)`` returns only once the broker acknowledged the record with ``acks=all`` (the
delivery report), which is what lets the gateway promise that a 202 is durable. It raises the retriable
``IntakeUnavailable`` when the record could not be made durable within ``message.timeout.ms``.

The producer is idempotent (no duplicates or reordering from librdkafka's own retries) and keys every
record by account id with ``murmur2_random`` (the Java client's partitioner; via ``client_config()``), so
each account's commands land on the one partition its single writer owns.

librdkafka serves delivery reports only from ``poll()``; a daemon thread polls and hands each report to
the event loop that awaits it with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from payments.gateway.errors import IntakeUnavailable
from payments.schemas.commands import AnyCommand, encode_command
from payments.settings import KafkaSettings

log = logging.getLogger(__name__)

# Extra asyncio-side patience beyond message.timeout.ms: librdkafka always reports a delivery (success or
# time-out) within message.timeout.ms, so this only fires if the poll thread itself is stuck.
_REPORT_GRACE_S = 5.0


def _resolve(fut: asyncio.Future[None], err: KafkaError | None) -> None:
    if fut.done():  # the awaiting request was cancelled meanwhile
        return
    if err is None:
        fut.set_result(None)
    else:
        reason = "timeout" if err.code() == KafkaError._MSG_TIMED_OUT else "error"
        fut.set_exception(
            IntakeUnavailable(f"the command could not be made durable: {err.str()}", reason=reason)
        )


class CommandPublisher:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        delivery_timeout_ms: int,
        extra_config: dict[str, str | int | bool] | None = None,
    ) -> None:
        self._topic = kafka.topics.commands
        self._timeout_s = delivery_timeout_ms / 1000
        self._fatal: KafkaError | None = None
        config: dict[str, Any] = {
            **kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": delivery_timeout_ms,
            # A few ms of batching costs little latency and multiplies throughput under load.
            "linger.ms": 2,
            "error_cb": self._on_error,
            **(extra_config or {}),
        }
        self._producer = Producer(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="command-publisher-poll", daemon=True)

    @property
    def topic(self) -> str:
        return self._topic

    def start(self) -> CommandPublisher:
        self._thread.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _on_error(self, err: KafkaError) -> None:
        # Most errors (broker down, all brokers down) are transient and librdkafka retries on its own; a
        # fatal one (e.g. idempotence sequence lost) leaves the producer unusable until restart.
        if err.fatal():
            self._fatal = err
            log.error("fatal producer error, intake disabled until restart: %s", err.str())
        else:
            log.warning("producer error: %s", err.str())

    async def publish(self, cmd: AnyCommand) -> None:
        if self._fatal is not None:
            raise IntakeUnavailable(f"the producer failed fatally: {self._fatal.str()}", reason="fatal")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            # RuntimeError: the loop closed during shutdown; nobody awaits this any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(functools.partial(_resolve, fut, err))

        try:
            self._producer.produce(
                self._topic, key=cmd.account_id.encode(), value=encode_command(cmd), on_delivery=on_delivery
            )
        except BufferError as exc:
            raise IntakeUnavailable("the local produce queue is full", reason="queue_full") from exc
        except KafkaException as exc:
            raise IntakeUnavailable(f"produce failed: {exc}", reason="error") from exc
        try:
            await asyncio.wait_for(fut, self._timeout_s + _REPORT_GRACE_S)
        except TimeoutError as exc:
            raise IntakeUnavailable("no delivery report in time", reason="timeout") from exc

    def ready(self, timeout_s: float = 2.0) -> bool:
        """Blocking: the broker answers a metadata request and the commands topic exists."""
        if self._fatal is not None:
            return False
        try:
            md = self._producer.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        topic = md.topics.get(self._topic)
        return topic is not None and topic.error is None

    def close(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what is queued (bounded), then release the producer and its connections."""
        remaining = self._producer.flush(flush_timeout_s)
        if remaining:
            # Their requests get 503 from the time-out path; purging keeps close() from blocking on them.
            log.warning("%d command(s) undelivered at shutdown", remaining)
            self._producer.purge()
        self._stop.set()
        self._thread.join(timeout=5)
        self._producer.close()
