"""``payments bench {full,quick}``: every benchmark of ``bench/README.md`` in one invocation.

    payments bench quick                      # ~2 min: reduced sizes (make bench-quick)
    payments bench full                       # <=10 min: the representative run (make bench)
    payments bench full --only capacity --scenarios a-hot --p99-bound 0.5   # one capacity sweep
    payments bench full --only gateway,processor --compare-tree /tmp/before   # before/after a change

Starts our stack and the baseline (PostgreSQL, installed by bench/setup_postgres.sh) on 127.0.0.1, runs the
capacity sweeps (a)-(c) and the PSP-latency scenarios (d) for every system side by side, the
processor-only and gateway-only benchmarks (and, with ``--only closed``, (a)-(c) in a closed loop of 64
workers), prints the tables and writes ``<out>/<profile>-*.json`` and ``<out>/<profile>-*.png``.
Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import capacity_plots, capacity_report, machine, plots, report
from bench.baseline_stack import BaselineStack
from bench.capacity import CapacityRunner, SweepResult
from bench.config import PROFILES, Profile, System
from bench.gateway_bench import GatewayResult, run_gateway_bench
from bench.loadgen import Counters
from bench.measure import RunResult, fmt_ms
from bench.ours import OurStack
from bench.processor_bench import ProcessorResult, run_processor_bench
from bench.runner import ScenarioRunner, Systems, new_progress, run_async
from bench.tracker import CompletionTracker
from bench.world import World

SECTIONS = ("capacity", "scenarios", "processor", "gateway", "closed")
DEFAULT_SECTIONS = ("capacity", "scenarios", "processor", "gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payments bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "profile", choices=sorted(PROFILES), help="full (make bench) or quick (make bench-quick)"
    )
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all but closed)",
    )
    parser.add_argument(
        "--scenarios", default=None, help="comma-separated scenario names (default: all of the profile)"
    )
    parser.add_argument(
        "--systems", default=None, help="capacity: comma-separated systems (default: ours and both baselines)"
    )
    parser.add_argument(
        "--p99-bound", type=float, default=None, help="capacity: completion p99 bound in seconds (default 1)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where JSON and PNG files go")
    parser.add_argument(
        "--pg-sync-commit", action="store_true", help="run PostgreSQL with synchronous_commit=on"
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        default=None,
        help="also run the gateway and the processor from this source tree (before/after an optimisation)",
    )
    parser.add_argument("--gateway-rounds", type=int, default=None, help="rounds of the gateway benchmark")
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="accounts of (b) and (c) (default: the profile's; fewer load faster)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="partitions per topic of our stack (default: the profile's, 2 per core and at least 4)",
    )
    parser.add_argument("--keep-state", action="store_true", help="keep the state folder (logs) afterwards")
    return parser


def _select(profile: Profile, args: argparse.Namespace) -> Profile:
    sections = frozenset(s for s in args.only.split(",") if s)
    unknown = sections - set(SECTIONS)
    if unknown:
        raise SystemExit(f"payments bench: unknown section(s) {', '.join(sorted(unknown))}")
    profile = profile.only(sections)
    cap = profile.capacity
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        known = {s.name for s in (*profile.scenarios, *profile.closed)} | {s.name for s in cap.scenarios}
        if wanted - known:
            raise SystemExit(
                f"payments bench: unknown scenario(s) {', '.join(sorted(wanted - known))}; known: {', '.join(sorted(known))}"
            )
        profile = replace(
            profile,
            scenarios=tuple(s for s in profile.scenarios if s.name in wanted),
            closed=tuple(s for s in profile.closed if s.name in wanted),
        )
        cap = replace(cap, scenarios=tuple(s for s in cap.scenarios if s.name in wanted))
    if args.systems:
        try:
            cap = replace(cap, systems=tuple(System(s) for s in args.systems.split(",")))
        except ValueError as exc:
            raise SystemExit(f"payments bench: {exc}") from exc
    if args.p99_bound:
        # Ours is asked to wait for the final answer at least as long as the bound, plus a second, so
        # that a completion just past the bound is still seen as one.
        wait = max(cap.prefer_wait_s, math.ceil(args.p99_bound) + 1)
        cap = replace(cap, sweep=replace(cap.sweep, p99_bound_s=args.p99_bound), prefer_wait_s=wait)
    profile = replace(profile, capacity=cap)
    if args.partitions:
        profile = replace(profile, partitions=args.partitions)
    if args.accounts:
        profile = replace(profile, accounts=args.accounts)
    if args.gateway_rounds:
        profile = replace(profile, gateway=replace(profile.gateway, rounds=args.gateway_rounds))
    return profile


class Bench:
    def __init__(self, profile: Profile, args: argparse.Namespace, console: Console) -> None:
        self.profile = profile
        self.args = args
        self.console = console
        self.state_dir = Path(tempfile.mkdtemp(prefix="payments-bench-"))
        self.world = World.create(profile.accounts, profile.users, profile.hot_users)
        self.ours = OurStack(
            self.state_dir / "ours", partitions=profile.partitions, psp_in_flight=profile.psp_in_flight
        )
        self.baseline: BaselineStack | None = None
        self.tracker: CompletionTracker | None = None
        self.progress = new_progress()
        self.doc: dict[str, Any] = {"profile": profile.name, "machine": machine.describe()}

    def start(self) -> None:
        t0 = time.monotonic()
        with self.console.status("starting our stack (Kafka, Redis, PSP simulator, services)..."):
            self.ours.start()
        self.console.print(f"our stack up in {time.monotonic() - t0:.1f}s ({self.ours.base_url})")
        if self.profile.sections & {"capacity", "scenarios", "closed"}:
            t1 = time.monotonic()
            self.baseline = BaselineStack(
                self.state_dir / "baseline",
                pool_size=self.profile.baseline_pool,
                lock_timeout_ms=self.profile.baseline_lock_timeout_ms,
                synchronous_commit=self.args.pg_sync_commit,
            )
            with self.console.status("starting the baseline (PostgreSQL, PSP simulator)..."):
                self.baseline.start()
                self.baseline.seed(self.world)
            self.console.print(
                f"baseline up and seeded in {time.monotonic() - t1:.1f}s ({self.baseline.pg.dsn})"
            )
        t2 = time.monotonic()
        with self.progress:
            task = self.progress.add_task(
                "seeding our accounts", total=len(self.world.all_accounts()), stats=""
            )
            self.ours.seed(
                self.world,
                lambda done, total: self.progress.update(
                    task, completed=done, stats=f"{done}/{total} funded"
                ),
            )
        self.console.print(
            f"{len(self.world.all_accounts()):,} accounts opened and funded in ours in {time.monotonic() - t2:.1f}s"
        )

    def stop(self) -> None:
        if self.tracker is not None:
            self.tracker.stop()
        if self.baseline is not None:
            self.baseline.stop()
        self.ours.stop()
        if self.args.keep_state:
            self.console.print(f"state and logs kept in {self.state_dir}")
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _check_alive(self) -> None:
        dead = self.ours.dead_children() + (self.baseline.dead_children() if self.baseline else [])
        if dead:
            raise RuntimeError(
                f"service(s) died: {', '.join(dead)}; logs in {self.state_dir} (use --keep-state)"
            )

    def capacity(self) -> list[SweepResult]:
        self.progress = new_progress()
        runner = CapacityRunner(
            self.profile.capacity, self.world, ours=self.ours, baseline=self.baseline,
            progress=self.progress, seed=self.profile.seed, zipf_s=self.profile.zipf_s,
        )  # fmt: skip
        with self.progress:
            return runner.run(on_sweep=lambda _: self._check_alive())

    def scenarios(self, closed: bool = False) -> list[RunResult]:
        if self.tracker is None:
            # Started only now: it reads every result of ours, CPU the capacity sweeps must not pay.
            self.tracker = CompletionTracker(self.ours.kafka.bootstrap, self.ours.kafka.topics.results)
        self.progress = new_progress()
        runner = ScenarioRunner(
            self.profile, self.world, Systems(self.ours, self.baseline, self.tracker), self.progress
        )
        results: list[RunResult] = []
        with self.progress:
            runner.warm_up(self.profile.warmup_s)
            for scenario in (
                (*self.profile.closed, *self.profile.scenarios) if closed else self.profile.scenarios
            ):
                results += runner.run(scenario)
                self._check_alive()
        return results

    def processor(self) -> list[ProcessorResult]:
        self.progress = new_progress()
        tasks: dict[str, Any] = {}

        def tick(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = self.progress.add_task(f"processor · {label}", total=total, stats="")
            self.progress.update(tasks[label], completed=done, stats=f"{done:,}/{total:,} committed")

        with self.progress:
            return run_processor_bench(
                self.ours,
                self.profile.processor,
                self.profile.seed,
                tick,
                compare_tree=self.args.compare_tree,
            )

    def gateway(self) -> list[GatewayResult]:
        self.progress = new_progress()

        def progress(label: str, total: float) -> Any:
            task = self.progress.add_task(label, total=total, stats="")

            def tick(elapsed: float, live: Counters) -> None:
                self.progress.update(task, completed=min(elapsed, total), stats=live.describe())

            return tick

        with self.progress:
            return run_gateway_bench(
                self.ours, self.world, self.profile.gateway, seed=self.profile.seed,
                request_timeout_s=self.profile.request_timeout_s, run=run_async, progress=progress,
                compare_tree=self.args.compare_tree,
            )  # fmt: skip


def _write(out: Path, profile: str, name: str, doc: dict[str, Any]) -> Path:
    path = out / f"{profile}-{name}.json"
    report.write_json(path, doc)
    return path


def _processor_rows(results: list[ProcessorResult]) -> list[list[str]]:
    raw = {(r.workload, r.contender): r.per_s for r in results}
    out = []
    for r in results:
        vs = raw.get((r.workload, "raw"), 0.0)
        out.append([f"{r.workload} · {r.contender}", f"{r.records:,}", f"{r.per_s:,.0f}",
                    f"{r.per_s / vs:.2f}" if vs else "-", f"{r.cpu_us_per_record:,.0f}",
                    "" if r.finished else "timed out"])  # fmt: skip
    return out


def _gateway_rows(results: list[GatewayResult]) -> list[list[str]]:
    bare = next((r.accepted_per_s for r in results if r.contender == "bare FastAPI"), 0.0)
    out = []
    for r in results:
        vs = f"{r.accepted_per_s / bare:.2f}" if bare else "-"
        out.append([r.contender, f"{r.accepted_per_s:,.0f}", fmt_ms(r.latency.p50), fmt_ms(r.latency.p99),
                    str(r.errors), vs, f"{r.cpu_us_per_accept:,.0f}"])  # fmt: skip
    return out


PROCESSOR_HEADERS = ("workload · contender", "records", "records/s", "÷ raw", "CPU µs/record", "note")
GATEWAY_HEADERS = ("contender", "accepted/s", "p50 ms", "p99 ms", "errors", "÷ bare", "CPU µs/accept")


def _capacity_out(
    console: Console, out: Path, profile: Profile, doc: dict[str, Any], sweeps: list[SweepResult],
    markdown: list[str],
) -> None:  # fmt: skip
    spec = profile.capacity
    _write(out, profile.name, "capacity", {**doc, "capacity_spec": asdict(spec),
                                           "sweeps": [s.as_json() for s in sweeps]})  # fmt: skip
    capacity_plots.capacity(
        sweeps, out / f"{profile.name}-capacity.png",
        bound_s=spec.sweep.p99_bound_s, ceiling_s=spec.prefer_wait_s + 1.0,
    )  # fmt: skip
    rows = capacity_report.capacity_rows(sweeps, spec.sweep.start_per_s)
    title = (
        f"Capacity ({profile.name}): highest offered rate with completion p99 <= {spec.sweep.p99_bound_s:g} s, "
        f"median (min-max) of the runs there; * = not confirmed by {spec.sweep.repeats} runs each side"
    )
    console.print(report.simple_table(title, capacity_report.CAPACITY_HEADERS, rows))
    markdown.append(report.markdown(capacity_report.CAPACITY_HEADERS, rows))
    for scenario, group in capacity_report.by_scenario(sweeps).items():
        headers, body = capacity_report.process_rows(group)
        console.print(
            report.simple_table(f"CPU ms per payment at capacity, by process: {scenario}", headers, body)
        )
        markdown.append(
            f"CPU ms per payment at capacity, by process: {scenario}\n\n" + report.markdown(headers, body)
        )


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    profile = _select(PROFILES[args.profile], args)
    # Piped output (CI logs, make bench > file) gets wide tables instead of rich's default 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 170)
    started = time.monotonic()
    # SIGTERM (a CI time-out, `timeout 600 make bench`) ends the run through the finally below, so that
    # the throwaway PostgreSQL cluster (a daemon, not our child) and the state folder go too.
    signal.signal(signal.SIGTERM, _terminated)
    bench = Bench(profile, args, console)
    console.print(f"[bold]payments bench {profile.name}[/bold]: {bench.doc['machine']}")
    out: Path = args.out
    markdown: list[str] = []
    try:
        bench.start()
        if "capacity" in profile.sections and profile.capacity.scenarios:
            t = time.monotonic()
            sweeps = bench.capacity()
            _capacity_out(console, out, profile, bench.doc, sweeps, markdown)
            console.print(f"capacity section: {time.monotonic() - t:.0f}s")
        closed = "closed" in profile.sections and bool(profile.closed)
        if ("scenarios" in profile.sections and profile.scenarios) or closed:
            t = time.monotonic()
            results = bench.scenarios(closed)
            _write(out, profile.name, "scenarios", {**bench.doc, "runs": [r.as_json() for r in results]})
            plots.throughput(results, out / f"{profile.name}-throughput.png")
            plots.psp_latency(results, out / f"{profile.name}-psp-latency.png")
            plots.cdfs(results, out / f"{profile.name}-latency-cdf.png")
            console.print(report.scenario_table(results, f"Scenarios ({profile.name})"))
            markdown.append(report.scenario_markdown(results))
            console.print(f"scenarios section: {time.monotonic() - t:.0f}s")
        if "processor" in profile.sections:
            proc = bench.processor()
            _write(out, profile.name, "processor", {**bench.doc, "runs": [r.as_json() for r in proc]})
            plots.processor(proc, out / f"{profile.name}-processor.png")
            rows = _processor_rows(proc)
            console.print(report.simple_table("Processor only (commands/s)", PROCESSOR_HEADERS, rows))
            markdown.append(report.markdown(PROCESSOR_HEADERS, rows))
        if "gateway" in profile.sections:
            gw = bench.gateway()
            _write(out, profile.name, "gateway", {**bench.doc, "runs": [r.as_json() for r in gw]})
            plots.gateway(gw, out / f"{profile.name}-gateway.png")
            rows = _gateway_rows(gw)
            console.print(report.simple_table("Gateway only (accepted payments/s)", GATEWAY_HEADERS, rows))
            markdown.append(report.markdown(GATEWAY_HEADERS, rows))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        with console.status("stopping everything..."):
            bench.stop()
    (out / f"{profile.name}-tables.md").write_text("\n\n".join(markdown) + "\n", encoding="utf-8")
    console.print(f"results in {out}/{profile.name}-*  ({time.monotonic() - started:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
