"""What a request handler may use: built once per app in its lifespan, reached through ``deps``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from payments.gateway.auth import Authenticator
from payments.gateway.idempotency import IdempotencyStore
from payments.gateway.metrics import GatewayMetrics
from payments.gateway.publisher import CommandPublisher
from payments.gateway.ratelimit import RateLimiter
from payments.gateway.readmodel import ReadModel
from payments.gateway.settings import GatewaySettings
from payments.gateway.waiter import ResultWaiter
from payments.gateway.webhooks import WebhookDedupe


@dataclass(frozen=True)
class GatewayServices:
    settings: GatewaySettings
    redis: Redis
    auth: Authenticator
    idempotency: IdempotencyStore
    read_model: ReadModel
    waiter: ResultWaiter
    publisher: CommandPublisher
    metrics: GatewayMetrics
    rate_limiter: RateLimiter
    webhook_dedupe: WebhookDedupe
    clock_ms: Callable[[], int]  # ms since the Unix epoch; becomes the commands' issued_at
    new_account_id: Callable[[], str]  # ids of accounts opened without an Idempotency-Key
