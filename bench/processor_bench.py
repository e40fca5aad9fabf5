"""Processor-only benchmark: commands per second through the exactly-once runtime (the real
``payments processor``, real ``decide()``) next to raw confluent-kafka consume+produce of the very same
records (``bench.rawpipe``), in the same run, so the runtime's overhead is a ratio.

Each workload is written once to a fresh commands topic; every contender then consumes all of it from
the start in a consumer group of its own. Progress is read from outside, from the group's committed
offsets (the runtime commits them inside its transactions), every 50 ms; the rate is measured from the
first commit to the last, so process start-up and partition assignment are not counted.
"""

from __future__ import annotations

import math
import os
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench import cpu
from bench.config import ProcessorSpec
from bench.ours import OurStack
from bench.procs import launch, payments_cli, python_module
from payments.devstack.process import ChildProcess
from payments.devstack.topics import create_topics
from payments.schemas.commands import AdjustBalance, AnyCommand, OpenAccount, RequestPayment, encode_command
from payments.settings import KafkaSettings, TopicNames

CONTENDERS = ("runtime", "raw-eos", "raw")
Tick = Callable[[str, int, int], None]  # (label, committed, total)


@dataclass(frozen=True)
class ProcessorResult:
    workload: str  # hot | uniform
    contender: str  # runtime | raw-eos | raw
    records: int
    seconds: float
    per_s: float
    finished: bool
    cpu_us_per_record: float  # the contender process's CPU over the same span: steadier than per_s

    def as_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "contender": self.contender, "records": self.records,
                "seconds": self.seconds, "records_per_s": self.per_s, "finished": self.finished,
                "cpu_us_per_record": None if math.isnan(self.cpu_us_per_record) else round(self.cpu_us_per_record, 1)}  # fmt: skip


def commands(workload: str, spec: ProcessorSpec, seed: int) -> list[AnyCommand]:
    rng = random.Random(seed)
    accounts = 1 if workload == "hot" else spec.uniform_accounts
    payments = spec.hot_payments if workload == "hot" else spec.uniform_payments
    out: list[AnyCommand] = []
    for a in range(accounts):
        acc = f"acct_proc_{a:06d}"
        out.append(OpenAccount(command_id=f"open-{acc}", account_id=acc, issued_at=1, currency="EUR",
                               members=("alice", "bob"), principal="admin"))  # fmt: skip
        out.append(AdjustBalance(command_id=f"fund-{acc}", account_id=acc, issued_at=2, amount=10**12,
                                 currency="EUR", reason="bench funding", principal="admin"))  # fmt: skip
    for i in range(payments):
        acc = f"acct_proc_{rng.randrange(accounts):06d}"
        out.append(RequestPayment(command_id=f"pay_proc_{i:08d}", account_id=acc, issued_at=3 + i,
                                  amount=rng.randint(1, 5_000), currency="EUR", payee=f"shop_{i % 97}",
                                  principal=rng.choice(("alice", "bob")), fingerprint=f"fp-{i:020d}"))  # fmt: skip
    return out


def _produce_all(kafka: KafkaSettings, topic: str, cmds: list[AnyCommand]) -> None:
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all", "linger.ms": 20})
    for cmd in cmds:
        while True:
            try:
                producer.produce(topic, key=cmd.account_id.encode(), value=encode_command(cmd))
                producer.poll(0)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("could not write the processor benchmark's commands")


def _committed(observer: Consumer, parts: list[TopicPartition]) -> int:
    return sum(max(tp.offset, 0) for tp in observer.committed(parts, timeout=10))


@dataclass(frozen=True)
class _Span:
    seconds: float
    records: int
    cpu_s: float
    finished: bool


def _measure(
    bootstrap: str,
    group: str,
    topic: str,
    partitions: int,
    total: int,
    timeout_s: float,
    tick: Callable[[int], None],
    pid: int,
) -> _Span:
    """From the first committed progress to all ``total`` committed: wall time, records and the CPU time
    of process ``pid`` (so that start-up and partition assignment count in none of them)."""
    observer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + timeout_s
        last = (time.monotonic(), 0, 0.0)
        while time.monotonic() < deadline:
            done = _committed(observer, parts)
            now, used = time.monotonic(), cpu.cpu_seconds([pid])
            tick(done)
            if done > 0 and first is None:
                first = (now, done, used)
            last = (now, done, used)
            if done >= total:
                break
            time.sleep(0.05)
        if first is None:
            return _Span(0.0, 0, 0.0, False)
        return _Span(last[0] - first[0], last[1] - first[1], last[2] - first[2], last[1] >= total)
    finally:
        observer.close()


OTHER_TREE = "runtime (other tree)"


def _start(
    contender: str, stack: OurStack, topics: TopicNames, group: str, tree: Path | None
) -> ChildProcess:
    log = stack.log_dir / f"processor-bench-{group}.log"
    if contender in ("runtime", OTHER_TREE):
        env = {
            **stack.env,
            "PAYMENTS_KAFKA__TOPICS__COMMANDS": topics.commands,
            "PAYMENTS_KAFKA__TOPICS__STATE": topics.state,
            "PAYMENTS_KAFKA__TOPICS__RESULTS": topics.results,
            "PAYMENTS_KAFKA__TOPICS__LEDGER": topics.ledger,
            "PAYMENTS_KAFKA__TOPICS__PSP_REQUESTS": topics.psp_requests,
            "PAYMENTS_RUNTIME__GROUP_ID": group,
        }
        if contender == OTHER_TREE and tree is not None:
            # cwd and PYTHONPATH put that tree's ``payments`` ahead of the installed one.
            child = ChildProcess(
                payments_cli("processor", "--instance", "0"),
                log,
                cwd=tree,
                env={**env, "PYTHONPATH": str(tree)},
            )
            child.start()
            return child
        return launch(payments_cli("processor", "--instance", "0"), log, env)
    mode = "eos" if contender == "raw-eos" else "raw"
    argv = python_module("bench.rawpipe", "--bootstrap", stack.kafka.bootstrap, "--input", topics.commands,
                         "--output", topics.results, "--group", group, "--mode", mode)  # fmt: skip
    return launch(argv, log, {**os.environ, "PYTHONUNBUFFERED": "1"})


def run_processor_bench(
    stack: OurStack, spec: ProcessorSpec, seed: int, tick: Tick, *, compare_tree: Path | None = None
) -> list[ProcessorResult]:
    """With ``compare_tree``, the runtime of that source tree runs too ("runtime (other tree)")."""
    contenders = CONTENDERS if compare_tree is None else (CONTENDERS[0], OTHER_TREE, *CONTENDERS[1:])
    results: list[ProcessorResult] = []
    for workload in ("hot", "uniform"):
        tag = secrets.token_hex(3)
        prefix = f"bench.proc.{workload}.{tag}."
        topics = TopicNames(**{f: prefix + v for f, v in TopicNames().model_dump().items()})
        kafka = KafkaSettings(
            bootstrap=stack.kafka.bootstrap, partitions=stack.kafka.partitions, topics=topics
        )
        create_topics(kafka.bootstrap, kafka)
        cmds = commands(workload, spec, seed)
        _produce_all(kafka, topics.commands, cmds)
        for contender in contenders:
            n = len(results)
            group = f"bench-proc-{workload}-{contender.split()[0]}-{n}-{tag}"
            # Same input, outputs and changelog of its own: a runtime restoring another's changelog would
            # find every command already applied and only dedupe.
            own = TopicNames(**{f: f"{prefix}{n}.{v}" for f, v in TopicNames().model_dump().items()})
            own = own.model_copy(update={"commands": topics.commands})
            create_topics(kafka.bootstrap, kafka.model_copy(update={"topics": own}))
            child = _start(contender, stack, own, group, compare_tree)
            label, total = f"{workload} · {contender}", len(cmds)

            def progress(done: int, label: str = label, total: int = total) -> None:
                tick(label, done, total)

            assert child.pid is not None
            try:
                span = _measure(
                    kafka.bootstrap,
                    group,
                    topics.commands,
                    kafka.partitions,
                    total,
                    spec.timeout_s,
                    progress,
                    child.pid,
                )
            finally:
                child.stop(timeout_s=15)
            per_s = span.records / span.seconds if span.seconds > 0 else 0.0
            cpu_us = 1e6 * span.cpu_s / span.records if span.records else math.nan
            results.append(
                ProcessorResult(workload, contender, total, span.seconds, per_s, span.finished, cpu_us)
            )
    return results
