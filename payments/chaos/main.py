"""``payments chaos``: seeded fault-injection runs against the real stack; exit 1 on any violation.

    payments chaos --seed 7 --scenario mixed --duration 20        # one run
    payments chaos --seed 1 --runs 50 --scenario all              # a campaign, scenarios in turn

The broker and redis-server are started once per campaign (and restarted by faults); each run gets its
own topics, Redis contents, keys and services. Reports go to ``--out`` (one JSON per run plus a
summary); the same seed, scenario and duration replay the same workload and fault schedule.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from payments.chaos.plan import SCENARIOS, make_plan
from payments.chaos.run import RunReport, median, run_one
from payments.chaos.settings import ChaosSettings
from payments.chaos.stack import Infra

SCENARIO_ORDER = tuple(SCENARIOS)


def scenario_for(seed: int, scenario: str) -> str:
    """``all`` cycles the scenarios by seed, so any seed range covers each of them in turn."""
    return SCENARIO_ORDER[seed % len(SCENARIO_ORDER)] if scenario == "all" else scenario


def summarize(reports: list[RunReport]) -> dict[str, object]:
    faults: Counter[str] = Counter()
    for r in reports:
        faults.update(r.faults_by_kind)
    conv = [r.convergence_s for r in reports if r.convergence_s is not None]
    return {
        "runs": len(reports),
        "passed": sum(r.passed for r in reports),
        "failed_seeds": [(r.scenario, r.seed) for r in reports if not r.passed],
        "run_errors": sum(r.error is not None for r in reports),
        "violations": sum(r.violations for r in reports),
        "faults_injected": sum(faults.values()),
        "faults_by_kind": dict(sorted(faults.items())),
        "by_scenario": dict(Counter(r.scenario for r in reports)),
        "ops_planned": sum(r.ops_planned for r in reports),
        "ops_acknowledged": sum(r.ops_acknowledged for r in reports),
        "attempts": sum(r.attempts for r in reports),
        "median_convergence_s": median(conv),
        "max_convergence_s": max(conv) if conv else None,
        "median_wall_s": median([r.wall_s for r in reports]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="payments chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="seeds seed, seed+1, ... (default 1)")
    parser.add_argument("--seeds", help="comma-separated seeds instead of --seed/--runs (e.g. 1,2,3,9,10)")
    parser.add_argument(
        "--scenario", default="all", choices=[*SCENARIOS, "all"], help="default: all, in turn"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load under faults per run")
    parser.add_argument("--out", type=Path, default=Path("chaos-results"), help="reports (JSON) go here")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep every run's service logs (failed runs always)"
    )
    parser.add_argument(
        "--plan-only", action="store_true", help="print the plans (workload and faults) and exit"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ChaosSettings()
    seeds = (
        [int(s) for s in args.seeds.split(",")]
        if args.seeds
        else list(range(args.seed, args.seed + args.runs))
    )
    if args.plan_only:
        for seed in seeds:
            plan = make_plan(seed, scenario_for(seed, args.scenario), args.duration)
            print(f"seed {seed} · {plan.scenario} · plan {plan.fingerprint()} · {len(plan.ops)} ops")
            for fault in plan.faults:
                print(f"  {fault.describe()}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    # SIGTERM (a CI time-out, `kill`) must still run the finally below: a broker restarted by a fault was
    # started from a worker thread, so no parent-death signal would stop it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="payments-chaos-"))
    infra = Infra(root, settings.partitions)
    reports: list[RunReport] = []
    started = time.monotonic()
    try:
        infra.start()
        for seed in seeds:
            plan = make_plan(seed, scenario_for(seed, args.scenario), args.duration)
            run_dir = root / f"{plan.scenario}-{seed}"
            report = run_one(infra, plan, settings, run_dir)
            reports.append(report)
            print(report.render(), flush=True)
            (args.out / f"run-{plan.scenario}-{seed}.json").write_text(json.dumps(asdict(report), indent=1))
            # The campaign's root is removed at the end, so logs worth keeping are copied out of it.
            if (not report.passed or args.keep_logs) and (run_dir / "logs").is_dir():
                kept = args.out / f"logs-{plan.scenario}-{seed}"
                shutil.copytree(run_dir / "logs", kept, dirs_exist_ok=True)
                print(f"  logs kept in {kept}", flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        infra.stop()
        shutil.rmtree(root, ignore_errors=True)
    summary = summarize(reports) | {
        "wall_s": round(time.monotonic() - started, 1),
        "duration_s": args.duration,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0 if summary["passed"] == len(reports) else 1
