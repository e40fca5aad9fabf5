"""``/healthz`` (process alive), ``/readyz`` (Redis and the broker reachable), ``/metrics``.

``/readyz`` also reports ``checks.read_model`` (false while the projector rebuilds a read model Redis lost)
without letting it decide the status: intake works during a rebuild (the membership pre-check is skipped,
the processor decides), so taking every gateway out of the load balancer for it would turn a read outage
into a checkout outage. Reads say ``503 read_model_rebuilding`` themselves.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from payments.gateway.deps import Services
from payments.gateway.render import json_answer
from payments.readmodel.layout import READY_KEY
from payments.schemas.api import Health

router = APIRouter(tags=["ops"])

_CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health, operation_id="get_health", summary="Liveness")
async def healthz() -> Response:
    return json_answer(200, Health(status="ok")).response()


async def _redis_ok(services: Services) -> tuple[bool, bool]:
    """(Redis answers, the read model is complete)."""
    try:
        pipe = services.redis.pipeline(transaction=False)
        pipe.ping()
        pipe.exists(READY_KEY)
        pong, ready = await asyncio.wait_for(pipe.execute(), _CHECK_TIMEOUT_S)
        return bool(pong), bool(ready)
    except (RedisError, OSError, TimeoutError):
        return False, False


@router.get(
    "/readyz",
    response_model=Health,
    operation_id="get_readiness",
    summary="Readiness: Redis answers PING and the broker answers a metadata request",
    description="`checks.read_model` is informational: false while the read model is rebuilt after Redis "
    "lost it (reads answer 503 `read_model_rebuilding`, intake keeps working); it does not make the "
    "gateway unready.",
    responses={
        503: {
            "model": Health,
            "description": "a dependency is unreachable",
            "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
        }
    },
)
async def readyz(services: Services) -> Response:
    (redis_ok, read_model_ok), kafka_ok = await asyncio.gather(
        _redis_ok(services), asyncio.to_thread(services.publisher.ready, _CHECK_TIMEOUT_S)
    )
    ok = redis_ok and kafka_ok
    checks = {"redis": redis_ok, "kafka": kafka_ok, "read_model": read_model_ok}
    body = Health(status="ready" if ok else "not_ready", checks=checks)
    return json_answer(200 if ok else 503, body).response({} if ok else {"Retry-After": "5"})


@router.get(
    "/metrics",
    operation_id="get_metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics(services: Services) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
