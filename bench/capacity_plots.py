"""PNG of the capacity section: capacity per scenario and system (bars), and completion p99 against the
offered rate (one panel per scenario, median of the runs at each rate, min-max as error bars)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# pyplot only after the backend is chosen: the default one wants a display.
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from bench.capacity import SweepResult
from bench.capacity_report import by_scenario
from bench.plots import COLORS
from bench.sweep import spread


def capacity(sweeps: Sequence[SweepResult], path: Path, *, bound_s: float, ceiling_s: float) -> None:
    """``ceiling_s``: where a p99 that never finished (a request without a final answer) is drawn."""
    groups = by_scenario(sweeps)
    scenarios = list(groups)
    if not scenarios:
        return
    systems = list(dict.fromkeys(s.system for s in sweeps))
    fig, axes = plt.subplots(
        2, max(1, len(scenarios)), figsize=(4.2 * max(2, len(scenarios)), 8.2), squeeze=False
    )
    bars = fig.add_subplot(2, 1, 1)
    for ax in axes[0]:
        ax.remove()
    width = 0.8 / max(1, len(systems))
    for j, system in enumerate(systems):
        xs = [i + (j - (len(systems) - 1) / 2) * width for i in range(len(scenarios))]
        ys = [
            next((s.capacity.rate_per_s for s in groups[sc] if s.system == system), 0.0) for sc in scenarios
        ]
        drawn = bars.bar(xs, ys, width, label=system, color=COLORS.get(system))
        bars.bar_label(drawn, labels=[f"{y:,.0f}" for y in ys], fontsize=8)
    bars.set_xticks(range(len(scenarios)), scenarios)
    bars.set_ylabel("payments / s")
    bars.set_title(
        f"Capacity: highest offered rate sustained with completion p99 ≤ {bound_s:g} s (open loop)"
    )
    bars.legend()
    bars.grid(axis="y", alpha=0.3)
    for ax, scenario in zip(axes[1], scenarios, strict=False):
        for sweep in groups[scenario]:
            rates = sorted({p.stats.offered_per_s for p in sweep.points})
            med, lo, hi = [], [], []
            for rate in rates:
                sp = spread(
                    min(p.stats.p99_s, ceiling_s) for p in sweep.points if p.stats.offered_per_s == rate
                )
                med.append(sp.median)
                lo.append(sp.median - sp.low)
                hi.append(sp.high - sp.median)
            ax.errorbar(rates, med, yerr=[lo, hi], marker="o", capsize=3, label=sweep.system,
                        color=COLORS.get(sweep.system))  # fmt: skip
        ax.axhline(bound_s, linestyle=":", color="grey", label=f"bound {bound_s:g} s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Plain numbers on the log axes (not 6 x 10^1).
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_ylim(top=ceiling_s * 1.3)
        ax.set_xlabel("offered payments / s (log)")
        ax.set_ylabel(f"completion p99 (s, log; unfinished at {ceiling_s:g})")
        ax.set_title(f"{scenario}: p99 against offered rate", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
