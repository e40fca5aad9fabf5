"""Latency sampler: pure unit tests."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.psp_sim.latency import sample_latency_ms


def test_default_distribution_has_the_configured_median_and_cap() -> None:
    rng = random.Random(42)
    samples = [sample_latency_ms(rng, 1500, 3000) for _ in range(20_000)]
    assert statistics.median(samples) == pytest.approx(1500, rel=0.03)
    assert max(samples) == 3000  # the tail is clipped, not cut off
    assert 0.003 < sum(s == 3000 for s in samples) / len(samples) < 0.02  # about 1% at the cap
    assert min(samples) > 0


def test_zero_means_no_delay() -> None:
    assert sample_latency_ms(random.Random(1), 0, 0) == 0.0


def test_max_equal_to_median_is_constant() -> None:
    rng = random.Random(1)
    assert {sample_latency_ms(rng, 200, 200) for _ in range(10)} == {200}


def test_same_seed_same_samples() -> None:
    a, b = random.Random(9), random.Random(9)
    assert [sample_latency_ms(a, 100, 400) for _ in range(100)] == [
        sample_latency_ms(b, 100, 400) for _ in range(100)
    ]


@given(
    seed=st.integers(),
    median=st.floats(min_value=0, max_value=10_000),
    spread=st.floats(min_value=1, max_value=100),
)
def test_samples_stay_within_bounds(seed: int, median: float, spread: float) -> None:
    maximum = median * spread
    sample = sample_latency_ms(random.Random(seed), median, maximum)
    assert 0 <= sample <= maximum
