"""Prometheus metrics of the reconciler (lookups, actions, open operations, settlement runs)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OPEN = Gauge("reconciler_open_operations", "Non-terminal payments and top-ups this instance tracks")
OLDEST_AGE = Gauge(
    "reconciler_oldest_open_operation_seconds", "Age of the oldest tracked operation in its current status"
)
LOOKUPS = Counter("reconciler_psp_lookups_total", "PSP lookups by idempotency key, by answer", ["answer"])
ACTIONS = Counter(
    "reconciler_actions_total",
    "What lookups led to: RecordOutcome, Redrive, Expire or AskLater",
    ["action"],
)
SETTLEMENT_RUNS = Counter(
    "settlement_runs_total", "Settlement runs by result: clean, dirty or skipped", ["result"]
)
DISCREPANCIES = Counter(
    "settlement_discrepancies_total", "New settlement discrepancies published, by kind", ["kind"]
)
OPEN_DISCREPANCIES = Gauge(
    "settlement_open_discrepancies", "Mismatches found by the last settlement run (new and known)"
)
