"""``create_app(settings)``: the gateway's FastAPI application.

Everything with I/O (Redis client, Kafka producer and its poll thread, the result-notification listener)
is created in the lifespan and closed in reverse order; handlers reach it through ``deps.Services``.
Under test, run the lifespan yourself: ``async with app.router.lifespan_context(app): ...``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from payments.gateway.auth import Authenticator, RevocationListener
from payments.gateway.docs_ui import install_docs
from payments.gateway.idempotency import IdempotencyStore
from payments.gateway.metrics import GatewayMetrics
from payments.gateway.middleware import MetricsMiddleware
from payments.gateway.openapi import API_DESCRIPTION, API_VERSION, install_openapi
from payments.gateway.pan_guard import CardNumberGuard
from payments.gateway.problems import install_problem_handlers
from payments.gateway.publisher import CommandPublisher
from payments.gateway.ratelimit import RateLimiter
from payments.gateway.readmodel import ReadModel
from payments.gateway.redis_batch import EvalBatcher
from payments.gateway.routes import accounts, ledger, members, ops, payments, top_ups, webhooks
from payments.gateway.services import GatewayServices
from payments.gateway.settings import GatewaySettings
from payments.gateway.waiter import ResultWaiter
from payments.gateway.webhooks import WebhookDedupe

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def random_account_id() -> str:
    # Same shape as derived ids: prefix + 26 hex chars (104 random bits).
    return "acct_" + secrets.token_hex(13)


def _redis_client(settings: GatewaySettings) -> Redis:
    # Short time-outs and a single quick retry: a dead Redis must push requests into degraded mode within
    # about a second, not stall them behind redis-py's default retries.
    client: Redis = Redis.from_url(
        settings.redis.url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        health_check_interval=30,
    )
    return client


def create_app(
    settings: GatewaySettings,
    *,
    clock_ms: Callable[[], int] = wall_clock_ms,
    new_account_id: Callable[[], str] = random_account_id,
    registry: CollectorRegistry | None = None,
    producer_config: dict[str, str | int | bool] | None = None,
) -> FastAPI:
    """``registry``: where metrics register (a fresh one by default, so apps never collide);
    ``producer_config``: extra librdkafka settings (tests shorten reconnect back-offs)."""
    metrics = GatewayMetrics(registry if registry is not None else CollectorRegistry())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.webhook_secrets:
            log.warning("no webhook secrets configured (PAYMENTS_WEBHOOK_SECRETS): PSP webhooks are rejected")
        redis = _redis_client(settings)
        publisher = CommandPublisher(
            settings.kafka, delivery_timeout_ms=settings.publish_timeout_ms, extra_config=producer_config
        ).start()
        waiter = ResultWaiter(redis, recheck_s=settings.wait_recheck_s)
        await waiter.start()
        auth = Authenticator(redis, fresh_s=settings.principal_cache_s, stale_s=settings.principal_stale_s)
        revocations = RevocationListener(redis, auth)  # `payments keys revoke` reaches this gateway
        await revocations.start()
        app.state.services = GatewayServices(
            settings=settings,
            redis=redis,
            auth=auth,
            idempotency=IdempotencyStore(
                redis,
                lease_s=settings.inflight_lease_s,
                retention_s=settings.idempotency_retention_s,
                batcher=EvalBatcher(redis) if settings.coalesce_redis_calls else None,
            ),
            read_model=ReadModel(redis),
            waiter=waiter,
            publisher=publisher,
            metrics=metrics,
            rate_limiter=RateLimiter(
                redis, metrics, rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst
            ),
            webhook_dedupe=WebhookDedupe(
                redis, ttl_s=settings.webhook_dedupe_ttl_s, lease_s=settings.inflight_lease_s
            ),
            clock_ms=clock_ms,
            new_account_id=new_account_id,
        )
        try:
            yield
        finally:
            await revocations.stop()
            await waiter.stop()
            await asyncio.to_thread(publisher.close)
            await redis.aclose()

    app = FastAPI(
        title="Shared payment accounts",
        version=API_VERSION,
        summary="Shared balances paid from concurrently, every PSP money movement exactly once.",
        description=API_DESCRIPTION,
        servers=[{"url": "/", "description": "this gateway"}],
        lifespan=lifespan,
        docs_url=None,  # install_docs: the same pages with their assets served from here, not a CDN
        redoc_url=None,
    )
    install_problem_handlers(app, retry_after_s=settings.retry_after_s)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(CardNumberGuard)  # inside the metrics middleware, so refusals are counted
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for module in (accounts, members, payments, top_ups, ledger, webhooks, ops):
        app.include_router(module.router)
    return app
