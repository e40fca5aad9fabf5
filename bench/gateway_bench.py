"""Gateway-only benchmark: accepted payments per second and accept latency of our gateway (auth,
membership pre-check, idempotency claim, durable publish with acks=all, stored answer) next to a bare
FastAPI POST endpoint (``bench.bare``), same load, same run.

The gateway under test is an extra gateway process publishing to a commands topic nobody consumes, so
that neither the processor nor anything downstream competes with it for the 2 cores. With
``--compare-tree DIR`` a third contender runs the gateway from another source tree (e.g. the code before
an optimisation, ``git archive HEAD payments | tar -x -C DIR``), for before/after ratios measured side
by side.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cpu
from bench.config import Accounts, GatewaySpec, Load, Mode
from bench.loadgen import Counters, LoadResult, Sample, run_load
from bench.measure import is_accepted
from bench.ours import OurStack
from bench.procs import launch, python_module, wait_ready
from bench.stats import LatencySummary, summarize
from bench.workload import Workload
from bench.world import World
from payments.devstack.ports import free_port
from payments.devstack.process import ChildProcess
from payments.devstack.topics import create_topics
from payments.settings import KafkaSettings

GATEWAY_ONLY_TOPIC = "bench.gateway-only.commands"
Runner = Callable[[str, Callable[[float, Counters], None] | None], LoadResult]


@dataclass(frozen=True)
class GatewayResult:
    contender: str
    seconds: float
    accepted: int
    accepted_per_s: float
    errors: int
    latency: LatencySummary
    cpu_us_per_accept: float  # of the contender's own process, over whole runs

    def as_json(self) -> dict[str, Any]:
        return {"contender": self.contender, "seconds": self.seconds, "accepted": self.accepted,
                "accepted_per_s": self.accepted_per_s, "errors": self.errors,
                "accept_latency_s": self.latency.as_json(),
                "cpu_us_per_accept": None if math.isnan(self.cpu_us_per_accept) else round(self.cpu_us_per_accept, 1)}  # fmt: skip


@dataclass(frozen=True)
class _Contender:
    url: str
    pid: int


def _start_tree_gateway(stack: OurStack, tree: Path, env: dict[str, str]) -> ChildProcess:
    port = free_port()
    # cwd and PYTHONPATH put that tree's ``payments`` ahead of the installed one.
    argv = python_module(
        "payments.cli", "gateway", "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"
    )
    child = ChildProcess(
        argv, stack.log_dir / "gateway-tree.log", cwd=tree, env={**stack.env, **env, "PYTHONPATH": str(tree)}
    )
    child.start()
    wait_ready(f"http://127.0.0.1:{port}/readyz", child, "gateway from the other tree")
    return child


def _start_contenders(
    stack: OurStack, compare_tree: Path | None
) -> tuple[dict[str, _Contender], list[ChildProcess]]:
    kafka = KafkaSettings(bootstrap=stack.kafka.bootstrap, partitions=stack.kafka.partitions)
    only = kafka.model_copy(
        update={"topics": kafka.topics.model_copy(update={"commands": GATEWAY_ONLY_TOPIC})}
    )
    create_topics(kafka.bootstrap, only)
    env = {"PAYMENTS_KAFKA__TOPICS__COMMANDS": GATEWAY_ONLY_TOPIC}
    contenders: dict[str, _Contender] = {}
    # The gateway as deployed (one worker per core) and with one worker: what the workers add, same run.
    for name, child_name, workers in (
        ("gateway", "gateway-only", {}),
        ("gateway, 1 worker", "gateway-only-1w", {"PAYMENTS_WORKERS": "1"}),
    ):
        url = stack.start_gateway(child_name, free_port(), {**env, **workers})
        pid = stack.children[child_name].pid
        assert pid is not None
        contenders[name] = _Contender(url, pid)
    children: list[ChildProcess] = []
    if compare_tree is not None:
        child = _start_tree_gateway(stack, compare_tree, env)
        children.append(child)
        assert child.pid is not None
        contenders["gateway (other tree)"] = _Contender(
            f"http://127.0.0.1:{child.argv[child.argv.index('--port') + 1]}", child.pid
        )
    # "bare FastAPI" (one process) is the floor ``÷ bare`` divides by; the same with one worker per core
    # shows what workers give an app that does nothing.
    cores = os.cpu_count() or 1
    for name, n in (("bare FastAPI", 1), (f"bare FastAPI, {cores} workers", cores)):
        port = free_port()
        argv = python_module("bench.bare", "--port", str(port), "--workers", str(n))
        bare = launch(argv, stack.log_dir / f"bare-{n}.log", {**os.environ})
        children.append(bare)
        wait_ready(f"http://127.0.0.1:{port}/readyz", bare, "bare FastAPI app")
        assert bare.pid is not None
        contenders[name] = _Contender(f"http://127.0.0.1:{port}", bare.pid)
    return contenders, children


def run_gateway_bench(
    stack: OurStack,
    world: World,
    spec: GatewaySpec,
    *,
    seed: int,
    request_timeout_s: float,
    run: Callable[[Callable[[], Any]], LoadResult],
    progress: Callable[[str, float], Callable[[float, Counters], None]],
    compare_tree: Path | None = None,
) -> list[GatewayResult]:
    contenders, children = _start_contenders(stack, compare_tree)
    load = Load(Mode.CLOSED, spec.duration_s, concurrency=spec.concurrency)
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    seconds: dict[str, float] = dict.fromkeys(contenders, 0.0)
    cpu_s: dict[str, float] = dict.fromkeys(contenders, 0.0)
    accepted_all: dict[str, int] = dict.fromkeys(contenders, 0)
    try:
        for round_ in range(spec.rounds):
            for name, contender in contenders.items():
                workload = Workload(
                    world,
                    Accounts.UNIFORM,
                    run_tag=f"gw-{secrets.token_hex(4)}",
                    seed=seed + round_,
                    zipf_s=1.0,
                )
                tick = progress(f"gateway · {name} · {round_ + 1}/{spec.rounds}", spec.duration_s)
                before = cpu.tree_seconds(contender.pid)
                result = run(
                    lambda url=contender.url, workload=workload, tick=tick: run_load(  # type: ignore[misc]
                        url, workload.call, load, request_timeout_s=request_timeout_s, on_tick=tick
                    )
                )
                cpu_s[name] += cpu.tree_seconds(contender.pid) - before
                accepted_all[name] += sum(1 for s in result.samples if is_accepted(s.status))
                # Steady state only: answers inside [t0 + warmup, t_end).
                start = result.t0 + load.warmup_s
                samples[name] += [s for s in result.samples if start <= s.due < result.t_end]
                seconds[name] += result.t_end - start
    finally:
        stack.stop_child("gateway-only")
        stack.stop_child("gateway-only-1w")
        for child in children:
            child.stop(timeout_s=10)
    out = []
    for name, got in samples.items():
        ok = [s for s in got if is_accepted(s.status)]
        latency = summarize([s.answered - s.due for s in ok], missing=len(got) - len(ok))
        cpu_us = 1e6 * cpu_s[name] / accepted_all[name] if accepted_all[name] else math.nan
        out.append(
            GatewayResult(
                name, seconds[name], len(ok), len(ok) / seconds[name], len(got) - len(ok), latency, cpu_us
            )
        )
    return out
