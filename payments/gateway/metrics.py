"""Prometheus metrics of the gateway.

Each service object takes the ``CollectorRegistry`` to register in: production passes the process-wide
default, tests pass a fresh one so that several apps can live in one process.

With several worker processes (``payments.gateway.main``) prometheus_client runs in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set): samples go to per-process files, and ``registry`` — what ``/metrics``
exposes — is a collector summing the files of all workers instead of this process's own registry.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry  # what /metrics exposes
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self.requests = Counter(
            "payments_gateway_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "payments_gateway_request_duration_seconds",
            "HTTP request latency (s), including Prefer: wait time",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.idempotency = Counter(
            "payments_gateway_idempotency_total",
            "Idempotency outcomes: new, replay, conflict (in flight), mismatch, degraded (Redis down)",
            ["outcome"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "payments_gateway_publish_failures_total",
            "Commands that could not be made durable (answered 503)",
            ["reason"],
            registry=registry,
        )
        self.redis_degraded = Counter(
            "payments_gateway_redis_degraded_total",
            "Operations that went on without Redis (auth cache, membership pre-check, waits)",
            ["operation"],
            registry=registry,
        )
        self.read_model_rebuilding = Counter(
            "payments_gateway_read_model_rebuilding_total",
            "Requests that met an incomplete read model (Redis lost it; the projector is rebuilding): "
            "read (answered 503 read_model_rebuilding), membership_precheck (skipped), result_lookup",
            ["operation"],
            registry=registry,
        )
        self.waits = Counter(
            "payments_gateway_prefer_wait_total",
            "Prefer: wait outcomes: final (answered with the result) or timeout (answered 202)",
            ["outcome"],
            registry=registry,
        )
        self.webhooks = Counter(
            "payments_gateway_webhooks_total",
            "PSP webhooks: published, duplicate (webhook-id published before), in_flight (a concurrent "
            "delivery of it is publishing; 409), ignored_type (not a transfer/charge outcome), "
            "ignored_orphan (no account_id/op id of ours), invalid_signature, malformed, publish_failed (503)",
            ["outcome"],
            registry=registry,
        )
        self.suspected_fresh_key_retries = Counter(
            "payments_gateway_suspected_fresh_key_retries_total",
            "New payments or top-ups that repeat the principal, account, amount, currency and payee (or card "
            "token) of one sent under another Idempotency-Key within fresh_key_window_s: probably a client "
            "that makes a new key per retry (answered normally, with a Payments-Warning header)",
            registry=registry,
        )
        for operation in ("read", "membership_precheck", "result_lookup"):
            self.read_model_rebuilding.labels(operation)
        for outcome in ("new", "replay", "conflict", "mismatch", "degraded"):
            self.idempotency.labels(outcome)  # export zeros so alerts on rate() work from the start
        for outcome in (
            "published", "duplicate", "in_flight", "ignored_type", "ignored_orphan", "invalid_signature",
            "malformed", "publish_failed",
        ):  # fmt: skip
            self.webhooks.labels(outcome)
