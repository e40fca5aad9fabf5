"""PNG plots of a run: throughput per scenario, throughput against PSP latency, latency CDFs, and the
processor-only and gateway-only comparisons. matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# pyplot only after the backend is chosen: the default one wants a display.
import matplotlib.pyplot as plt

from bench.gateway_bench import GatewayResult
from bench.measure import RunResult
from bench.processor_bench import ProcessorResult

COLORS = {"ours": "#1b9e77", "baseline-locked": "#d95f02", "baseline-unlocked": "#7570b3"}


def _systems(results: Sequence[RunResult]) -> list[str]:
    return list(dict.fromkeys(r.system for r in results))


def throughput(results: Sequence[RunResult], path: Path) -> None:
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    systems = _systems(results)
    by_key = {(r.scenario, r.system): r for r in results}
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for j, system in enumerate(systems):
        xs = [i + (j - (len(systems) - 1) / 2) * width for i in range(len(scenarios))]
        ys = [by_key[(s, system)].completed_per_s if (s, system) in by_key else 0.0 for s in scenarios]
        ax.bar(xs, [max(y, 0.05) for y in ys], width, label=system, color=COLORS.get(system))
    ax.set_yscale("log")
    ax.set_xticks(range(len(scenarios)), scenarios, rotation=20)
    ax.set_ylabel("completed payments / s (log)")
    ax.set_title("Throughput per scenario (terminal results per second, steady state)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def psp_latency(results: Sequence[RunResult], path: Path) -> None:
    d = [r for r in results if r.scenario.startswith("d-")]
    if not d:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for system in _systems(d):
        rs = sorted((r for r in d if r.system == system), key=lambda r: r.psp_latency_ms)
        xs = [r.psp_latency_ms / 1000 for r in rs]
        left.plot(xs, [r.completed_per_s for r in rs], marker="o", label=system, color=COLORS.get(system))
        p99 = [r.completion.p99 for r in rs]
        right.plot(xs, [p if p != float("inf") else float("nan") for p in p99], marker="o", label=system,
                   color=COLORS.get(system))  # fmt: skip
    offered = d[0].load.rate_per_s
    left.axhline(offered, linestyle=":", color="grey", label=f"offered {offered:g}/s")
    left.set_xlabel("PSP latency (s)")
    left.set_ylabel("completed payments / s")
    left.set_title("Throughput as PSP latency grows (hot account)")
    left.legend()
    right.set_yscale("log")
    right.set_xlabel("PSP latency (s)")
    right.set_ylabel("completion p99 (s, log; missing = unfinished)")
    right.set_title("Completion latency p99")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cdfs(results: Sequence[RunResult], path: Path) -> None:
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    cols = 3
    rows = (len(scenarios) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.4 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        for r in (r for r in results if r.scenario == scenario):
            color = COLORS.get(r.system)
            if r.completion_cdf:
                xs, ys = zip(*r.completion_cdf, strict=True)
                ax.step([x * 1000 for x in xs], ys, where="post", color=color, label=f"{r.system} completion")
            if r.system == "ours" and r.accept_cdf:
                xs, ys = zip(*r.accept_cdf, strict=True)
                ax.step(
                    [x * 1000 for x in xs],
                    ys,
                    where="post",
                    color=color,
                    linestyle=":",
                    label="ours accept (202)",
                )
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("latency (ms, log)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    fig.suptitle("Latency CDFs (fraction of all requests sent; unfinished never reach the curve)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def processor(results: Sequence[ProcessorResult], path: Path) -> None:
    workloads = list(dict.fromkeys(r.workload for r in results))
    contenders = list(dict.fromkeys(r.contender for r in results))
    by_key = {(r.workload, r.contender): r.per_s for r in results}
    width = 0.8 / len(contenders)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for j, c in enumerate(contenders):
        xs = [i + (j - (len(contenders) - 1) / 2) * width for i in range(len(workloads))]
        ax.bar(xs, [by_key.get((w, c), 0.0) for w in workloads], width, label=c)
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel("commands / s")
    ax.set_title("Processor only: exactly-once runtime vs raw confluent-kafka")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gateway(results: Sequence[GatewayResult], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = [r.contender for r in results]
    left.bar(names, [r.accepted_per_s for r in results], color="#1b9e77")
    left.set_ylabel("accepted / s")
    left.set_title("Gateway only: accepted payments / s")
    right.bar([f"{n}\np50" for n in names], [r.latency.p50 * 1000 for r in results], color="#66a61e")
    right.bar([f"{n}\np99" for n in names], [r.latency.p99 * 1000 for r in results], color="#e6ab02")
    right.set_ylabel("ms")
    right.set_title("accept latency")
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
