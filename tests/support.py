"""Helpers for integration tests: real subprocesses and read_committed topic readers. No mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from payments.schemas.commands import AnyCommand, encode_command
from payments.settings import KafkaSettings, kafka_env


def service_env(kafka: KafkaSettings, group_prefix: str, **extra: str) -> dict[str, str]:
    """Environment for a service subprocess pointed at this test's broker and topics."""
    env = {
        **os.environ,
        **kafka_env(kafka),
        "PAYMENTS_RUNTIME__GROUP_ID": f"{group_prefix}processor",
        "PAYMENTS_RUNTIME__SESSION_TIMEOUT_MS": "6000",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


class Service:
    """A service as a real child process in its own process group, with its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "payments.cli", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def processor(kafka: KafkaSettings, group_prefix: str, instance: int, log_dir: Path, **extra: str) -> Service:
    return Service(
        ["processor", "--instance", str(instance)],
        service_env(kafka, group_prefix, **extra),
        log_dir / f"processor-{instance}.log",
    )


def producer(kafka: KafkaSettings) -> Producer:
    return Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all", "linger.ms": 5})


def send(prod: Producer, topic: str, cmd: AnyCommand) -> None:
    while True:
        try:
            prod.produce(topic, key=cmd.account_id.encode(), value=encode_command(cmd))
            prod.poll(0)
            return
        except BufferError:
            prod.poll(0.1)


def read_all(
    kafka: KafkaSettings,
    topic: str,
    *,
    idle_s: float = 2.0,
    expect: int | None = None,
    timeout_s: float = 120,
) -> list[bytes]:
    """Every committed record of ``topic`` (read_committed), in per-partition order.

    Reads until ``expect`` records were seen (then until idle, to catch any excess) or, without
    ``expect``, until nothing new arrived for ``idle_s``.
    """
    c = Consumer(
        {
            **kafka.consumer_config(),
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    meta = c.list_topics(topic, timeout=10)
    parts = list(meta.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = c.consume(1000, 0.2)
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(str(err))
                value = m.value()
                assert value is not None
                out.append(value)
            if msgs:
                last_new = time.monotonic()
            enough = expect is None or len(out) >= expect
            if enough and time.monotonic() - last_new > idle_s:
                break
        return out
    finally:
        c.close()
