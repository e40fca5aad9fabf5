"""Runs the scenarios (a)-(d) for every system, one after the other on the same machine in one
invocation, and measures each run (``measure``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import uvloop
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench import cpu
from bench.baseline.settings import Variant
from bench.baseline_stack import BaselineStack
from bench.config import Accounts, Load, Mode, Profile, Scenario, System
from bench.loadgen import Counters, LoadResult, run_load
from bench.measure import RunResult, is_accepted, measure
from bench.ours import OurStack
from bench.tracker import CompletionFeed, CompletionTracker
from bench.workload import Workload
from bench.world import World

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a fresh uvloop loop: the load generator's own CPU use is part of what the 2
    cores share, so it should spend as little as it can."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(make())  # type: ignore[arg-type]


def new_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<34}"),
        BarColumn(bar_width=28),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        refresh_per_second=4,
    )


@dataclass
class Systems:
    ours: OurStack | None
    baseline: BaselineStack | None
    tracker: CompletionTracker | None


class ScenarioRunner:
    def __init__(self, profile: Profile, world: World, systems: Systems, progress: Progress) -> None:
        self._profile = profile
        self._world = world
        self._systems = systems
        self._progress = progress

    def run(self, scenario: Scenario) -> list[RunResult]:
        return [self.run_one(scenario, system) for system in scenario.systems]

    def warm_up(self, seconds: float) -> None:
        """A short unrecorded run per system: the broker's JVM compiles its hot paths during the first
        tens of thousands of requests (its CPU per payment halves), and every Python process fills its
        caches; none of that is steady state."""
        load = Load(Mode.CLOSED, seconds, warmup_s=0)
        systems = [System.OURS] if self._systems.ours is not None else []
        systems += [System.BASELINE_UNLOCKED] if self._systems.baseline is not None else []
        for system in systems:
            self.run_one(Scenario("warm-up", "warm-up", Accounts.UNIFORM, 0, load, (system,)), system)

    def _cpu_groups(self, system: System) -> dict[str, list[int]]:
        stack = self._systems.ours if system is System.OURS else self._systems.baseline
        assert stack is not None
        return stack.cpu_groups()

    def _prepare(self, scenario: Scenario, system: System) -> str:
        if system is System.OURS:
            ours, tracker = self._systems.ours, self._systems.tracker
            assert ours is not None
            assert tracker is not None
            ours.set_psp_latency(scenario.psp_latency_ms)
            tracker.take()  # forget completions that arrived between runs
            return ours.base_url
        baseline = self._systems.baseline
        assert baseline is not None
        baseline.set_psp_latency(scenario.psp_latency_ms)
        variant = Variant.LOCKED if system is System.BASELINE_LOCKED else Variant.UNLOCKED
        baseline.start_app(variant)
        return baseline.base_url

    def run_one(self, scenario: Scenario, system: System) -> RunResult:
        url = self._prepare(scenario, system)
        workload = Workload(
            self._world,
            scenario.accounts,
            run_tag=f"{scenario.name}-{system.value}-{secrets.token_hex(4)}",
            seed=self._profile.seed,
            zipf_s=self._profile.zipf_s,
        )
        task = self._progress.add_task(
            f"{scenario.name} · {system.value}", total=scenario.load.duration_s, stats=""
        )

        def tick(elapsed: float, live: Counters) -> None:
            self._progress.update(
                task, completed=min(elapsed, scenario.load.duration_s), stats=live.describe()
            )

        groups = self._cpu_groups(system)
        cpu_before = cpu.snapshot(groups)
        loadgen_before = cpu.cpu_seconds([os.getpid()])
        feed = None
        if system is System.OURS and scenario.load.mode is Mode.CLOSED:
            assert self._systems.tracker is not None
            self._systems.tracker.streaming(True)
            feed = CompletionFeed(self._systems.tracker.stream)
        load = run_async(
            lambda: run_load(
                url,
                workload.call,
                scenario.load,
                request_timeout_s=self._profile.request_timeout_s,
                on_tick=tick,
                feed=feed,
            )
        )
        if feed is not None:
            assert self._systems.tracker is not None
            self._systems.tracker.streaming(False)
        loadgen_s = round(cpu.cpu_seconds([os.getpid()]) - loadgen_before, 3)
        if system is not System.OURS:
            self._progress.update(task, completed=scenario.load.duration_s)
            used = cpu.delta(cpu_before, cpu.snapshot(groups))
            return measure(scenario, system, load, cpu_s=used, loadgen_cpu_s=loadgen_s)
        return self._drain_ours(scenario, load, task, groups, cpu_before, loadgen_s)

    def _drain_ours(
        self,
        scenario: Scenario,
        load: LoadResult,
        task: TaskID,
        groups: dict[str, list[int]],
        cpu_before: dict[str, float],
        loadgen_s: float,
    ) -> RunResult:
        tracker = self._systems.tracker
        assert tracker is not None
        ids = [s.op_id for s in load.samples if is_accepted(s.status) and s.op_id is not None]
        tracker.expect(ids)
        deadline = time.monotonic() + self._profile.drain_s + scenario.psp_latency_ms / 1000
        pending = tracker.pending()
        while pending and time.monotonic() < deadline:
            self._progress.update(task, stats=f"draining: {pending} payments not final yet")
            time.sleep(0.1)
            pending = tracker.pending()
        terminal, decided = tracker.take()
        # Includes the drain: finishing what was accepted is part of the work.
        used = cpu.delta(cpu_before, cpu.snapshot(groups))
        settle = time.monotonic() + self._profile.settle_s
        while pending and time.monotonic() < settle:
            # Counted as unfinished already; waited for only so that this run's backlog does not run
            # into the next one.
            self._progress.update(task, stats=f"settling: {pending} payments of this run still in flight")
            time.sleep(0.2)
            pending = tracker.pending()
        self._progress.update(task, stats=f"done ({pending} unfinished)" if pending else "done")
        return measure(
            scenario, System.OURS, load, terminal_at=terminal, decided_at=decided, drained=pending == 0,
            cpu_s=used, loadgen_cpu_s=loadgen_s,
        )  # fmt: skip
