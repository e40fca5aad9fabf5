"""Request metrics as a plain ASGI middleware (no BaseHTTPMiddleware: it buffers and costs a task per
request). Routes are labelled by their template (``/v1/accounts/{account_id}``), never the raw path, so
the label set stays bounded."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.gateway.metrics import GatewayMetrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self._app = app
        self._metrics = metrics

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
            self._metrics.requests.labels(label, method, str(status)).inc()
            self._metrics.latency.labels(label, method).observe(time.perf_counter() - started)
