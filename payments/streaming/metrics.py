"""Prometheus metrics of the runtime (process-wide, as Prometheus client libraries intend)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("stream_records_total", "Input records processed in committed transactions", ["group"])
TRANSACTIONS = Counter("stream_transactions_total", "Transactions by outcome", ["group", "outcome"])
BATCH_SECONDS = Histogram(
    "stream_batch_seconds",
    "Wall time of one batch from begin to commit",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_RECORDS = Histogram(
    "stream_batch_records", "Records per committed batch", ["group"], buckets=(1, 10, 50, 100, 250, 500, 1000)
)
RESTORE_SECONDS = Histogram(
    "stream_restore_seconds", "Changelog restore time per assignment", ["group"], buckets=(0.1, 1, 5, 30, 120)
)
ASSIGNED = Gauge("stream_assigned_partitions", "Partitions currently owned", ["group"])
STATE_KEYS = Gauge("stream_state_keys", "Keys held in memory", ["group"])
PRUNED = Counter(
    "stream_pruned_keys_total", "State keys deleted (tombstoned) past their retention", ["group"]
)
