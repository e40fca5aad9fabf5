"""The real stack a chaos run hits, and the levers the fault injector pulls.

The broker and redis-server belong to the campaign (started once, restarted by faults); every run gets
topics of its own, a flushed Redis, fresh API keys and its own service processes. Everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from payments.chaos.settings import ChaosSettings
from payments.devstack.kafka import KafkaBroker
from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.devstack.process import ChildProcess
from payments.devstack.redis import RedisServer, ensure_redis_installed
from payments.devstack.topics import create_topics, delete_topics
from payments.gateway.auth import KEY_PREFIX, Principal, Role, apikey_redis_key
from payments.settings import KafkaSettings, TopicNames, kafka_env

# Reconciler timings for runs measured in seconds (the production defaults act after minutes).
RECONCILER_ENV = {
    "PAYMENTS_CHECK_AFTER_MS": "4000",
    "PAYMENTS_UNKNOWN_CHECK_AFTER_MS": "500",
    "PAYMENTS_BACKOFF_BASE_MS": "500",
    "PAYMENTS_BACKOFF_CAP_MS": "3000",
    "PAYMENTS_SETTLEMENT_INTERVAL_S": "5",
    "PAYMENTS_SETTLEMENT_GRACE_MS": "15000",
}


class Infra:
    """The campaign's broker and redis-server, with data dirs under ``root`` so restarts keep them."""

    def __init__(self, root: Path, partitions: int) -> None:
        ensure_redis_installed()
        self.broker = KafkaBroker(root / "kafka", partitions=partitions)
        self.redis = RedisServer(data_dir=root / "redis")

    def start(self) -> None:
        self.redis.start()
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop()
        self.redis.stop()


@dataclass
class RunStack:
    """One run's services on the campaign's infrastructure."""

    infra: Infra
    run_dir: Path
    settings: ChaosSettings
    seed: int
    prefix: str = field(default_factory=lambda: f"c{uuid.uuid4().hex[:8]}.")
    services: dict[str, ChildProcess] = field(default_factory=dict)
    ops_ports: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # user -> API key
    roles: dict[str, str] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # services a fault keeps down on purpose
    restarts: list[str] = field(default_factory=list)  # what the supervisor restarted, and why
    gateway_port: int = field(default_factory=free_port)
    psp_port: int = field(default_factory=free_port)

    @property
    def kafka(self) -> KafkaSettings:
        topics = TopicNames(**{f: f"{self.prefix}{v}" for f, v in TopicNames().model_dump().items()})
        return KafkaSettings(
            bootstrap=self.infra.broker.bootstrap, partitions=self.settings.partitions, topics=topics
        )

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def psp_url(self) -> str:
        return f"http://127.0.0.1:{self.psp_port}"

    def start(self, users: tuple[str, ...]) -> None:
        kafka = self.kafka
        create_topics(kafka.bootstrap, kafka)
        self.flushall()
        self.roles = {"admin": "admin"} | {u: "member" for u in users}
        self.keys = {u: KEY_PREFIX + base64.urlsafe_b64encode(os.urandom(18)).decode() for u in self.roles}
        self.provision_keys()
        self._define_services(kafka)
        for child in self.services.values():
            child.start()
        wait_http_ok(f"{self.gateway_url}/readyz", still_alive=self._check_alive)
        wait_http_ok(f"{self.psp_url}/readyz", still_alive=self._check_alive)
        for port in self.ops_ports.values():
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", still_alive=self._check_alive)

    def _define_services(self, kafka: KafkaSettings) -> None:
        s = self.settings
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        base = {
            **os.environ,
            **kafka_env(kafka),
            "PYTHONUNBUFFERED": "1",
            "PAYMENTS_ENV": "development",  # the campaign's load must not be rate limited
            "PAYMENTS_REDIS__URL": self.infra.redis.url,
        }
        self._add(
            "psp-sim",
            ["psp-sim", "--host", "127.0.0.1", "--port", str(self.psp_port), "--seed", str(self.seed),
             "--latency-median-ms", "5", "--latency-max-ms", "50", "--timeout-hang-s", str(s.psp_timeout_hang_s),
             "--webhook-url", f"{self.gateway_url}/v1/psp/webhooks"],
            base | {"PSP_SIM_WEBHOOK_SECRET": secret},
        )  # fmt: skip
        for i in range(s.processors):
            name = f"processor-{i}"
            self._add(
                name,
                ["processor", "--instance", str(i), "--ops-port", str(self._ops(name))],
                base
                | {
                    "PAYMENTS_RUNTIME__GROUP_ID": f"{self.prefix}processor",
                    "PAYMENTS_RUNTIME__SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
                    "PAYMENTS_RUNTIME__CALL_TIMEOUT_S": "10",
                    "PAYMENTS_RUNTIME__STUCK_MARGIN_S": "5",
                    "PAYMENTS_OPERATION_TTL_MS": str(s.operation_ttl_ms),
                },
            )
        self._add(
            "psp-caller",
            ["psp-caller", "--psp-url", self.psp_url, "--ops-port", str(self._ops("psp-caller"))],
            base
            | {
                "PAYMENTS_GROUP_ID": f"{self.prefix}psp-caller",
                "PAYMENTS_CALL_TIMEOUT_S": str(s.psp_call_timeout_s),
                "PAYMENTS_MAX_IN_FLIGHT": "256",
                "PAYMENTS_SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
            },
        )
        self._add(
            "reconciler",
            ["reconciler", "--psp-url", self.psp_url, "--ops-port", str(self._ops("reconciler"))],
            base
            | RECONCILER_ENV
            | {
                "PAYMENTS_TRACKER__GROUP_ID": f"{self.prefix}reconciler",
                "PAYMENTS_TRACKER__SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
                "PAYMENTS_TRACKER__CALL_TIMEOUT_S": "10",
                "PAYMENTS_TRACKER__STUCK_MARGIN_S": "5",
                "PAYMENTS_EXPIRE_GRACE_MS": str(s.expire_grace_ms),
            },
        )
        self._add(
            "projector",
            ["projector", "--ops-port", str(self._ops("projector"))],
            base
            | {
                "PAYMENTS_GROUP_ID": f"{self.prefix}projector",
                "PAYMENTS_SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
            },
        )
        self._add(
            "gateway",
            ["gateway", "--host", "127.0.0.1", "--port", str(self.gateway_port)],
            base | {"PAYMENTS_WEBHOOK_SECRETS": json.dumps([secret])},
        )

    def _ops(self, name: str) -> int:
        self.ops_ports[name] = free_port()
        return self.ops_ports[name]

    def _add(self, name: str, args: list[str], env: dict[str, str]) -> None:
        argv = [sys.executable, "-m", "payments.cli", *args]
        self.services[name] = ChildProcess(argv, self.run_dir / "logs" / f"{name}.log", env=env)

    def _check_alive(self) -> None:
        for name, child in self.services.items():
            if not child.alive():
                raise RuntimeError(f"{name} exited while starting:\n{child.log_tail(20)}")

    def supervise(self, now_s: float) -> None:
        """What Kubernetes or systemd does in production: start again a service that exited on its own
        (a watchdog exit, a fatal error). The PSP simulator is not restarted: its log is the witness."""
        for name, child in self.services.items():
            if name == "psp-sim" or name in self.held or child.alive():
                continue
            self.restarts.append(f"t+{now_s:.1f}s {name} exited with {child.returncode()}")
            child.start()

    # --- levers -------------------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self.held.add(name)
        self.services[name].kill()

    def restart(self, name: str) -> None:
        self.held.discard(name)
        if not self.services[name].alive():  # the supervisor may not start it; it may have already
            self.services[name].start()

    def pause(self, name: str) -> None:
        self.services[name].pause()

    def resume(self, name: str) -> None:
        self.services[name].resume()

    def flushall(self) -> None:
        with redis.Redis.from_url(self.infra.redis.url, socket_timeout=5) as r:
            r.flushall()

    def provision_keys(self) -> None:
        """(Re)write every API key of the run: the operator's restore after Redis lost its data."""
        with redis.Redis.from_url(self.infra.redis.url, socket_timeout=5) as r:
            for user, key in self.keys.items():
                principal = Principal(user_id=user, role=Role(self.roles[user]))
                r.set(apikey_redis_key(key), principal.model_dump_json())

    def set_psp_faults(self, faults: dict[str, object] | None) -> None:
        with httpx.Client(base_url=self.psp_url, timeout=10) as psp:
            r = psp.delete("/_sim/faults") if faults is None else psp.post("/_sim/faults", json=faults)
            r.raise_for_status()

    def heal(self) -> list[str]:
        """End every fault still in force; returns what had to be healed."""
        healed: list[str] = []
        for name, child in self.services.items():
            child.resume()  # harmless when it was not paused
            if not child.alive():
                child.start()
                healed.append(f"restarted {name}")
        if self.infra.broker.pid is None:
            self.infra.broker.start()
            healed.append("started the broker")
        if self.infra.redis.pid is None:
            self.infra.redis.start()
            healed.append("started redis")
        self.provision_keys()
        self.set_psp_faults(None)
        return healed

    def wait_ready(self, timeout_s: float = 120) -> None:
        wait_http_ok(f"{self.gateway_url}/readyz", timeout_s=timeout_s)
        for port in self.ops_ports.values():
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout_s=timeout_s)

    def stop(self) -> None:
        for child in reversed(list(self.services.values())):
            child.resume()
            child.stop(timeout_s=15)

    def delete_topics(self) -> None:
        delete_topics(self.infra.broker.bootstrap, self.kafka.topics.all(), timeout_s=30)
