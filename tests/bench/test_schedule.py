"""Open-loop schedule: due times at a fixed rate, independent of answers (no coordinated omission)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.schedule import FixedRate


def test_total_and_due_times() -> None:
    s = FixedRate(rate_per_s=100, duration_s=2)
    assert s.total == 200
    assert s.due_at(10.0, 0) == 10.0
    assert s.due_at(10.0, 150) == pytest.approx(11.5)


def test_due_by_counts_requests_due_so_far() -> None:
    s = FixedRate(rate_per_s=10, duration_s=1)
    assert s.due_by(5.0, 4.9) == 0
    assert s.due_by(5.0, 5.0) == 1  # request 0 is due at t0
    assert s.due_by(5.0, 5.1) == 2  # float noise must not lose the request due exactly now
    assert s.due_by(5.0, 5.25) == 3
    assert s.due_by(5.0, 100.0) == 10  # never more than the run has


def test_fractional_totals_round_up() -> None:
    assert FixedRate(rate_per_s=3, duration_s=1.5).total == 5  # due at 0, 1/3, 2/3, 1, 4/3


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        FixedRate(0, 1)
    with pytest.raises(ValueError, match="positive"):
        FixedRate(1, 0)


@given(
    st.floats(min_value=0.5, max_value=5000),
    st.floats(min_value=0.1, max_value=30),
    st.floats(min_value=0, max_value=40),
)
def test_every_request_counted_as_due_is_due(rate: float, duration: float, elapsed: float) -> None:
    s = FixedRate(rate, duration)
    n = s.due_by(0.0, elapsed)
    assert 0 <= n <= s.total
    if n:
        assert s.due_at(0.0, n - 1) <= elapsed + 1e-6
    if n < s.total:
        assert s.due_at(0.0, n) > elapsed - 1e-6
