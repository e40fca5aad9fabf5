"""Latency statistics: nearest-rank percentiles, unfinished requests as infinite, CDF points, rates."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import INF, cdf_points, percentile, rate_in_window, ratio, summarize


def test_percentile_is_nearest_rank() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 99) == 10.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 0) == 1.0


def test_percentile_of_nothing_is_nan_and_q_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_is_a_measured_value_and_monotone(values: list[float], q: float) -> None:
    ordered = sorted(values)
    p = percentile(ordered, q)
    assert p in ordered
    assert percentile(ordered, min(100.0, q + 1)) >= p


def test_unfinished_requests_count_as_infinitely_slow() -> None:
    summary = summarize([0.010] * 95, missing=5)
    assert summary.count == 100
    assert summary.p50 == 0.010
    assert summary.p99 == INF  # 5 % never finished: the tail is not the survivors' tail
    assert summary.max == INF
    assert summary.mean == pytest.approx(0.010)
    doc = summary.as_json()
    assert doc["p99"] is None
    assert doc["p50"] == 0.010


def test_summary_of_nothing() -> None:
    summary = summarize([], missing=0)
    assert summary.count == 0
    assert math.isnan(summary.p50)
    assert summary.as_json()["p50"] is None


def test_cdf_points_stay_below_one_when_requests_never_finished() -> None:
    points = cdf_points([0.1, 0.2, 0.3, 0.4], total=8)
    assert points[-1] == (0.4, 0.5)
    assert [x for x, _ in points] == sorted(x for x, _ in points)


def test_cdf_points_are_bounded_and_end_at_the_maximum() -> None:
    values = [i / 1000 for i in range(10_000)]
    points = cdf_points(values, max_points=50)
    assert len(points) <= 50
    assert points[-1] == (values[-1], 1.0)
    assert cdf_points([]) == []


def test_rate_in_window_counts_half_open_interval() -> None:
    times = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert rate_in_window(times, 1.0, 3.0) == pytest.approx(4 / 2.0)  # 1.0, 1.5, 2.0, 2.5
    assert rate_in_window(times, 3.0, 3.0) == 0.0


def test_ratio_handles_zero() -> None:
    assert ratio(10, 5) == 2
    assert ratio(1, 0) == INF
    assert math.isnan(ratio(0, 0))
