"""Prometheus metrics of the reference consumer (process-wide, as Prometheus client libraries intend)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESULTS = Counter(
    "fulfillment_results_total",
    "Results handled in committed store transactions: applied, baseline (first seen, gap policy "
    "baseline) or duplicate (seq already applied; skipped)",
    ["outcome"],
)
FULFILLMENTS = Counter("fulfillment_fulfillments_total", "Succeeded payments fulfilled")
BATCH_SECONDS = Histogram(
    "fulfillment_batch_seconds",
    "Wall time of one store transaction (plan, write, commit)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_RECORDS = Histogram(
    "fulfillment_batch_records", "Records per store transaction", buckets=(1, 10, 50, 100, 250, 500, 1000)
)
ASSIGNED = Gauge("fulfillment_assigned_partitions", "Partitions of the results topic currently owned")
STOPPED = Counter("fulfillment_stops_total", "Stops that need a human: gap or undecodable result", ["reason"])
