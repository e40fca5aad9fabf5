"""The open-loop capacity sweep's decisions: which rate to offer next, whether a point was sustained, when
a point has certainly failed, which rate is the capacity, and the spread of repeated points. Pure: no
clock, no I/O (``bench.capacity`` runs the points).

Method. Rates form a geometric ladder ``start * factor**i``. The sweep climbs it with one short run per
step until a step fails (coarse phase: it only finds where to look). Then it runs the step below the
first failing one and the failing one ``repeats`` times each, full length, interleaved (confirm phase);
a confirmed step's verdict is the majority of its confirm runs (a tie, only possible in passing, goes by
the first of them), an unconfirmed step's is its coarse run's. If the confirm runs overturn a verdict
the boundary moves (up: the next step is climbed; down: the step below is confirmed) and confirming
goes on there, within a bound on runs per sweep. Capacity is the highest step below the lowest failing
one.

A point is *sustained* when, of the requests due in its measured window, the completion p99 (a request
without a final answer counts as infinitely slow) is within the bound, at least ``min_completed_ratio``
completed at all, the backlog did not grow (the median latency of the window's last quarter is not
``max_growth`` of the bound above its first quarter's: a system slightly past its capacity queues up
slowly, which a short window's p99 alone would miss) and the generator dropped none.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

# Nearest-rank p99 exceeds the bound as soon as more than this share of the requests is slower than it.
P99_SLACK = 0.01
# Below this, a rise of the median latency across a window is jitter, not a backlog (seconds).
GROWTH_FLOOR_S = 0.1


@dataclass(frozen=True)
class SweepSpec:
    start_per_s: float  # the ladder's first rate (payments/s offered)
    factor: float  # each step offers this many times the previous one
    steps: int  # ladder length: rates start * factor**i for i < steps
    p99_bound_s: float  # completion p99 above this: not sustained
    repeats: int = 3  # confirm runs at the last sustained and the first failing step
    max_points: int = 12  # runs per sweep, all phases: bounds its time
    min_completed_ratio: float = 0.95  # completed ÷ due below this: falling behind
    # The window's last quarter's median latency above its first quarter's by more than this share of
    # the bound (and at least GROWTH_FLOOR_S): the backlog is growing.
    max_growth: float = 0.25

    def __post_init__(self) -> None:
        if self.start_per_s <= 0 or self.factor <= 1 or self.steps < 1 or self.p99_bound_s <= 0:
            raise ValueError("start and bound must be positive, factor > 1, at least one step")
        if self.repeats < 1 or self.max_points < 1:
            raise ValueError("repeats and max_points must be at least 1")

    def rate(self, step: int) -> float:
        """Offered payments/s at ``step``, rounded to 2 significant digits (readable table rows)."""
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside the ladder of {self.steps}")
        raw = self.start_per_s * self.factor**step
        digits = 1 - math.floor(math.log10(raw))
        return float(round(raw, digits))


@dataclass(frozen=True)
class PointStats:
    """One run at one offered rate, over the requests due in its measured window."""

    offered_per_s: float
    due: int  # requests due in the window
    completed: int  # of them, with a final answer (201/402) at all
    completed_per_s: float  # of them, per second of the window
    p50_s: float  # completion latency from the due time; inf when unfinished
    p99_s: float
    growth_s: float  # median latency of the window's last quarter minus its first quarter's
    dropped: int  # not sent: the generator's in-flight cap was reached
    aborted: bool = False  # stopped early: the p99 bound was certainly broken


@dataclass(frozen=True)
class Verdict:
    sustained: bool
    reason: str  # "ok" or why not, for the table


def judge(point: PointStats, spec: SweepSpec) -> Verdict:
    if point.aborted:
        return Verdict(False, "aborted: p99 bound broken")
    if point.dropped:
        return Verdict(False, f"{point.dropped} dropped by the generator")
    if point.due == 0:
        return Verdict(False, "no request due in the window")
    if not point.p99_s <= spec.p99_bound_s:
        return Verdict(False, f"p99 over {spec.p99_bound_s:g} s")
    ratio = point.completed / point.due
    if ratio < spec.min_completed_ratio:
        return Verdict(False, f"completed {ratio:.0%} of offered")
    if not point.growth_s <= max(GROWTH_FLOOR_S, spec.max_growth * spec.p99_bound_s):
        return Verdict(False, "backlog growing")
    return Verdict(True, "ok")


def growth(latencies_by_due: Sequence[float]) -> float:
    """Median latency of the last quarter of the requests (in due order) minus the first quarter's;
    0 for fewer than 8 requests (no trend to see)."""
    n = len(latencies_by_due)
    if n < 8:
        return 0.0
    q = n // 4
    late, early = statistics.median(latencies_by_due[-q:]), statistics.median(latencies_by_due[:q])
    return late - early if math.isfinite(late) else math.inf


def bound_broken(late: int, planned: int) -> bool:
    """Whether ``late`` requests (of ``planned`` due in the window) slower than the bound, or without a
    final answer, already put the window's p99 over the bound whatever the others do."""
    return planned > 0 and late > math.floor(planned * P99_SLACK)


class Phase(StrEnum):
    COARSE = "coarse"  # a short run: where the boundary is
    CONFIRM = "confirm"  # a full-length run: what the capacity is


@dataclass(frozen=True)
class Run:
    step: int
    phase: Phase
    sustained: bool


def _confirm_runs(history: Sequence[Run]) -> dict[int, list[bool]]:
    runs: dict[int, list[bool]] = {}
    for r in history:
        if r.phase is Phase.CONFIRM:
            runs.setdefault(r.step, []).append(r.sustained)
    return runs


def _holds(step: int, history: Sequence[Run], confirms: dict[int, list[bool]]) -> bool:
    outcomes = confirms.get(step)
    if outcomes:
        yes = sum(outcomes)
        no = len(outcomes) - yes
        return outcomes[0] if yes == no else yes > no
    return next(r.sustained for r in history if r.step == step)  # its coarse run


@dataclass(frozen=True)
class Boundary:
    """Where the sweep stands: the highest sustained step below the lowest failing one."""

    sustained: int | None  # None: not even the first step held (or nothing run yet)
    failing: int | None  # None: no step failed (the ladder's top may have been reached)


def boundary(history: Sequence[Run]) -> Boundary:
    confirms = _confirm_runs(history)
    steps = sorted({r.step for r in history})
    failing = next((s for s in steps if not _holds(s, history, confirms)), None)
    below = [s for s in steps if failing is None or s < failing]
    return Boundary(max(below, default=None), failing)


def next_run(spec: SweepSpec, history: Sequence[Run]) -> tuple[int, Phase] | None:
    """The ladder step and phase to run next given ``history`` (in run order); None: done."""
    if len(history) >= spec.max_points:
        return None
    confirms = _confirm_runs(history)
    edge = boundary(history)
    if edge.failing is None:
        top = -1 if edge.sustained is None else edge.sustained
        if top + 1 < spec.steps:
            return top + 1, Phase.COARSE
        # The ladder's top held: confirm it.
        return (top, Phase.CONFIRM) if len(confirms.get(top, ())) < spec.repeats else None
    # Every step below the lowest failing one was climbed, so the one just below it has been run.
    sides = [s for s in (edge.failing - 1, edge.failing) if s >= 0]
    short = [s for s in sides if len(confirms.get(s, ())) < spec.repeats]
    if not short:
        return None
    return min(short, key=lambda s: (len(confirms.get(s, ())), s)), Phase.CONFIRM  # interleaved


@dataclass(frozen=True)
class Capacity:
    step: int | None  # None: even the ladder's first rate was not sustained
    rate_per_s: float  # 0 when step is None
    at_top: bool  # the ladder's top held: capacity is at least this
    confirmed: bool  # both sides of the boundary have ``repeats`` confirm runs


def capacity(spec: SweepSpec, history: Sequence[Run]) -> Capacity:
    confirms = _confirm_runs(history)
    edge = boundary(history)
    sides = [s for s in (edge.sustained, edge.failing) if s is not None]
    confirmed = bool(sides) and all(len(confirms.get(s, ())) >= spec.repeats for s in sides)
    if edge.sustained is None:
        return Capacity(None, 0.0, False, confirmed)
    at_top = edge.failing is None and edge.sustained == spec.steps - 1
    return Capacity(edge.sustained, spec.rate(edge.sustained), at_top, confirmed)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    def as_json(self) -> dict[str, float | int | None]:
        # JSON has no inf/NaN: null means "never finished" (inf) or "not measured" (NaN).
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def spread(values: Iterable[float]) -> Spread:
    """Median and min-max of repeated measurements (NaN ones, "not measured", are left out; inf stays)."""
    kept = sorted(v for v in values if not math.isnan(v))
    if not kept:
        return Spread(math.nan, math.nan, math.nan, 0)
    # statistics.median averages the middle two of an even count; inf + finite stays inf, as it should.
    return Spread(statistics.median(kept), kept[0], kept[-1], len(kept))


def idle(cpu_s: float, interval_s: float, threshold_cores: float) -> bool:
    """A system spent less than ``threshold_cores`` of a core over ``interval_s``: its backlog is done."""
    return interval_s > 0 and cpu_s / interval_s < threshold_cores
