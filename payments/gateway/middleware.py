"""Request metrics as a plain ASGI middleware (no BaseHTTPMiddleware: it buffers and costs a task per
request). Routes are labelled by their template (``/v1/accounts/{account_id}``), never the raw path, so
the label set stays bounded."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.gateway.metrics import GatewayMetrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self._app = app
        self._metrics = metrics
        # Labelled children by label values: ``labels()`` validates and locks on every call, which showed
        # in the gateway's profile; the label sets are bounded (route templates), so caching them is safe.
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before sending a response

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            method = str(scope.get("method", ""))
            self._counter(label, method, str(status)).inc()
            self._histogram(label, method).observe(time.perf_counter() - started)

    def _counter(self, route: str, method: str, status: str) -> Counter:
        child = self._counters.get((route, method, status))
        if child is None:
            child = self._counters[(route, method, status)] = self._metrics.requests.labels(
                route, method, status
            )
        return child

    def _histogram(self, route: str, method: str) -> Histogram:
        child = self._histograms.get((route, method))
        if child is None:
            child = self._histograms[(route, method)] = self._metrics.latency.labels(route, method)
        return child
