"""Asynchronous, signed webhook delivery with retries, delay, duplicates and reordering.

Events wait in a heap ordered by due time (loop time, seconds) and are sent by ``webhook_concurrency``
worker tasks. Delay, reorder hold-back and retry backoff are all just later due times, so one slow or
failing event never blocks the others. Each attempt is signed afresh with the current timestamp and keeps
its ``webhook-id``, as the Standard Webhooks spec asks, so receivers dedupe retries and duplicates by id.

Scheduling uses real loop time even when the simulator's clock is a test double: deliveries must really
wait. The injected clock only stamps ``webhook-timestamp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections import deque
from dataclasses import dataclass, field

import httpx
import orjson

from payments.psp_sim.clock import Clock
from payments.psp_sim.metrics import Metrics
from payments.psp_sim.models import DeliveryRecord, WebhookEvent, WebhookStatus
from payments.psp_sim.settings import PspSimSettings
from payments.standard_webhooks import HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign

log = logging.getLogger("payments.psp_sim.webhooks")


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str  # whsec_<base64>; never logged or shown

    def __repr__(self) -> str:
        return f"WebhookEndpoint(url={self.url!r})"


@dataclass(order=True)
class _Delivery:
    due: float  # loop time, seconds
    seq: int  # ties broken by enqueue order, which keeps commit order when nothing else differs
    webhook_id: str = field(compare=False)
    event_type: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(compare=False, default=1)


class WebhookDispatcher:
    def __init__(
        self,
        *,
        settings: PspSimSettings,
        clock: Clock,
        metrics: Metrics,
        endpoint: WebhookEndpoint | None,
        jitter_rng: random.Random,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._endpoint = endpoint
        self._jitter_rng = jitter_rng
        self._heap: list[_Delivery] = []
        self._seq = 0
        self._in_flight = 0
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._log: deque[DeliveryRecord] = deque(maxlen=settings.delivery_log_size)

    @property
    def endpoint(self) -> WebhookEndpoint | None:
        return self._endpoint

    def set_endpoint(self, endpoint: WebhookEndpoint | None) -> None:
        """Takes effect for every later attempt, queued events included."""
        self._endpoint = endpoint

    def reseed(self, jitter_rng: random.Random) -> None:
        self._jitter_rng = jitter_rng

    async def start(self) -> None:
        if self._workers:
            return
        self._client = httpx.AsyncClient(timeout=self._settings.webhook_timeout_s)
        self._workers = [
            asyncio.create_task(self._worker(), name=f"psp-sim-webhook-{n}")
            for n in range(self._settings.webhook_concurrency)
        ]

    async def stop(self) -> None:
        """Cancel the workers and drop what is still queued (a PSP restart loses nothing we promise)."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def enqueue(self, event: WebhookEvent, *, delay_s: float, copies: int = 1) -> None:
        """Schedule ``copies`` sends of one event (same webhook-id) ``delay_s`` from now."""
        body = orjson.dumps(event.model_dump(mode="json"))
        due = asyncio.get_running_loop().time() + delay_s
        for _ in range(copies):
            self._push(_Delivery(due, self._next_seq(), event.id, event.type, body))

    def clear(self) -> None:
        self._heap.clear()
        self._log.clear()

    def status(self) -> WebhookStatus:
        return WebhookStatus(
            url=None if self._endpoint is None else self._endpoint.url,
            pending=len(self._heap) + self._in_flight,
            deliveries=list(self._log),
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _push(self, delivery: _Delivery) -> None:
        heapq.heappush(self._heap, delivery)
        self._wakeup.set()

    async def _worker(self) -> None:
        while True:
            delivery = await self._next_due()
            self._in_flight += 1
            try:
                await self._attempt(delivery)
            except Exception:  # a worker must survive anything one delivery does
                log.exception("webhook %s: delivery crashed", delivery.webhook_id)
            finally:
                self._in_flight -= 1

    async def _next_due(self) -> _Delivery:
        loop = asyncio.get_running_loop()
        while True:
            timeout: float | None = None
            if self._heap:
                wait = self._heap[0].due - loop.time()
                if wait <= 0:
                    return heapq.heappop(self._heap)
                timeout = wait
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _attempt(self, delivery: _Delivery) -> None:
        endpoint = self._endpoint
        client = self._client
        if endpoint is None or client is None:
            self._metrics.webhook_deliveries.labels("dropped").inc()
            return
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "payments-psp-sim",
            HEADER_ID: delivery.webhook_id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: sign(endpoint.secret, delivery.webhook_id, timestamp, delivery.body),
        }
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(endpoint.url, content=delivery.body, headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivered = status_code is not None and 200 <= status_code < 300
        outcome = "delivered" if delivered else ("rejected" if status_code is not None else "error")
        self._metrics.webhook_deliveries.labels(outcome).inc()
        self._log.append(
            DeliveryRecord(
                webhook_id=delivery.webhook_id,
                type=delivery.event_type,
                attempt=delivery.attempt,
                status_code=status_code,
                error=error,
                at=self._clock.now(),
            )
        )
        if delivered:
            return
        if delivery.attempt >= self._settings.webhook_max_attempts:
            log.warning("webhook %s: giving up after %d attempts", delivery.webhook_id, delivery.attempt)
            return
        backoff = min(
            self._settings.webhook_backoff_s * 2 ** (delivery.attempt - 1),
            self._settings.webhook_backoff_max_s,
        )
        # Jitter in [0.5, 1) spreads retries of events that failed together.
        backoff *= 0.5 + self._jitter_rng.random() / 2
        log.info(
            "webhook %s: attempt %d failed (%s), retry in %.2fs",
            delivery.webhook_id,
            delivery.attempt,
            status_code if status_code is not None else error,
            backoff,
        )
        due = asyncio.get_running_loop().time() + backoff
        self._push(
            _Delivery(
                due,
                self._next_seq(),
                delivery.webhook_id,
                delivery.event_type,
                delivery.body,
                delivery.attempt + 1,
            )
        )
