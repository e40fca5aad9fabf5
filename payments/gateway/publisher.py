"""``CommandPublisher``: an awaitable, durable publish of commands to ``payments.commands``.

``await publish(cmd)`` returns only once the broker acknowledged the record with ``acks=all`` (the
delivery report), which is what lets the gateway promise that a 202 is durable. It raises the retriable
``IntakeUnavailable`` when the record could not be made durable within ``message.timeout.ms``, when the
local queue is full (503 at once rather than a request waiting for room), or after a fatal producer error.

The producer is the project's one awaitable producer (``payments.streaming.producer.AsyncProducer``):
idempotent (no duplicates or reordering from librdkafka's own retries), keying every record by account id
with ``murmur2_random`` (the Java client's partitioner; streaming/config.py), so each account's commands
land on the one partition its single writer owns.
"""

from __future__ import annotations

from payments.gateway.errors import IntakeUnavailable
from payments.schemas.commands import AnyCommand, encode_command
from payments.settings import KafkaSettings
from payments.streaming.config import producer_config
from payments.streaming.producer import AsyncProducer, DeliveryFailed

# A few ms of batching costs little latency and multiplies throughput under load.
_LINGER_MS = 2


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
        self._config = producer_config(
            kafka, {"message.timeout.ms": delivery_timeout_ms, **(extra_config or {})}
        )
        self._producer: AsyncProducer | None = None

    @property
    def topic(self) -> str:
        return self._topic

    def start(self) -> CommandPublisher:
        self._producer = AsyncProducer(self._config, linger_ms=_LINGER_MS, wait_when_full=False)
        return self

    def _started(self) -> AsyncProducer:
        if self._producer is None:
            raise RuntimeError("CommandPublisher.start() was not called")
        return self._producer

    async def publish(self, cmd: AnyCommand) -> None:
        try:
            await self._started().send(
                self._topic, cmd.account_id.encode(), encode_command(cmd), timeout_s=self._timeout_s
            )
        except DeliveryFailed as exc:
            raise IntakeUnavailable(
                f"the command could not be made durable: {exc}", reason=exc.reason
            ) from exc

    def ready(self, timeout_s: float = 2.0) -> bool:
        """Blocking: the broker answers a metadata request and the commands topic exists."""
        return self._started().topic_ready(self._topic, timeout_s)

    def close(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what is queued (bounded), then release the producer and its connections."""
        if self._producer is not None:
            self._producer.close(flush_timeout_s, purge=True)
