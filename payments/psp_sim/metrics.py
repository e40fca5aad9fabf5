"""Prometheus metrics of one simulator instance, on its own registry (no process-wide globals)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("payments.psp_sim.access")

# Seconds. Spans the zero-latency test setting up to the 30 s timeout_after_commit hang.
_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "psp_sim_requests_total",
            "HTTP requests by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "psp_sim_request_duration_seconds",
            "Wall time from request to response, simulated latency included",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.movements = Counter(
            "psp_sim_movements_total",
            "Money movements recorded, by kind and status (orphans included)",
            ["kind", "status"],
            registry=self.registry,
        )
        self.faults = Counter(
            "psp_sim_faults_injected_total",
            "Faults injected, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "psp_sim_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, rejected, error)",
            ["outcome"],
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every request, and writes the access log.

    Labels and log lines use the route template (``/v1/movements/by-key/{idempotency_key}``), never the raw
    path, so idempotency keys do not leak into logs and label cardinality stays bounded. Uvicorn's own access
    log must be off for the same reason.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before starting a response, the server answers 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "unmatched"))
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.request_duration.labels(template).observe(elapsed)
            log.info("%s %s %d %.1fms", method, template, status, elapsed * 1000)
