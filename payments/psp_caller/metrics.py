"""Prometheus metrics of the psp-caller (process-wide, as Prometheus client libraries intend)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from payments.psp_caller.breaker import BreakerState

ATTEMPTS = Counter(
    "psp_caller_attempts_total", "PSP HTTP attempts by request kind and answer class", ["kind", "result"]
)
OUTCOMES = Counter(
    "psp_caller_outcomes_total",
    "Outcomes produced to the commands topic, by status and reason",
    ["status", "reason"],
)
SKIPPED = Counter("psp_caller_skipped_total", "PSP requests skipped without a call, by reason", ["reason"])
IN_FLIGHT = Gauge("psp_caller_in_flight", "PSP requests being handled (calls, backoffs and breaker waits)")
BREAKER = Gauge("psp_caller_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open")
ATTEMPT_SECONDS = Histogram(
    "psp_caller_attempt_seconds",
    "Wall time of one PSP HTTP attempt",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30),
)
OPERATION_SECONDS = Histogram(
    "psp_caller_operation_seconds",
    "Wall time from picking up a PSP request to its final outcome being durable, retries included",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def breaker_changed(state: BreakerState) -> None:
    BREAKER.set(_BREAKER_VALUE[state])
