"""The capacity section's tables: capacity per scenario and system with the spread of its repeated runs,
and CPU milliseconds per payment per process at capacity. Pure (cells as strings; ``report`` renders)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bench.capacity import LOADGEN, PointResult, SweepResult
from bench.measure import fmt_ms
from bench.sweep import Spread, spread

CAPACITY_HEADERS = (
    "scenario", "system", "capacity /s", "ours ÷ this", "completed/s at capacity",
    "completion p99 ms at capacity", "CPU ms/payment (system)", "CPU ms/payment (load generator)",
    "next step up", "points",
)  # fmt: skip

# Rows of the per-process table, in this order; any other process follows, then the total.
PROCESS_ORDER = (
    LOADGEN, "gateway", "processor-0", "psp-caller", "projector", "reconciler", "psp-sim", "kafka",
    "redis", "app", "postgres",
)  # fmt: skip
TOTAL = "system total (load generator excluded)"


def fmt_spread(s: Spread, fmt: Callable[[float], str]) -> str:
    """'median (min-max)', or just the value when every run gave the same one; '-' if none."""
    if s.n == 0:
        return "-"
    if s.low == s.high:
        return fmt(s.median)
    return f"{fmt(s.median)} ({fmt(s.low)}-{fmt(s.high)})"


def _rate(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def _cpu(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "∞"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _ms(seconds: float) -> str:
    return fmt_ms(seconds)


def at_capacity(sweep: SweepResult) -> list[PointResult]:
    """The runs the capacity's numbers come from: its confirm runs, else whatever ran at that step."""
    step = sweep.capacity.step
    if step is None:
        return []
    return sweep.confirm_runs(step) or [p for p in sweep.points if p.step == step]


def capacity_label(sweep: SweepResult, ladder_start: float) -> str:
    c = sweep.capacity
    if c.step is None:
        text = f"< {ladder_start:,.0f}"
    elif c.at_top:
        text = f"≥ {c.rate_per_s:,.0f}"
    else:
        text = f"{c.rate_per_s:,.0f}"
    return text if c.confirmed else text + " *"


def _next_step(sweep: SweepResult) -> str:
    step = sweep.first_failing
    if step is None:
        return "-"
    runs = sweep.confirm_runs(step) or [p for p in sweep.points if p.step == step]
    held = sum(p.verdict.sustained for p in runs)
    reasons = sorted({p.verdict.reason for p in runs if not p.verdict.sustained})
    rate = runs[0].stats.offered_per_s
    return f"{rate:,.0f}/s: {held} of {len(runs)} held" + (f" ({'; '.join(reasons)})" if reasons else "")


def _ratio(ours: float, theirs: float) -> str:
    if ours <= 0 or theirs <= 0:
        return "-"
    return f"{ours / theirs:.2f}x"


def capacity_rows(sweeps: Sequence[SweepResult], ladder_start: float) -> list[list[str]]:
    ours = {s.scenario: s.capacity.rate_per_s for s in sweeps if s.system == "ours"}
    rows = []
    for s in sweeps:
        runs = at_capacity(s)
        vs = "1.00x" if s.system == "ours" else _ratio(ours.get(s.scenario, 0.0), s.capacity.rate_per_s)
        rows.append([
            s.scenario, s.system, capacity_label(s, ladder_start), vs,
            fmt_spread(spread(p.stats.completed_per_s for p in runs), _rate),
            fmt_spread(spread(p.stats.p99_s for p in runs), _ms),
            fmt_spread(spread(p.system_cpu_ms for p in runs), _cpu),
            fmt_spread(spread(p.cpu_ms.get(LOADGEN, math.nan) for p in runs), _cpu),
            _next_step(s), str(len(s.points)),
        ])  # fmt: skip
    return rows


def process_rows(sweeps: Sequence[SweepResult]) -> tuple[list[str], list[list[str]]]:
    """CPU ms per payment of every process at capacity, one column per system of one scenario."""
    names = list(PROCESS_ORDER)
    for s in sweeps:
        for p in s.points:
            names += [n for n in p.cpu_s if n not in names]
    seen = [n for n in names if any(n in p.cpu_s for s in sweeps for p in s.points)]
    headers = ["process", *(s.system for s in sweeps)]
    rows = []
    for name in seen:
        cells = []
        for s in sweeps:
            runs = [p for p in at_capacity(s) if name in p.cpu_s]
            cells.append(fmt_spread(spread(p.cpu_ms[name] for p in runs), _cpu) if runs else "-")
        rows.append([name, *cells])
    rows.append([TOTAL, *(fmt_spread(spread(p.system_cpu_ms for p in at_capacity(s)), _cpu) for s in sweeps)])
    return headers, rows


def by_scenario(sweeps: Sequence[SweepResult]) -> dict[str, list[SweepResult]]:
    out: dict[str, list[SweepResult]] = {}
    for s in sweeps:
        out.setdefault(s.scenario, []).append(s)
    return out
