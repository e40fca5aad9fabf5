"""``/healthz`` (process alive), ``/readyz`` (Redis and the broker reachable), ``/metrics``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from payments.gateway.deps import Services
from payments.gateway.render import json_answer
from payments.schemas.api import Health

router = APIRouter(tags=["ops"])

_CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Response:
    return json_answer(200, Health(status="ok")).response()


async def _redis_ok(services: Services) -> bool:
    try:
        return bool(await asyncio.wait_for(services.redis.ping(), _CHECK_TIMEOUT_S))
    except (RedisError, OSError, TimeoutError):
        return False


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: Redis answers PING and the broker answers a metadata request",
    responses={503: {"model": Health, "description": "a dependency is unreachable"}},
)
async def readyz(services: Services) -> Response:
    redis_ok, kafka_ok = await asyncio.gather(
        _redis_ok(services), asyncio.to_thread(services.publisher.ready, _CHECK_TIMEOUT_S)
    )
    ok = redis_ok and kafka_ok
    body = Health(status="ready" if ok else "not_ready", checks={"redis": redis_ok, "kafka": kafka_ok})
    return json_answer(200 if ok else 503, body).response({} if ok else {"Retry-After": "5"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: Services) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
