"""``payments gateway --workers N`` as a real process: N worker processes serve the port, a dead worker is
replaced, and ``/metrics`` on any worker counts the requests of all of them (multiprocess mode)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.settings import KafkaSettings
from tests.support import Service, service_env

pytestmark = pytest.mark.integration


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc), i.e. uvicorn's worker processes."""
    out: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _cmdline(pid: int) -> str:
    """A process's command line, or "" if it has exited since it was listed (a worker being replaced)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _workers(pid: int, n: int, timeout_s: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # uvicorn's spawn context also starts a resource tracker: workers are the children serving HTTP.
        kids = {k for k in _children(pid) if (cmd := _cmdline(k)) and "resource_tracker" not in cmd}
        if len(kids) == n:
            return kids
        time.sleep(0.2)
    raise AssertionError(f"expected {n} workers, found {_children(pid)}")


def _healthz_count(text: str) -> float:
    pattern = r'payments_gateway_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)'
    return sum(float(n) for n in re.findall(pattern, text))


def test_workers_share_the_port_and_the_metrics(
    kafka_settings: KafkaSettings, redis_db: str, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(
        kafka_settings,
        f"w{port}-",
        PAYMENTS_REDIS__URL=redis_db,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "m"),
    )
    service = Service(["gateway", "--port", str(port), "--workers", "2"], env, tmp_path / "gw.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", timeout_s=60, still_alive=lambda: None)
        assert service.proc is not None
        workers = _workers(service.proc.pid, 2)
        for _ in range(40):  # fresh connections, so the kernel spreads them over both workers
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        for _ in range(4):  # whichever worker answers the scrape, it reports all 40
            assert _healthz_count(httpx.get(f"{base}/metrics", timeout=5).text) == 40
        assert len(list((tmp_path / "m").glob("*.db"))) >= 2  # both workers wrote samples

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in _workers(service.proc.pid, 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        replaced = _workers(service.proc.pid, 2)
        assert victim not in replaced
        wait_http_ok(f"{base}/readyz", timeout_s=60, still_alive=lambda: None)
        # The dead worker's counts stay in the sum: counters never go backwards across a restart.
        assert _healthz_count(httpx.get(f"{base}/metrics", timeout=5).text) >= 40
    finally:
        service.stop()
