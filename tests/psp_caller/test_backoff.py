"""Full-jitter exponential backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.psp_caller.backoff import Backoff


def test_ceiling_doubles_then_caps() -> None:
    b = Backoff(base_s=0.1, cap_s=1.0)
    assert [b.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_huge_retry_numbers_stay_finite() -> None:
    assert Backoff(base_s=0.5, cap_s=30).ceiling(10_000) == 30


def test_same_seed_same_delays() -> None:
    b = Backoff(base_s=0.05, cap_s=2)
    first = [b.delay(n, random.Random(7)) for n in range(10)]
    again = [b.delay(n, random.Random(7)) for n in range(10)]
    assert first == again


def test_delays_spread_over_the_whole_window() -> None:
    # Full jitter, not "ceiling plus a little noise": callers that failed together must spread out.
    b, rng = Backoff(base_s=1.0, cap_s=1.0), random.Random(3)
    delays = [b.delay(0, rng) for _ in range(2_000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95
    assert 0.45 < sum(delays) / len(delays) < 0.55


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        Backoff(base_s=-1, cap_s=1)
    with pytest.raises(ValueError, match="retry"):
        Backoff(base_s=1, cap_s=1).ceiling(-1)


@given(
    st.floats(min_value=0, max_value=10),
    st.floats(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_within_zero_and_the_cap(base: float, cap: float, retry: int, seed: int) -> None:
    b = Backoff(base_s=base, cap_s=cap)
    d = b.delay(retry, random.Random(seed))
    assert 0 <= d <= min(cap, b.ceiling(retry))
