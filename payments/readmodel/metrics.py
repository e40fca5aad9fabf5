"""Prometheus metrics of the projector."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ProjectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.results = Counter(
            "payments_projector_results_total",
            "Results read: applied (changed the read model) or stale (older seq, ignored)",
            ["outcome"],
            registry=registry,
        )
        self.ledger = Counter(
            "payments_projector_ledger_total",
            "Ledger transactions read: indexed (new) or duplicate (redelivered, ignored)",
            ["outcome"],
            registry=registry,
        )
        self.poison = Counter(
            "payments_projector_poison_total", "Undecodable records skipped", registry=registry
        )
        self.redis_errors = Counter(
            "payments_projector_redis_errors_total",
            "Batches that failed to write to Redis and were re-consumed",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "payments_projector_batch_seconds",
            "Time to apply and commit one batch (s)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.last_batch = Gauge(
            "payments_projector_last_batch_timestamp_seconds",
            "Unix time of the last committed batch",
            registry=registry,
        )
        self.rebuilds = Counter(
            "payments_projector_rebuilds_total",
            "Read-model losses detected, each followed by a rebuild from Kafka: lost (Redis lost its data: "
            "the epoch token is gone or another) or behind (progress marks older than written: Redis came "
            "back from an older snapshot)",
            ["reason"],
            registry=registry,
        )
        self.ready = Gauge(
            "payments_projector_read_model_ready",
            "1 while readmodel:ready is set (every partition caught up since the last loss), as last seen",
            registry=registry,
        )
        self.rebuilding_partitions = Gauge(
            "payments_projector_rebuilding_partitions",
            "This instance's assigned partitions not yet caught up in the current epoch",
            registry=registry,
        )
        for outcome in ("applied", "stale"):
            self.results.labels(outcome)
        for reason in ("lost", "behind"):
            self.rebuilds.labels(reason)
        for outcome in ("indexed", "duplicate"):
            self.ledger.labels(outcome)
