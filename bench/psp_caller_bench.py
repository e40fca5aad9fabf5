"""psp-caller-only benchmark: PSP calls per second and CPU per call of the real ``payments psp-caller``
against the real PSP simulator on a real broker, for this tree and (``--compare-tree``) another one, side by
side in one run.

Each round writes ``requests`` PSP requests (transfers and charges, unique op ids) to a fresh psp-requests
topic and starts one psp-caller (``max_in_flight`` calls at once) in a group of its own. Progress is read from
outside, from the group's committed offsets (the psp-caller commits a request only once its outcome is durable
on the commands topic), every 50 ms; rate and CPU are measured from the first commit to the last, so start-up
and partition assignment count in neither. CPU is read from ``/proc`` for the psp-caller and the simulator
separately, as µs per completed call.

    python -m bench.psp_caller_bench --compare-tree /tmp/pspc-old [--rounds 2] [--requests 15000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from bench import cpu
from bench.procs import launch, payments_cli, post_json, wait_ready
from payments.devstack.kafka import KafkaBroker
from payments.devstack.ports import free_port
from payments.devstack.process import ChildProcess
from payments.devstack.topics import create_topics
from payments.schemas.psp import PspRequest, PspRequestKind
from payments.settings import KafkaSettings, TopicNames

FAR_FUTURE_MS = 4_102_444_800_000  # deadlines that never pass during a run


@dataclass(frozen=True)
class CallerResult:
    tree: str  # "this" | "other"
    latency_ms: int
    round: int
    calls: int
    seconds: float
    finished: bool
    calls_per_s: float
    caller_cpu_us_per_call: float
    sim_cpu_us_per_call: float


def requests(n: int, tag: str, seed: int) -> list[PspRequest]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        transfer = i % 2 == 0
        out.append(
            PspRequest(
                op_id=f"bench-{tag}-{i:07d}", account_id=f"acct-{rng.randrange(1000):04d}",
                kind=PspRequestKind.TRANSFER if transfer else PspRequestKind.CHARGE,
                amount=rng.randint(1, 5000), currency="EUR",
                payee=f"shop-{i % 97}" if transfer else None,
                payment_method=None if transfer else "tok_ok",
                issued_at=1, deadline_at=FAR_FUTURE_MS, seq=i,
            )
        )  # fmt: skip
    return out


def produce(kafka: KafkaSettings, topic: str, reqs: list[PspRequest]) -> None:
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all", "linger.ms": 20})
    for r in reqs:
        while True:
            try:
                producer.produce(topic, key=r.account_id.encode(), value=r.model_dump_json().encode())
                producer.poll(0)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("could not write the PSP requests")


def measure(
    bootstrap: str, group: str, topic: str, partitions: int, total: int, timeout_s: float, pids: list[int]
) -> tuple[float, int, bool, list[float]]:
    """(seconds, calls, finished, CPU seconds of each pid) from the first committed progress to the last."""
    observer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        first: tuple[float, int, list[float]] | None = None
        last: tuple[float, int, list[float]] = (time.monotonic(), 0, [0.0] * len(pids))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = sum(max(tp.offset, 0) for tp in observer.committed(parts, timeout=10))
            sample = (time.monotonic(), done, [cpu.cpu_seconds([p]) for p in pids])
            if done > 0 and first is None:
                first = sample
            last = sample
            if done >= total:
                break
            time.sleep(0.05)
        if first is None:
            return 0.0, 0, False, [0.0] * len(pids)
        used = [b - a for a, b in zip(first[2], last[2], strict=True)]
        return last[0] - first[0], last[1] - first[1], last[1] >= total, used
    finally:
        observer.close()


def start_caller(
    tree: Path | None, env: dict[str, str], log: Path, topics: TopicNames, group: str, in_flight: int
) -> tuple[ChildProcess, str]:
    ops = free_port()
    env = {
        **env,
        "PAYMENTS_KAFKA__TOPICS__PSP_REQUESTS": topics.psp_requests,
        "PAYMENTS_KAFKA__TOPICS__COMMANDS": topics.commands,
        "PAYMENTS_GROUP_ID": group,
        "PAYMENTS_MAX_IN_FLIGHT": str(in_flight),
        "PAYMENTS_LOG_LEVEL": "WARNING",
    }
    argv = payments_cli("psp-caller", "--ops-port", str(ops))
    if tree is None:
        child = launch(argv, log, env)
    else:
        # cwd and PYTHONPATH put that tree's ``payments`` ahead of the installed one.
        child = ChildProcess(argv, log, cwd=tree, env={**env, "PYTHONPATH": str(tree)})
        child.start()
    return child, f"http://127.0.0.1:{ops}/readyz"


def run(args: argparse.Namespace) -> list[CallerResult]:
    state = Path(tempfile.mkdtemp(prefix="pspc-bench-"))
    (state / "logs").mkdir()
    broker = KafkaBroker(state / "kafka", partitions=args.partitions)
    broker.start()
    children: list[ChildProcess] = []
    results: list[CallerResult] = []
    try:
        kafka = KafkaSettings(bootstrap=broker.bootstrap, partitions=args.partitions)
        psp_port = free_port()
        psp_url = f"http://127.0.0.1:{psp_port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PAYMENTS_KAFKA__BOOTSTRAP": kafka.bootstrap,
               "PAYMENTS_KAFKA__PARTITIONS": str(args.partitions), "PAYMENTS_PSP_URL": psp_url}  # fmt: skip
        sim = launch(
            payments_cli("psp-sim", "--host", "127.0.0.1", "--port", str(psp_port), "--seed", "7",
                         "--latency-median-ms", "0", "--latency-max-ms", "0", "--log-level", "warning"),
            state / "logs" / "psp-sim.log", env,
        )  # fmt: skip
        children.append(sim)
        wait_ready(f"{psp_url}/readyz", sim, "psp-sim")
        assert sim.pid is not None
        trees: list[tuple[str, Path | None]] = [("this", None)]
        if args.compare_tree is not None:
            trees.append(("other", Path(args.compare_tree)))
        for latency in args.latencies:
            n = args.requests if latency == 0 else args.requests_slow
            for rnd in range(args.first_round, args.first_round + args.rounds):
                # Alternate which tree goes first, so neither always meets a warmer broker.
                order = trees if rnd % 2 == 0 else list(reversed(trees))
                for name, tree in order:
                    post_json(f"{psp_url}/_sim/reset", {})  # an empty store: both trees see the same PSP
                    post_json(f"{psp_url}/_sim/faults", {"latency_ms": {"median": latency, "max": latency}})
                    tag = secrets.token_hex(3)
                    topics = TopicNames(
                        **{f: f"pspc.{tag}.{v}" for f, v in TopicNames().model_dump().items()}
                    )
                    create_topics(kafka.bootstrap, kafka.model_copy(update={"topics": topics}))
                    produce(kafka, topics.psp_requests, requests(n, tag, rnd))
                    group = f"pspc-bench-{tag}"
                    log = state / "logs" / f"psp-caller-{name}-{latency}-{rnd}.log"
                    child, ready = start_caller(tree, env, log, topics, group, args.in_flight)
                    try:
                        wait_ready(ready, child, f"psp-caller ({name})")
                        assert child.pid is not None
                        secs, calls, finished, used = measure(
                            kafka.bootstrap, group, topics.psp_requests, args.partitions, n,
                            args.timeout_s, [child.pid, sim.pid],
                        )  # fmt: skip
                    finally:
                        child.stop(timeout_s=15)
                    r = CallerResult(
                        tree=name, latency_ms=latency, round=rnd, calls=calls, seconds=round(secs, 2),
                        finished=finished, calls_per_s=round(calls / secs, 1) if secs > 0 else 0.0,
                        caller_cpu_us_per_call=round(1e6 * used[0] / calls, 1) if calls else math.nan,
                        sim_cpu_us_per_call=round(1e6 * used[1] / calls, 1) if calls else math.nan,
                    )  # fmt: skip
                    results.append(r)
                    print(json.dumps(asdict(r)), flush=True)
    finally:
        for child in reversed(children):
            child.stop(timeout_s=15)
        broker.stop()
    return results


def table(results: list[CallerResult]) -> str:
    lines = [
        "| tree | PSP latency | round | calls/s | psp-caller CPU µs/call | simulator CPU µs/call | finished |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.tree} | {r.latency_ms / 1000:g} s | {r.round + 1} | {r.calls_per_s:,.0f} | "
            f"{r.caller_cpu_us_per_call:,.0f} | {r.sim_cpu_us_per_call:,.0f} | {r.finished} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.psp_caller_bench", description=__doc__)
    parser.add_argument("--compare-tree", help="another source tree whose psp-caller runs too")
    parser.add_argument("--latencies", type=int, nargs="+", default=[0, 1500], help="PSP latency, ms")
    parser.add_argument("--requests", type=int, default=15_000, help="requests per round at latency 0")
    parser.add_argument("--requests-slow", type=int, default=6_000, help="requests per round otherwise")
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--first-round", type=int, default=0, help="an odd number starts with the other tree")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="per round")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(args)
    print(table(results))
    if args.out:
        Path(args.out).write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
