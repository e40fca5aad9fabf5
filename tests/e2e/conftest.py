"""The whole stack as real processes on the session's broker and redis-server, one stack per module."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.devstack.topics import create_topics
from payments.gateway.seed import create_api_key
from payments.settings import KafkaSettings, TopicNames
from tests.support import Service, processor, service_env


@dataclass(frozen=True)
class Stack:
    base_url: str
    kafka: KafkaSettings
    redis_url: str
    admin_key: str
    keys: dict[str, str]
    log_dir: Path
    processors: list[Service]
    gateway: Service
    projector: Service
    psp_url: str
    psp_sim: Service
    psp_caller: Service
    webhook_secret: str
    reconciler: Service

    def client(self, user: str = "admin", timeout: float = 30.0) -> httpx.AsyncClient:
        key = self.admin_key if user == "admin" else self.keys[user]
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )


async def _seed(redis_url: str, users: list[str]) -> tuple[str, dict[str, str]]:
    r = aioredis.Redis.from_url(redis_url)
    try:
        admin = await create_api_key(r, "admin", "admin")
        return admin, {u: await create_api_key(r, u, "member") for u in users}
    finally:
        await r.aclose()


@pytest.fixture(scope="module")
def stack_env() -> dict[str, dict[str, str]]:
    """Extra environment per service ("processor", "psp_caller", "reconciler"); modules override this."""
    return {}


# The reconciler of the e2e stack acts within seconds, not the production defaults' minutes; the
# operation deadline stays at the processor's default (15 min) unless a module overrides it.
RECONCILER_ENV = {
    "PAYMENTS_CHECK_AFTER_MS": "5000",
    "PAYMENTS_UNKNOWN_CHECK_AFTER_MS": "500",
    "PAYMENTS_BACKOFF_BASE_MS": "500",
    "PAYMENTS_BACKOFF_CAP_MS": "4000",
    # Above the psp-caller's 5 s call time-out (see policy.py).
    "PAYMENTS_EXPIRE_GRACE_MS": "8000",
    "PAYMENTS_SETTLEMENT_INTERVAL_S": "3",
    "PAYMENTS_SETTLEMENT_GRACE_MS": "15000",
}


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    stack_env: dict[str, dict[str, str]],
) -> Iterator[Stack]:
    prefix = f"e{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(
        bootstrap=kafka_bootstrap,
        partitions=8,
        topics=TopicNames(**{f: f"{prefix}{v}" for f, v in TopicNames().model_dump().items()}),
    )
    create_topics(kafka_bootstrap, kafka)
    db = 1 + int(uuid.uuid4().int % 14)  # a Redis db of its own so module stacks do not see each other
    rurl = redis_url.rsplit("/", 1)[0] + f"/{db}"
    admin, keys = asyncio.run(_seed(rurl, ["alice", "bob", "carol", "dave", "mallory"]))
    log_dir = tmp_path_factory.mktemp("stack-logs")
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    env = service_env(kafka, prefix, PAYMENTS_REDIS__URL=rurl)
    port, psp_port, caller_ops = free_port(), free_port(), free_port()
    psp_url = f"http://127.0.0.1:{psp_port}"
    procs = [processor(kafka, prefix, 0, log_dir, **stack_env.get("processor", {}))]
    gateway = Service(
        ["gateway", "--host", "127.0.0.1", "--port", str(port)],
        env | {"PAYMENTS_WEBHOOK_SECRETS": json.dumps([secret])},
        log_dir / "gateway.log",
    )
    projector = Service(
        ["projector"], env | {"PAYMENTS_GROUP_ID": f"{prefix}projector"}, log_dir / "projector.log"
    )
    # A fast PSP (tests set latency and faults at run time through /_sim/faults), signing webhooks to us.
    # Its injected time-outs hang 8 s, longer than the psp-caller's 5 s call time-out, so they really time
    # out; 5 s is above the 3 s latency the slow-call test sets, so that call is not retried.
    psp_sim = Service(
        ["psp-sim", "--host", "127.0.0.1", "--port", str(psp_port), "--seed", "7",
         "--latency-median-ms", "5", "--latency-max-ms", "50", "--timeout-hang-s", "8",
         "--webhook-url", f"http://127.0.0.1:{port}/v1/psp/webhooks"],
        env | {"PSP_SIM_WEBHOOK_SECRET": secret},
        log_dir / "psp-sim.log",
    )  # fmt: skip
    psp_caller = Service(
        ["psp-caller", "--psp-url", psp_url, "--ops-port", str(caller_ops)],
        # 256 calls in flight: the default 2,000 sockets at one simulator process on 2 shared cores
        # overflow its accept queue, and the refused connections open the circuit breaker again and again.
        env
        | {
            "PAYMENTS_GROUP_ID": f"{prefix}psp-caller",
            "PAYMENTS_CALL_TIMEOUT_S": "5",
            "PAYMENTS_MAX_IN_FLIGHT": "256",
        }
        | stack_env.get("psp_caller", {}),
        log_dir / "psp-caller.log",
    )
    reconciler = Service(
        ["reconciler", "--psp-url", psp_url],
        env
        | {"PAYMENTS_TRACKER__GROUP_ID": f"{prefix}reconciler"}
        | RECONCILER_ENV
        | stack_env.get("reconciler", {}),
        log_dir / "reconciler.log",
    )
    services = [psp_sim, *procs, psp_caller, reconciler, projector, gateway]
    for s in services:
        s.start()
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz")
        wait_http_ok(f"{psp_url}/readyz")
        wait_http_ok(f"http://127.0.0.1:{caller_ops}/readyz")
        yield Stack(
            f"http://127.0.0.1:{port}", kafka, rurl, admin, keys, log_dir, procs, gateway, projector,
            psp_url, psp_sim, psp_caller, secret, reconciler,
        )  # fmt: skip
    finally:
        for s in reversed(services):
            s.stop()
