"""``payments gateway --host H --port P [--workers N]``: serve the HTTP API with uvicorn.

Settings come from flags (``--bootstrap``, ``--host``, ``--port``, ``--workers``, ``--log-level``), then the
environment (``PAYMENTS_KAFKA__BOOTSTRAP``, ``PAYMENTS_REDIS__URL``, ...; see ``payments.gateway.settings``),
then a running dev stack's ``.devstack/stack.json`` (``payments.service``), then defaults.

Workers: ``settings.workers`` processes (default one per core) share the listening socket; uvicorn's
supervisor restarts a worker that dies. Each worker builds its own app (``app_from_environment``: event
loop, Redis pool, Kafka producer) from the same environment. Nothing depends on which worker answers a
request: idempotency records, rate-limit buckets and the read model live in Redis, and command ids are
derived from the request, so two workers racing on one key meet in the claim's Lua evaluation.

Metrics with several workers: a scrape reaches one arbitrary worker, so per-worker counters would jump
between scrapes and break ``rate()``. The workers therefore use prometheus_client's multiprocess mode: each
writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless the
environment names one, which is emptied at start), and ``/metrics`` on any worker answers the sum over all
workers, dead ones included, so counters stay monotone across a worker restart.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from payments import service
from payments.gateway.app import create_app
from payments.gateway.settings import GatewaySettings
from payments.observability import configure_logging
from payments.settings import kafka_env

log = logging.getLogger(__name__)

_LOG_LEVEL_ENV = "PAYMENTS_GATEWAY_LOG_LEVEL"  # how the supervisor tells its workers the --log-level
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process: the app for the settings in the environment. (The worker
    inherits PROMETHEUS_MULTIPROC_DIR from the supervisor, so prometheus_client is in multiprocess mode from
    its first import there.)"""
    configure_logging("gateway", os.environ.get(_LOG_LEVEL_ENV, "INFO"))
    return create_app(GatewaySettings())


def _metrics_dir() -> Path | None:
    """The multiprocess metrics directory, emptied; returns it if we created it (to remove at exit)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # samples of an earlier run would be added to this one's
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="payments-gateway-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    return created


def main(argv: list[str]) -> int:
    parser = service.parser("payments gateway", __doc__, ops=False)  # /healthz, /readyz, /metrics are routes
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8080)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    args = parser.parse_args(argv)
    # Flags > environment > the running dev stack > defaults; validated here, so that a bad setting fails
    # before any worker starts.
    settings, resolution = service.settings(
        GatewaySettings, args, host=args.host, port=args.port, workers=args.workers
    )
    log_level = args.log_level or os.environ.get("PAYMENTS_LOG_LEVEL", "INFO")
    configure_logging("gateway", log_level)
    log.info("settings: %s", resolution.describe(settings))
    workers = settings.workers or os.cpu_count() or 1
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        # Longer than any client's or load balancer's idle time-out (httpx 5 s, ALB 60 s): a server that
        # closes an idle keep-alive connection first races the client's next request on it, which the
        # client sees as a reset it cannot tell from a lost request.
        "timeout_keep_alive": settings.keep_alive_s,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    created = _metrics_dir()
    # The workers read their settings from the environment: what was resolved here (flags, the dev stack)
    # becomes environment variables.
    os.environ.update(kafka_env(settings.kafka))
    os.environ["PAYMENTS_REDIS__URL"] = settings.redis.url
    os.environ.update({f"PAYMENTS_{k.upper()}": str(getattr(settings, k)) for k in ("host", "port")})
    if settings.workers is not None:
        os.environ["PAYMENTS_WORKERS"] = str(settings.workers)
    os.environ[_LOG_LEVEL_ENV] = log_level
    try:
        uvicorn.run("payments.gateway.main:app_from_environment", factory=True, workers=workers, **common)
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    return 0
