"""Latency and throughput statistics. Pure: no clock, no I/O.

Latencies are seconds. A request that never got its answer (or whose payment never completed before the
drain deadline) is counted as an infinite latency rather than dropped: dropping it would report the
survivors only and flatter exactly the system that is falling over.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

INF = math.inf


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of an ascending sequence; NaN when empty.

    Nearest rank rather than interpolation: every reported number is a latency some request really had
    (or ``inf`` if it never finished), which is what a tail percentile should mean.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100 * n))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    """Seconds; ``count`` includes ``missing`` (requests without an answer, counted as inf)."""

    count: int
    missing: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float  # over the finished ones only; NaN if none

    def as_json(self) -> dict[str, float | int | None]:
        # JSON has no inf/NaN: null means "not finished" (inf) or "nothing measured" (NaN).
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def summarize(latencies: Iterable[float], missing: int = 0) -> LatencySummary:
    finished = sorted(latencies)
    values = finished + [INF] * missing
    mean = sum(finished) / len(finished) if finished else math.nan
    return LatencySummary(
        count=len(values),
        missing=missing,
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        max=values[-1] if values else math.nan,
        mean=mean,
    )


def cdf_points(
    latencies: Iterable[float], total: int | None = None, max_points: int = 200
) -> list[tuple[float, float]]:
    """(latency, fraction of ``total`` at or below it) for a CDF plot, at most ``max_points`` points.

    ``total`` defaults to the number of latencies; pass the number of requests sent so that unfinished
    ones keep the curve below 1.0 instead of vanishing.
    """
    values = sorted(latencies)
    n = total if total is not None else len(values)
    if not values or n <= 0:
        return []
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    step = max(1, math.ceil(len(values) / (max_points - 1)))
    idx = list(range(step - 1, len(values), step))
    if idx[-1] != len(values) - 1:
        idx.append(len(values) - 1)
    return [(values[i], (i + 1) / n) for i in idx]


def rate_in_window(times: Iterable[float], start: float, end: float) -> float:
    """Events per second whose timestamp lies in ``[start, end)``; 0 for an empty window."""
    if end <= start:
        return 0.0
    values = sorted(times)
    count = bisect.bisect_left(values, end) - bisect.bisect_left(values, start)
    return count / (end - start)


def ratio(ours: float, theirs: float) -> float:
    """``ours / theirs``; inf when only ours is positive, NaN when neither is."""
    if theirs > 0:
        return ours / theirs
    return INF if ours > 0 else math.nan
