"""Fault configuration and seeded decisions: pure unit tests."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from payments.psp_sim.faults import (
    REQUEST_FAULTS,
    FaultConfig,
    FaultKind,
    LatencyConfig,
    decide_fault,
    decide_read_fault,
    decide_webhook,
    merge_faults,
)

MIXED = FaultConfig(
    timeout_after_commit=0.1,
    error_before_commit=0.05,
    error_after_commit=0.05,
    ambiguous_error=0.05,
    rate_limit=0.05,
)


def sequence(seed: int, config: FaultConfig, n: int = 500) -> list[FaultKind | None]:
    rng = random.Random(seed)
    return [decide_fault(rng, config) for _ in range(n)]


def test_same_seed_gives_the_same_sequence() -> None:
    assert sequence(7, MIXED) == sequence(7, MIXED)
    assert sequence(7, MIXED) != sequence(8, MIXED)


def test_one_draw_per_decision_whatever_the_rates() -> None:
    # Changing rates must not shift later decisions: both rngs end in the same state.
    quiet, noisy = random.Random(3), random.Random(3)
    for _ in range(50):
        decide_fault(quiet, FaultConfig())
        decide_fault(noisy, MIXED)
    assert quiet.random() == noisy.random()


def test_zero_rates_never_fault() -> None:
    assert set(sequence(1, FaultConfig())) == {None}


@pytest.mark.parametrize("kind", REQUEST_FAULTS)
def test_rate_one_always_faults(kind: FaultKind) -> None:
    assert set(sequence(1, FaultConfig.model_validate({kind.value: 1.0}), n=100)) == {kind}


def test_frequencies_follow_the_rates() -> None:
    counts = Counter(sequence(11, MIXED, n=20_000))
    assert counts[FaultKind.TIMEOUT_AFTER_COMMIT] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[FaultKind.RATE_LIMIT] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[None] / 20_000 == pytest.approx(0.7, abs=0.015)


def test_reads_are_only_rate_limited() -> None:
    config = FaultConfig(error_before_commit=0.5, rate_limit=0.5)
    rng = random.Random(2)
    assert {decide_read_fault(rng, config) for _ in range(200)} == {None, FaultKind.RATE_LIMIT}


def test_webhook_plan_is_seeded() -> None:
    config = FaultConfig(webhook_duplicate=0.3, webhook_reorder=0.3)
    first = [decide_webhook(random.Random(5), config) for _ in range(1)]
    again = [decide_webhook(random.Random(5), config) for _ in range(1)]
    assert first == again
    rng = random.Random(5)
    plans = [decide_webhook(rng, config) for _ in range(2_000)]
    assert sum(p.duplicate for p in plans) / 2_000 == pytest.approx(0.3, abs=0.04)


@pytest.mark.parametrize(
    "body",
    [
        {"error_before_commit": 0.6, "error_after_commit": 0.6},  # exclusive outcomes summing above 1
        {"rate_limit": -0.1},
        {"rate_limit": 1.5},
        {"rate_limit": "often"},
        {"latency_ms": {"median": 100, "max": 50}},
        {"latency_ms": {"median": 100}},
        {"outage_seconds": -1},
        {"chaos": 1},
    ],
)
def test_invalid_configs_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FaultConfig.model_validate(body)


def test_merge_keeps_unmentioned_fields() -> None:
    current = FaultConfig(error_before_commit=0.1, latency_ms=LatencyConfig(median=1500, max=3000))
    merged = merge_faults(current, {"error_after_commit": 0.2, "latency_ms": {"max": 4000}})
    assert merged.error_before_commit == 0.1
    assert merged.error_after_commit == 0.2
    assert merged.latency_ms == LatencyConfig(median=1500, max=4000)


def test_merge_validates_the_result() -> None:
    with pytest.raises(ValidationError):
        merge_faults(FaultConfig(error_before_commit=0.9), {"error_after_commit": 0.2})
