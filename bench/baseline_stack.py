"""The baseline on this machine: a throwaway PostgreSQL cluster, its own PSP simulator (same settings as
ours) and the baseline app (``bench.baseline``), restarted for every run so that requests a run left
queued on a row lock cannot leak into the next one."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from bench.baseline import seed as baseline_seed
from bench.baseline.settings import Variant
from bench.cpu import descendants
from bench.postgres import PostgresCluster, ServerSettings
from bench.procs import launch, payments_cli, post_json, python_module, wait_ready
from bench.world import CURRENCY, World
from payments.devstack.ports import free_port
from payments.devstack.process import ChildProcess

_TERMINATE_OTHERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
)


class BaselineStack:
    def __init__(
        self, state_dir: Path, *, pool_size: int, lock_timeout_ms: int, synchronous_commit: bool
    ) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self._pool_size = pool_size
        self._lock_timeout_ms = lock_timeout_ms
        self.pg = PostgresCluster(ServerSettings(synchronous_commit=synchronous_commit), base_dir=None)
        self.psp: ChildProcess | None = None
        self.app: ChildProcess | None = None
        self.psp_url = ""
        self.base_url = ""
        self.variant: Variant | None = None

    def start(self) -> None:
        self.pg.start()
        port = free_port()
        self.psp_url = f"http://127.0.0.1:{port}"
        self.psp = launch(
            payments_cli("psp-sim", "--host", "127.0.0.1", "--port", str(port), "--seed", "7",
                         "--latency-median-ms", "0", "--latency-max-ms", "0", "--log-level", "warning"),
            self.log_dir / "baseline-psp-sim.log",
            {**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        wait_ready(f"{self.psp_url}/readyz", self.psp, "baseline psp-sim")

    def seed(self, world: World) -> None:
        async def load() -> None:
            conn = await asyncpg.connect(self.pg.dsn)
            try:
                await baseline_seed.create_schema(conn)
                await baseline_seed.load(
                    conn, keys=world.keys, accounts=world.all_accounts(), currency=CURRENCY
                )
            finally:
                await conn.close()

        asyncio.run(load())

    def start_app(self, variant: Variant) -> None:
        """(Re)start the app: the previous one is killed after 3 s and its sessions terminated."""
        self.stop_app()
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BASELINE_DSN": self.pg.dsn,
            "BASELINE_PSP_URL": self.psp_url,
            "BASELINE_POOL_SIZE": str(self._pool_size),
            "BASELINE_LOCK_TIMEOUT_MS": str(self._lock_timeout_ms),
        }
        self.app = launch(
            python_module("bench.baseline.main", "--port", str(port), "--variant", variant.value),
            self.log_dir / f"baseline-{variant.value}.log",
            env,
        )
        self.variant = variant
        wait_ready(f"{self.base_url}/healthz", self.app, f"baseline app ({variant.value})")

    def stop_app(self) -> None:
        if self.app is None:
            return
        self.app.stop(timeout_s=3)
        self.app = None

        async def terminate() -> None:
            # Sessions of a killed app may still wait on a row lock until lock_timeout; end them now.
            conn = await asyncpg.connect(self.pg.dsn)
            try:
                await conn.execute(_TERMINATE_OTHERS, self.pg.database)
            finally:
                await conn.close()

        asyncio.run(terminate())

    def set_psp_latency(self, ms: int) -> None:
        post_json(f"{self.psp_url}/_sim/reset", {})
        post_json(f"{self.psp_url}/_sim/faults", {"latency_ms": {"median": ms, "max": ms}})

    def stop(self) -> None:
        try:
            if self.app is not None:
                self.app.stop(timeout_s=3)
            if self.psp is not None:
                self.psp.stop(timeout_s=5)
        finally:
            self.pg.stop()

    def cpu_groups(self) -> dict[str, list[int]]:
        """Processes of the system, by part, for CPU accounting: the app, PostgreSQL (postmaster and every
        backend), the PSP simulator."""
        groups: dict[str, list[int]] = {}
        if self.app is not None and self.app.pid is not None:
            groups["app"] = [self.app.pid]
        postmaster = self.pg.postmaster_pid()
        if postmaster is not None:
            groups["postgres"] = descendants(postmaster)
        if self.psp is not None and self.psp.pid is not None:
            groups["psp-sim"] = [self.psp.pid]
        return groups

    def dead_children(self) -> list[str]:
        return [
            n
            for n, c in (("baseline-app", self.app), ("baseline-psp", self.psp))
            if c is not None and not c.alive()
        ]
