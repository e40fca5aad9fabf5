"""Real processes for the psp-caller tests: a PSP simulator and the psp-caller, plus topic readers."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, TopicPartition

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.schemas.commands import RecordPspOutcome, decode_command
from payments.schemas.psp import PspOutcomeStatus, PspRequest, PspRequestKind
from payments.settings import KafkaSettings
from tests.support import Service, service_env

TERMINAL = {PspOutcomeStatus.SUCCEEDED, PspOutcomeStatus.FAILED, PspOutcomeStatus.UNKNOWN}
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: deadlines that never pass during a test


def _alive(service: Service) -> Callable[[], None]:
    def check() -> None:
        if not service.alive():
            raise RuntimeError(f"{service.args[0]} exited; log:\n{service.log_path.read_text()[-3000:]}")

    return check


@dataclass
class Sim:
    service: Service
    url: str

    def faults(self, **config: Any) -> None:
        httpx.post(f"{self.url}/_sim/faults", json=config, timeout=10).raise_for_status()

    def audit(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/_sim/audit", timeout=30)
        resp.raise_for_status()
        movements: list[dict[str, Any]] = resp.json()["movements"]
        return movements

    def key_state(self, key: str) -> int:
        """409 if a request with ``key`` is in flight at the PSP, 404 if nothing is stored under it yet,
        422 once a movement is. Side-effect free: a refund of a charge that does not exist fails its check
        inside the key's claim, before any latency or commit, so it never stores anything."""
        resp = httpx.post(
            f"{self.url}/v1/refunds",
            json={"charge_id": "ch_probe_does_not_exist", "amount": 1},
            headers={"Idempotency-Key": key},
            timeout=10,
        )
        return resp.status_code


def start_sim(tmp_path: Path) -> Sim:
    port = free_port()
    args = ["psp-sim", "--host", "127.0.0.1", "--port", str(port), "--seed", "7"]
    args += ["--latency-median-ms", "0", "--latency-max-ms", "0", "--log-level", "warning"]
    service = Service(args, service_env_min(), tmp_path / "psp-sim.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/healthz", timeout_s=30, still_alive=_alive(service))
    return Sim(service, url)


def service_env_min() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@dataclass
class Caller:
    service: Service
    ops_url: str

    def start(self) -> None:
        self.service.start()
        wait_http_ok(f"{self.ops_url}/readyz", timeout_s=30, still_alive=_alive(self.service))

    def metric(self, name: str) -> float | None:
        try:
            text = httpx.get(f"{self.ops_url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


def make_caller(kafka: KafkaSettings, sim: Sim, tmp_path: Path, **env: str) -> Caller:
    ops_port = free_port()
    group = f"{kafka.topics.psp_requests}.caller"
    defaults = {
        "PAYMENTS_GROUP_ID": group,
        "PAYMENTS_CALL_TIMEOUT_S": "1.0",
        "PAYMENTS_BACKOFF_BASE_S": "0.05",
        "PAYMENTS_BACKOFF_CAP_S": "0.5",
        "PAYMENTS_BREAKER_THRESHOLD": "5",
        "PAYMENTS_BREAKER_COOL_DOWN_S": "0.5",
        "PAYMENTS_SESSION_TIMEOUT_MS": "3000",
        "PAYMENTS_SHUTDOWN_TIMEOUT_S": "3",
    }
    args = ["psp-caller", "--psp-url", sim.url, "--ops-port", str(ops_port)]
    service = Service(args, service_env(kafka, "unused.", **{**defaults, **env}), tmp_path / "psp-caller.log")
    return Caller(service, f"http://127.0.0.1:{ops_port}")


def make_requests(n: int, *, accounts: int, seed_prefix: str) -> list[PspRequest]:
    """Transfers and charges (``tok_ok`` and ``tok_declined``) spread over ``accounts`` accounts."""
    out = []
    now = int(time.time() * 1000)
    for i in range(n):
        kind = PspRequestKind.TRANSFER if i % 2 == 0 else PspRequestKind.CHARGE
        out.append(
            PspRequest(
                op_id=f"{seed_prefix}-op-{i:05d}",
                account_id=f"{seed_prefix}-acct-{i % accounts:03d}",
                kind=kind,
                amount=100 + i,
                currency="EUR",
                payee=f"payee-{i % 7}" if kind is PspRequestKind.TRANSFER else None,
                payment_method=None
                if kind is PspRequestKind.TRANSFER
                else ("tok_declined" if i % 6 == 1 else "tok_ok"),
                issued_at=now,
                deadline_at=FAR_FUTURE_MS,
                seq=i,
            )
        )
    return out


def unique_prefix() -> str:
    return uuid.uuid4().hex[:8]


class OutcomeReader:
    """Follows the commands topic from the start (read_committed), keeping every outcome in topic order."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._topic = kafka.topics.commands
        self._c = Consumer(
            {
                **kafka.consumer_config(),
                "group.id": f"reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        parts = self._c.list_topics(self._topic, timeout=10).topics[self._topic].partitions
        self._c.assign([TopicPartition(self._topic, p, 0) for p in parts])
        # (partition, offset, outcome) in arrival order; per partition that is offset order.
        self.records: list[tuple[int, int, RecordPspOutcome]] = []

    def poll(self) -> None:
        for m in self._c.consume(1000, 0.2):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(str(err))
            value = m.value()
            assert value is not None
            cmd = decode_command(value)
            assert isinstance(cmd, RecordPspOutcome), cmd
            partition, offset = m.partition(), m.offset()
            assert partition is not None
            assert offset is not None
            self.records.append((partition, offset, cmd))

    def outcomes(self) -> list[RecordPspOutcome]:
        return [r[2] for r in self.records]

    def terminal_ops(self) -> set[str]:
        return {o.op_id for o in self.outcomes() if o.status in TERMINAL}

    def until(self, done: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                tail = log.read_text()[-4000:] if log is not None else ""
                raise AssertionError(f"timed out waiting for {what}\n{tail}")
            self.poll()

    def close(self) -> None:
        self._c.close()


def committed_lag(kafka: KafkaSettings, group: str) -> int:
    """Records of the psp-requests topic not yet covered by the group's committed offsets."""
    topic = kafka.topics.psp_requests
    c = Consumer({**kafka.consumer_config(), "group.id": group, "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        committed = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        lag = 0
        for tp in committed:
            _, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        c.close()
