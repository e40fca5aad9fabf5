"""``payments up``: the whole stack on this machine, as child processes with prefixed logs.

Starts redis-server and a Kafka broker (data under ``.devstack/``), creates the topics, then the PSP
simulator (sending signed webhooks to the gateway), N processors, the psp-caller, the reconciler, the
projector and the gateway; seeds an admin key and the demo users ``alice`` and ``bob`` sharing one funded
demo account; writes ``.devstack/credentials.json``, ``.devstack/pids.json``
(for ``payments down``) and ``.devstack/stack.json`` (where the broker, Redis and PSP are, for the other
tools: payments/devstack/discovery.py) and prints where the API and its docs are. Ctrl-C or SIGTERM stops everything in
reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from payments.devstack.discovery import StackInfo, remove_stack, write_stack
from payments.devstack.errors import DevstackError
from payments.devstack.kafka import KafkaBroker
from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.devstack.process import ChildProcess
from payments.devstack.redis import RedisServer, ensure_redis_installed
from payments.devstack.topics import create_topics
from payments.gateway.seed import create_api_key
from payments.settings import KafkaSettings

DEMO_FUNDING = 100_000  # EUR 1,000.00 in minor units


def dev_partitions(cores: int | None = None) -> int:
    """Partitions per topic for a stack on this one machine: 2 per core, at least 4.

    Every partition a Kafka transaction touches costs the broker a commit marker, and one processor batch
    touches up to every partition of four topics; on a single box more partitions than processes that could
    own them only add that cost (the production default, ``KafkaSettings.partitions``, stays 64 so that a
    cluster can scale out to 64 processors without re-partitioning)."""
    n = cores if cores is not None else (os.cpu_count() or 1)
    return max(4, 2 * n)


@dataclass
class Stack:
    state_dir: Path
    children: dict[str, ChildProcess] = field(default_factory=dict)
    # Where each child's log stood when it was started: logs are appended across runs, and only what this
    # run wrote says anything about this run.
    log_starts: dict[str, int] = field(default_factory=dict)
    broker: KafkaBroker | None = None
    redis: RedisServer | None = None

    def pids(self) -> dict[str, int]:
        out = {name: c.pid for name, c in self.children.items() if c.pid is not None}
        if self.broker is not None and self.broker.pid is not None:
            out["kafka"] = self.broker.pid
        if self.redis is not None and self.redis.pid is not None:
            out["redis"] = self.redis.pid
        return out

    def stop(self) -> None:
        # Edge first (no new intake), then the pipeline, then the infrastructure it needs to flush.
        for name in reversed(list(self.children)):
            self.children[name].stop(timeout_s=20)
        if self.broker is not None:
            self.broker.stop()
        if self.redis is not None:
            self.redis.stop()
        (self.state_dir / "pids.json").unlink(missing_ok=True)
        remove_stack(self.state_dir)


def _service(stack: Stack, name: str, args: list[str], env: dict[str, str]) -> None:
    log_path = stack.state_dir / "logs" / f"{name}.log"
    child = ChildProcess([sys.executable, "-m", "payments.cli", *args], log_path, env=env)
    stack.log_starts[name] = log_path.stat().st_size if log_path.exists() else 0
    child.start()
    stack.children[name] = child


def _tail_logs(stack: Stack, stop: threading.Event) -> None:
    """Print every service's log lines with a ``[name]`` prefix, as they are written."""
    offsets: dict[Path, int] = {}
    while not stop.is_set():
        for name, child in list(stack.children.items()):
            path = child.log_path
            try:
                with path.open("rb") as f:
                    f.seek(offsets.get(path, stack.log_starts.get(name, 0)))
                    chunk = f.read()
                    offsets[path] = f.tell()
            except FileNotFoundError:
                continue
            for line in chunk.decode(errors="replace").splitlines():
                print(f"[{name:<12}] {line}", flush=True)
        stop.wait(0.3)


def _check_children(stack: Stack) -> None:
    for name, child in stack.children.items():
        if not child.alive():
            raise DevstackError(
                f"{name} exited with {child.returncode()} while starting:\n{child.log_tail(15)}"
            )


def _wait_ready(stack: Stack, url: str) -> None:
    wait_http_ok(url, timeout_s=90, still_alive=lambda: _check_children(stack))


async def _seed(redis_url: str, gateway: str) -> dict[str, object]:
    r = aioredis.Redis.from_url(redis_url)
    try:
        admin = await create_api_key(r, "admin", "admin")
        users = {u: await create_api_key(r, u, "member") for u in ("alice", "bob")}
    finally:
        await r.aclose()
    async with httpx.AsyncClient(
        base_url=gateway, headers={"Authorization": f"Bearer {admin}"}, timeout=30
    ) as c:
        resp = await c.post(
            "/v1/accounts",
            json={"currency": "EUR", "members": ["alice", "bob"]},
            headers={"Idempotency-Key": f"demo-account-{uuid.uuid4().hex}", "Prefer": "wait=10"},
        )
        resp.raise_for_status()
        account = resp.json()["id"]
        for _ in range(600):  # the first group join and restore of every partition can take a while
            if (await c.get(f"/v1/accounts/{account}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        resp = await c.post(
            f"/v1/accounts/{account}/adjustments",
            json={"amount": DEMO_FUNDING, "currency": "EUR", "reason": "demo funding"},
            headers={"Idempotency-Key": f"demo-funding-{account}", "Prefer": "wait=10"},
        )
        resp.raise_for_status()
    return {"admin": admin, "users": users, "demo_account": account}


def _webhook_secret(state_dir: Path) -> str:
    """The PSP → gateway webhook signing secret, made once per state dir (0600) and kept across runs."""
    path = state_dir / "webhook_secret"
    if not path.exists():
        path.write_text("whsec_" + base64.b64encode(os.urandom(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def start(args: argparse.Namespace, stack: Stack) -> None:
    state_dir = stack.state_dir
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    ensure_redis_installed()
    stack.redis = RedisServer(data_dir=state_dir / "redis")
    stack.redis.start()
    stack.broker = KafkaBroker(state_dir / "kafka", partitions=args.partitions)
    stack.broker.start()
    kafka = KafkaSettings(bootstrap=stack.broker.bootstrap, partitions=args.partitions)
    create_topics(kafka.bootstrap, kafka)
    print(
        f"broker {kafka.bootstrap} and redis {stack.redis.url} ready in {time.monotonic() - t0:.1f}s",
        flush=True,
    )

    gw_port = args.gateway_port or free_port()
    psp_port = args.psp_port or free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PAYMENTS_ENV": "development",  # a local stack: no production rate limit
        "PAYMENTS_KAFKA__BOOTSTRAP": kafka.bootstrap,
        "PAYMENTS_KAFKA__PARTITIONS": str(kafka.partitions),
        "PAYMENTS_REDIS__URL": stack.redis.url,
    }
    secret = _webhook_secret(state_dir)
    _service(
        stack,
        "psp-sim",
        ["psp-sim", "--host", "127.0.0.1", "--port", str(psp_port),
         "--webhook-url", f"http://127.0.0.1:{gw_port}/v1/psp/webhooks"],
        env | {"PSP_SIM_WEBHOOK_SECRET": secret},
    )  # fmt: skip
    psp = f"http://127.0.0.1:{psp_port}"
    # Services without an HTTP API of their own serve /readyz on an ops port we choose, so we can probe it.
    ops_ports: dict[str, int] = {}
    for i in range(args.processors):
        name = f"processor-{i}"
        ops_ports[name] = free_port()
        _service(stack, name, ["processor", "--instance", str(i), "--ops-port", str(ops_ports[name])], env)
    ops_ports["psp-caller"] = free_port()
    _service(
        stack, "psp-caller", ["psp-caller", "--psp-url", psp, "--ops-port", str(ops_ports["psp-caller"])], env
    )
    ops_ports["reconciler"] = free_port()
    _service(
        stack, "reconciler", ["reconciler", "--psp-url", psp, "--ops-port", str(ops_ports["reconciler"])], env
    )
    ops_ports["projector"] = free_port()
    _service(stack, "projector", ["projector", "--ops-port", str(ops_ports["projector"])], env)
    _service(
        stack,
        "gateway",
        ["gateway", "--host", "127.0.0.1", "--port", str(gw_port)],
        env | {"PAYMENTS_WEBHOOK_SECRETS": json.dumps([secret])},
    )
    (state_dir / "pids.json").write_text(json.dumps({"supervisor": os.getpid(), "children": stack.pids()}))
    gateway = f"http://127.0.0.1:{gw_port}"
    _wait_ready(stack, f"{gateway}/readyz")
    _wait_ready(stack, f"{psp}/readyz")
    for port in ops_ports.values():
        _wait_ready(stack, f"http://127.0.0.1:{port}/readyz")
    creds = {"gateway": gateway, "psp": psp, **asyncio.run(_seed(stack.redis.url, gateway))}
    cred_path = state_dir / "credentials.json"
    cred_path.write_text(json.dumps(creds, indent=2))
    cred_path.chmod(0o600)  # API keys: readable by this user only
    # Last: a tool that finds the stack file (payments/devstack/discovery.py) finds a stack that is ready.
    stack_path = write_stack(
        state_dir,
        StackInfo(
            bootstrap=kafka.bootstrap,
            partitions=kafka.partitions,
            topics=kafka.topics,
            redis_url=stack.redis.url,
            psp_url=psp,
            gateway_url=gateway,
            supervisor_pid=os.getpid(),
        ),
    )
    print(
        f"\nstack up in {time.monotonic() - t0:.1f}s\n"
        f"  API      {gateway}\n  docs     {gateway}/docs\n  PSP sim  {psp}\n"
        f"  demo account {creds['demo_account']} shared by alice and bob\n"
        f"  credentials  {cred_path}\n  logs         {state_dir / 'logs'}\n"
        f"  stack file   {stack_path} (payments audit, topics, ... find the stack by it)\n"
        "Ctrl-C or `payments down` stops everything.\n",
        flush=True,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments up", description=__doc__)
    parser.add_argument("--processors", type=int, default=1, help="processor instances (default 1)")
    parser.add_argument(
        "--partitions",
        type=int,
        default=dev_partitions(),
        help="partitions per topic (default: 2 per core, at least 4; production sets its own, 64 by default)",
    )
    parser.add_argument("--gateway-port", type=int, default=8080, help="0 = any free port")
    parser.add_argument("--psp-port", type=int, default=8090, help="0 = any free port")
    parser.add_argument("--state-dir", default=".devstack", help="broker data, logs, credentials")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until Ctrl-C)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(Path(args.state_dir).resolve())
    tail_stop = threading.Event()
    tailer = threading.Thread(target=_tail_logs, args=(stack, tail_stop), daemon=True)
    tailer.start()  # before the services start, so that start-up failures are on screen too
    try:
        start(args, stack)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while not stop.wait(0.5):
            dead = [n for n, c in stack.children.items() if not c.alive()]
            if dead:
                print(f"service(s) exited: {', '.join(dead)}; stopping the stack", file=sys.stderr)
                return 1
            if deadline is not None and time.monotonic() > deadline:
                break
        return 0
    except DevstackError as exc:
        print(f"payments up: {exc}", file=sys.stderr)
        return 1
    finally:
        tail_stop.set()
        print("stopping the stack...", flush=True)
        stack.stop()
