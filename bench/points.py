"""From one open-loop run of the capacity sweep to its numbers (``sweep.PointStats``) and CPU per payment.
Pure.

Completion is the client's own view for every system: a request is complete when its answer is final
(201 or 402: ours under ``Prefer: wait``, the baseline always); a 202 (ours: still not final when the
wait ran out), an error, no answer or a request the generator dropped is not, and counts as infinitely
slow in the percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bench.loadgen import DROPPED, LoadResult
from bench.measure import FINAL_STATUSES
from bench.stats import summarize
from bench.sweep import PointStats, growth


def point_stats(result: LoadResult, offered_per_s: float, warmup_s: float) -> PointStats:
    """Over the requests due in ``[t0 + warmup_s, t_end)``."""
    start, end = result.t0 + warmup_s, result.t_end
    window = sorted((s for s in result.samples if start <= s.due < end), key=lambda s: s.due)
    # An aborted run never sent some of its planned requests: they count as unfinished too.
    planned = math.ceil((end - start) * offered_per_s - 1e-9) if result.aborted else 0
    missing = max(0, planned - len(window))
    by_due = [s.answered - s.due if s.status in FINAL_STATUSES else math.inf for s in window]
    by_due += [math.inf] * missing
    finished = [x for x in by_due if math.isfinite(x)]
    latencies = summarize(finished, missing=len(by_due) - len(finished))
    return PointStats(
        offered_per_s=offered_per_s,
        due=len(by_due),
        completed=len(finished),
        completed_per_s=len(finished) / (end - start) if end > start else 0.0,
        p50_s=latencies.p50,
        p99_s=latencies.p99,
        growth_s=growth(by_due),
        dropped=sum(1 for s in window if s.status == DROPPED),
        aborted=result.aborted,
    )


def completed_in_run(result: LoadResult) -> int:
    """Final answers of the whole run, warm-up included: the denominator of CPU per payment, whose CPU
    is measured over the whole run too."""
    return sum(1 for s in result.samples if s.status in FINAL_STATUSES)


def ms_per_payment(cpu_s: Mapping[str, float], completed: int) -> dict[str, float]:
    """CPU milliseconds per completed payment of each process (NaN when nothing completed)."""
    return {name: (1000 * used / completed if completed else math.nan) for name, used in cpu_s.items()}
