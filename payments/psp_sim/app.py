"""The FastAPI application: wiring, error mapping and the ops routes.

``create_app`` builds one self-contained simulator (its own store, random streams, metrics registry and
webhook workers), so several can run in one process, as tests do. The lifespan must run (uvicorn runs it;
in-process tests enter ``app.router.lifespan_context``) or webhooks are queued but never sent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from payments.psp_sim import api_routes, sim_routes
from payments.psp_sim.clock import Clock, SystemClock
from payments.psp_sim.engine import Simulator
from payments.psp_sim.errors import (
    ChargeNotRefundable,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InvalidSecret,
    NotFound,
    PspSimError,
    RefundExceedsCharge,
    UnknownPaymentMethod,
)
from payments.psp_sim.metrics import Metrics, MetricsMiddleware
from payments.psp_sim.models import Problem
from payments.psp_sim.settings import PspSimSettings
from payments.psp_sim.webhooks import WebhookDispatcher, WebhookEndpoint

log = logging.getLogger("payments.psp_sim")

_STATUS: dict[type[PspSimError], int] = {
    IdempotencyKeyMissing: 400,
    IdempotencyKeyInvalid: 400,
    UnknownPaymentMethod: 400,
    ChargeNotRefundable: 400,
    RefundExceedsCharge: 400,
    NotFound: 404,
    IdempotencyKeyInUse: 409,
    IdempotencyKeyReused: 422,
    InvalidSecret: 422,
}
_RETRY_AFTER_IN_USE_S = 1  # a first request is done after at most one latency sample (≤ a few seconds)


def _problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=orjson.dumps(problem.model_dump(mode="json")),
        status_code=problem.status,
        headers=headers,
        media_type="application/problem+json",
    )


async def _on_sim_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PspSimError)
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
    headers = {"Retry-After": str(_RETRY_AFTER_IN_USE_S)} if isinstance(exc, IdempotencyKeyInUse) else None
    problem = Problem(title=HTTPStatus(status).phrase, status=status, code=exc.code, detail=exc.message)
    return _problem_response(problem, headers)


def _validation_errors(exc: RequestValidationError) -> list[str]:
    # Only location and message: the rejected input may hold a card token and must not be echoed.
    return [f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()]


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = "; ".join(_validation_errors(exc))
    return _problem_response(
        Problem(title="Unprocessable Content", status=422, code="validation_error", detail=detail)
    )


def create_app(settings: PspSimSettings, *, clock: Clock | None = None) -> FastAPI:
    clock = clock or SystemClock()
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**32)
    metrics = Metrics()
    endpoint = None
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        endpoint = WebhookEndpoint(
            url=settings.webhook_url, secret=settings.webhook_secret.get_secret_value()
        )
    dispatcher = WebhookDispatcher(
        settings=settings,
        clock=clock,
        metrics=metrics,
        endpoint=endpoint,
        jitter_rng=random.Random(),  # replaced by the simulator's seeded stream below
    )
    simulator = Simulator(settings=settings, clock=clock, metrics=metrics, dispatcher=dispatcher, seed=seed)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("psp simulator seed=%d webhooks=%s", seed, endpoint.url if endpoint else "off")
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()

    app = FastAPI(
        title="PSP simulator",
        description="A payment-service provider with injectable faults (docs/design.md §6).",
        version="1",
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_exception_handler(PspSimError, _on_sim_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.include_router(api_routes.router)
    app.include_router(sim_routes.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness; not affected by injected outages, which only hit the PSP API."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> dict[str, str]:
        """Readiness: the simulator has no dependencies, so it is ready once it serves requests. Injected
        outages are behaviour under test, not unreadiness, so they do not show here either."""
        return {"status": "ready"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
