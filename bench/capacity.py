"""Capacity: the open-loop rate sweep per scenario and system (``bench.sweep`` decides, this runs).

System by system (the baseline app started once per variant), one unrecorded warm-up per system, then
for each scenario the points chosen by ``sweep.next_run`` until it says done or the sweep's time budget
is spent. A point is an open-loop run at a fixed offered rate (``loadgen``, stopped early once
its p99 bound is certainly broken), measured over its window (``points``), with the CPU of every process
of the system and of the load generator itself; after it, the system is left to finish its backlog
(until its processes are idle) so that the next point starts clean.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rich.progress import Progress, TaskID

from bench import cpu
from bench.baseline.settings import Variant
from bench.baseline_stack import BaselineStack
from bench.config import CapacityScenario, CapacitySpec, Load, Mode, System
from bench.loadgen import AbortRule, Counters, LoadResult, run_load
from bench.measure import FINAL_STATUSES, status_label
from bench.ours import OurStack
from bench.points import completed_in_run, ms_per_payment, point_stats
from bench.runner import run_async
from bench.sweep import (
    Capacity,
    Phase,
    PointStats,
    Run,
    Verdict,
    bound_broken,
    capacity,
    idle,
    judge,
    next_run,
)
from bench.workload import PaymentCall, Workload
from bench.world import World

LOADGEN = "loadgen"  # the CPU row of the load generator (this process)


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class PointResult:
    step: int
    phase: Phase
    stats: PointStats
    verdict: Verdict
    cpu_s: dict[str, float]  # per process (LOADGEN included), over the run and its drain
    completed_in_run: int  # final answers of the whole run (the CPU's denominator)
    seconds: float  # wall time of the run, drain included
    settle_s: float  # afterwards: waiting for the system to go idle (its backlog done)
    idle_cores: float = math.nan  # the system's CPU use (cores) when the settling ended
    statuses: dict[str, int] = field(default_factory=dict)  # answers of the whole run, by HTTP status

    @property
    def cpu_ms(self) -> dict[str, float]:
        return ms_per_payment(self.cpu_s, self.completed_in_run)

    @property
    def system_cpu_ms(self) -> float:
        """CPU ms per payment of the system under test, the load generator left out."""
        total = sum(v for k, v in self.cpu_s.items() if k != LOADGEN)
        return 1000 * total / self.completed_in_run if self.completed_in_run else math.nan

    def as_json(self) -> dict[str, Any]:
        stats = {k: (_num(v) if isinstance(v, float) else v) for k, v in asdict(self.stats).items()}
        return {
            "step": self.step, "phase": self.phase.value, **stats, "sustained": self.verdict.sustained,
            "reason": self.verdict.reason, "cpu_s": self.cpu_s, "completed_in_run": self.completed_in_run,
            "cpu_ms_per_payment": {k: _num(round(v, 3)) for k, v in self.cpu_ms.items()},
            "system_cpu_ms_per_payment": _num(round(self.system_cpu_ms, 3)),
            "seconds": round(self.seconds, 2), "settle_s": round(self.settle_s, 2),
            "idle_cores": _num(round(self.idle_cores, 3)), "statuses": self.statuses,
        }  # fmt: skip


@dataclass(frozen=True)
class SweepResult:
    scenario: str
    title: str
    system: str
    points: tuple[PointResult, ...]
    capacity: Capacity
    seconds: float

    def confirm_runs(self, step: int | None) -> list[PointResult]:
        return [p for p in self.points if p.step == step and p.phase is Phase.CONFIRM]

    @property
    def first_failing(self) -> int | None:
        above = [p.step for p in self.points if self.capacity.step is None or p.step > self.capacity.step]
        return min(above, default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "title": self.title, "system": self.system,
            "capacity_per_s": self.capacity.rate_per_s, "capacity_step": self.capacity.step,
            "at_ladder_top": self.capacity.at_top, "confirmed": self.capacity.confirmed,
            "seconds": round(self.seconds, 1), "points": [p.as_json() for p in self.points],
        }  # fmt: skip


def with_prefer_wait(call: PaymentCall, wait_s: int) -> PaymentCall:
    return PaymentCall(call.path, {**call.headers, "Prefer": f"wait={wait_s}"}, call.body)


class CapacityRunner:
    def __init__(
        self,
        spec: CapacitySpec,
        world: World,
        *,
        ours: OurStack | None,
        baseline: BaselineStack | None,
        progress: Progress,
        seed: int,
        zipf_s: float,
    ) -> None:
        self._spec = spec
        self._world = world
        self._ours = ours
        self._baseline = baseline
        self._progress = progress
        self._seed = seed
        self._zipf_s = zipf_s
        self._warm: set[System] = set()

    def run(self, on_sweep: Callable[[SweepResult], None] | None = None) -> list[SweepResult]:
        """Every sweep, system by system (the baseline app is started once per variant: a restarted app
        is cold), returned scenario by scenario."""
        out = []
        for system in self._spec.systems:
            url, groups = self._prepare(system)
            for scenario in self._spec.scenarios:
                result = self.sweep(scenario, system, url, groups)
                out.append(result)
                if on_sweep is not None:
                    on_sweep(result)
        order = {s.name: i for i, s in enumerate(self._spec.scenarios)}
        return sorted(out, key=lambda r: order[r.scenario])  # stable: systems keep their order

    # -- one system ----------------------------------------------------------------------------------------

    def _prepare(self, system: System) -> tuple[str, dict[str, list[int]]]:
        if system is System.OURS:
            assert self._ours is not None
            self._ours.set_psp_latency(0)
            return self._ours.base_url, self._ours.cpu_groups()
        assert self._baseline is not None
        self._baseline.set_psp_latency(0)
        variant = Variant.LOCKED if system is System.BASELINE_LOCKED else Variant.UNLOCKED
        self._baseline.start_app(variant)
        return self._baseline.base_url, self._baseline.cpu_groups()

    def sweep(
        self, scenario: CapacityScenario, system: System, url: str, groups: dict[str, list[int]]
    ) -> SweepResult:
        started = time.monotonic()
        task = self._progress.add_task(f"{scenario.name} · {system.value}", total=1.0, stats="")
        if system not in self._warm:
            # Unrecorded: the broker's JIT and every process's caches, as in the scenarios' warm-up.
            load = Load(Mode.OPEN, self._spec.warmup_s, rate_per_s=self._spec.warmup_per_s, warmup_s=0)
            self._run(url, self._calls(scenario, system), load, task, "warm-up")
            self._settle(groups)
            self._warm.add(system)
        sweep = self._spec.sweep
        history: list[Run] = []
        points: list[PointResult] = []
        began = time.monotonic()
        while (chosen := next_run(sweep, history)) is not None:
            if time.monotonic() - began > self._spec.budget_s:
                break
            step, phase = chosen
            point = self._point(scenario, system, url, groups, step, phase, task)
            # Not a restart of the baseline app after a failed point: a freshly started app is cold
            # (its first second of requests is several times slower), which would fail the next point.
            # Its backlog drains with the CPU busy, which the idle check sees (measured: ~1 core for
            # 1-2 s after 400/s, then < 0.05).
            t = time.monotonic()
            cores = self._settle(groups)
            points.append(replace(point, settle_s=time.monotonic() - t, idle_cores=cores))
            history.append(Run(step, phase, point.verdict.sustained))
        found = capacity(sweep, history)
        self._progress.update(
            task, completed=1.0, total=1.0,
            stats=f"capacity {found.rate_per_s:,.0f}/s after {len(points)} points"
            + ("" if found.confirmed else " (not confirmed)"),
        )  # fmt: skip
        return SweepResult(
            scenario.name, scenario.title, system.value, tuple(points), found, time.monotonic() - started
        )

    def _point(
        self,
        scenario: CapacityScenario,
        system: System,
        url: str,
        groups: dict[str, list[int]],
        step: int,
        phase: Phase,
        task: TaskID,
    ) -> PointResult:
        spec = self._spec
        rate = spec.sweep.rate(step)
        coarse = phase is Phase.COARSE
        length, warm = (
            (spec.coarse_s, spec.coarse_warmup_s) if coarse else (spec.confirm_s, spec.confirm_warmup_s)
        )
        load = Load(Mode.OPEN, length, rate_per_s=rate, warmup_s=warm, max_in_flight=spec.max_in_flight)
        label = f"{rate:,.0f}/s {phase.value}"
        calls = self._calls(scenario, system)  # before the CPU snapshot: a Zipf table costs ~50 ms
        before = cpu.snapshot(groups)
        loadgen_before = cpu.cpu_seconds([os.getpid()])  # not its subtree: every service is its child
        t0 = time.monotonic()
        result = self._run(url, calls, load, task, label)
        seconds = time.monotonic() - t0
        used = cpu.delta(before, cpu.snapshot(groups))
        used[LOADGEN] = round(cpu.cpu_seconds([os.getpid()]) - loadgen_before, 3)
        stats = point_stats(result, rate, warm)
        statuses = Counter(status_label(s.status) for s in result.samples)
        return PointResult(
            step, phase, stats, judge(stats, spec.sweep), used, completed_in_run(result), seconds, 0.0,
            statuses=dict(sorted(statuses.items())),
        )  # fmt: skip

    def _calls(self, scenario: CapacityScenario, system: System) -> Callable[[int], PaymentCall]:
        workload = Workload(
            self._world,
            scenario.accounts,
            run_tag=f"cap-{scenario.name}-{system.value}-{secrets.token_hex(4)}",
            seed=self._seed,
            zipf_s=self._zipf_s,
        )
        wait_s = self._spec.prefer_wait_s
        if system is System.OURS:
            return lambda i: with_prefer_wait(workload.call(i), wait_s)
        return workload.call

    def _run(
        self, url: str, calls: Callable[[int], PaymentCall], load: Load, task: TaskID, label: str
    ) -> LoadResult:
        wait_s = self._spec.prefer_wait_s
        rule = AbortRule(self._spec.sweep.p99_bound_s, FINAL_STATUSES.__contains__, bound_broken)
        self._progress.reset(task, total=load.duration_s)

        def tick(elapsed: float, live: Counters) -> None:
            self._progress.update(
                task, completed=min(elapsed, load.duration_s), stats=f"{label}: {live.describe()}"
            )

        result = run_async(
            lambda: run_load(url, calls, load, request_timeout_s=wait_s + 1.0, on_tick=tick, abort=rule)
        )
        ended = "aborted: bound broken" if result.aborted else "done"
        self._progress.update(task, completed=load.duration_s, stats=f"{label}: {ended}")
        return result

    def _settle(self, groups: dict[str, list[int]]) -> float:
        """Wait until the system's processes are idle (its backlog finished), at most settle_max_s; their
        last CPU use in cores."""
        started = last_t = time.monotonic()
        last, cores = sum(cpu.snapshot(groups).values()), math.nan
        while last_t - started < self._spec.settle_max_s:
            time.sleep(0.25)
            now, now_t = sum(cpu.snapshot(groups).values()), time.monotonic()
            cores = (now - last) / (now_t - last_t)
            if idle(now - last, now_t - last_t, self._spec.idle_cores):
                break
            last, last_t = now, now_t
        return cores
