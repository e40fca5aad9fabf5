"""Our system on this machine for the benchmark: redis-server, one Kafka broker and every service (PSP
simulator without webhooks, one processor, the psp-caller, the projector and the gateway), on 127.0.0.1,
in a temporary state folder, stopped in reverse order by :meth:`OurStack.stop`.

Built from the ``payments.devstack`` blocks rather than ``payments up``: the benchmark needs its own
ports, no demo seed, and the PSP simulator's webhooks off (the psp-caller already feeds every outcome
back; webhooks would double the work of ours and have no counterpart in the baseline).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import redis
from confluent_kafka import Producer

from bench.procs import launch, payments_cli, post_json, wait_ready
from bench.world import CURRENCY, World
from payments.devstack.kafka import KafkaBroker
from payments.devstack.ports import free_port
from payments.devstack.process import ChildProcess
from payments.devstack.redis import RedisServer, ensure_redis_installed
from payments.devstack.topics import create_topics
from payments.gateway.auth import Principal, Role, apikey_redis_key
from payments.readmodel.layout import account_key
from payments.schemas.commands import AdjustBalance, AnyCommand, OpenAccount, encode_command
from payments.settings import KafkaSettings

Progress = Callable[[int, int], None]  # (done, total)


class OurStack:
    def __init__(self, state_dir: Path, *, partitions: int, psp_in_flight: int) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self._partitions = partitions
        self._psp_in_flight = psp_in_flight
        self.children: dict[str, ChildProcess] = {}
        self.broker: KafkaBroker | None = None
        self.redis: RedisServer | None = None
        self.kafka = KafkaSettings()
        self.base_url = ""
        self.psp_url = ""
        self.env: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        ensure_redis_installed()
        self.redis = RedisServer(data_dir=self.state_dir / "redis")
        self.redis.start()
        self.broker = KafkaBroker(self.state_dir / "kafka", partitions=self._partitions)
        self.broker.start()
        self.kafka = KafkaSettings(bootstrap=self.broker.bootstrap, partitions=self._partitions)
        create_topics(self.kafka.bootstrap, self.kafka)
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PAYMENTS_ENV": "development",  # no production rate limit on the load generator
            "PAYMENTS_KAFKA__BOOTSTRAP": self.kafka.bootstrap,
            "PAYMENTS_KAFKA__PARTITIONS": str(self._partitions),
            "PAYMENTS_REDIS__URL": self.redis.url,
        }
        psp_port, gw_port = free_port(), free_port()
        self.psp_url = f"http://127.0.0.1:{psp_port}"
        self.base_url = f"http://127.0.0.1:{gw_port}"
        self._start(
            "psp-sim",
            ["psp-sim", "--host", "127.0.0.1", "--port", str(psp_port), "--seed", "7",
             "--latency-median-ms", "0", "--latency-max-ms", "0", "--log-level", "warning"],
            f"{self.psp_url}/readyz",
        )  # fmt: skip
        ops = {name: free_port() for name in ("processor-0", "psp-caller", "projector")}
        self._start(
            "processor-0", ["processor", "--instance", "0", "--ops-port", str(ops["processor-0"])], None
        )
        self._start(
            "psp-caller",
            ["psp-caller", "--psp-url", self.psp_url, "--ops-port", str(ops["psp-caller"])],
            None,
            {"PAYMENTS_MAX_IN_FLIGHT": str(self._psp_in_flight)},
        )
        self._start("projector", ["projector", "--ops-port", str(ops["projector"])], None)
        self.start_gateway("gateway", gw_port)
        for name, port in ops.items():
            wait_ready(f"http://127.0.0.1:{port}/readyz", self.children[name], name)

    def start_gateway(self, name: str, port: int, extra_env: dict[str, str] | None = None) -> str:
        """A gateway process (the benchmark's own, or another for the gateway-only benchmark)."""
        url = f"http://127.0.0.1:{port}"
        self._start(name, ["gateway", "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"],
                    f"{url}/readyz", extra_env)  # fmt: skip
        return url

    def _start(
        self, name: str, args: list[str], ready_url: str | None, extra_env: dict[str, str] | None = None
    ) -> None:
        child = launch(payments_cli(*args), self.log_dir / f"{name}.log", {**self.env, **(extra_env or {})})
        self.children[name] = child
        if ready_url is not None:
            wait_ready(ready_url, child, name)

    def stop_child(self, name: str) -> None:
        child = self.children.pop(name, None)
        if child is not None:
            child.stop(timeout_s=15)

    def stop(self) -> None:
        for name in reversed(list(self.children)):
            self.stop_child(name)
        if self.broker is not None:
            self.broker.stop()
        if self.redis is not None:
            self.redis.stop()

    def dead_children(self) -> list[str]:
        return [name for name, child in self.children.items() if not child.alive()]

    def cpu_groups(self) -> dict[str, list[int]]:
        """Processes of the system, by part, for CPU accounting (``bench.cpu``)."""
        groups = {
            name: [c.pid] for name, c in self.children.items() if c.pid is not None and name != "gateway-only"
        }
        if self.broker is not None and self.broker.pid is not None:
            groups["kafka"] = [self.broker.pid]
        if self.redis is not None and self.redis.pid is not None:
            groups["redis"] = [self.redis.pid]
        return groups

    # -- data --------------------------------------------------------------------------------------------

    def seed(self, world: World, progress: Progress | None = None, timeout_s: float = 300) -> None:
        """API keys into Redis; accounts opened and funded through the command log, the way an admin bulk
        load would go (the gateway would add nothing but HTTP overhead); returns once the read model shows
        every account funded."""
        assert self.redis is not None
        r = redis.Redis.from_url(self.redis.url)
        try:
            pipe = r.pipeline(transaction=False)
            for user, key in world.keys.items():
                pipe.set(apikey_redis_key(key), Principal(user_id=user, role=Role.MEMBER).model_dump_json())
            pipe.execute()
            accounts = world.all_accounts()
            producer = Producer(
                {**self.kafka.client_config(), "enable.idempotence": True, "acks": "all", "linger.ms": 20}
            )
            for account, funding, members in accounts:
                self._produce(producer, OpenAccount(command_id=f"open-{account}", account_id=account, issued_at=1,
                                                    currency=CURRENCY, members=members, principal="admin"))  # fmt: skip
                self._produce(producer, AdjustBalance(command_id=f"fund-{account}", account_id=account, issued_at=2,
                                                      amount=funding, currency=CURRENCY, reason="bench funding",
                                                      principal="admin"))  # fmt: skip
            producer.flush(60)
            self._wait_funded(r, [a for a, _, _ in accounts], progress, timeout_s)
        finally:
            r.close()

    def _produce(self, producer: Producer, cmd: AnyCommand) -> None:
        while True:
            try:
                producer.produce(
                    self.kafka.topics.commands, key=cmd.account_id.encode(), value=encode_command(cmd)
                )
                producer.poll(0)
                return
            except BufferError:
                producer.poll(0.05)

    def _wait_funded(
        self, r: redis.Redis, accounts: list[str], progress: Progress | None, timeout_s: float
    ) -> None:
        # Each account's version (seq) is 1 after opening and 2 after its funding adjustment.
        pending = accounts
        deadline = time.monotonic() + timeout_s
        while pending:
            still: list[str] = []
            for start in range(0, len(pending), 10_000):
                chunk = pending[start : start + 10_000]
                pipe = r.pipeline(transaction=False)
                for account in chunk:
                    pipe.hget(account_key(account), "seq")
                still += [
                    a for a, seq in zip(chunk, pipe.execute(), strict=True) if seq is None or int(seq) < 2
                ]
            pending = still
            if progress is not None:
                progress(len(accounts) - len(pending), len(accounts))
            if pending and time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(pending)} accounts not funded in the read model after {timeout_s:.0f}s"
                )
            if pending:
                time.sleep(0.5)

    # -- knobs -------------------------------------------------------------------------------------------

    def set_psp_latency(self, ms: int) -> None:
        post_json(f"{self.psp_url}/_sim/reset", {})
        post_json(f"{self.psp_url}/_sim/faults", {"latency_ms": {"median": ms, "max": ms}})
