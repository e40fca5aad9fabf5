"""``payments gateway`` and ``payments projector`` as real processes: they start, get ready, stop cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.settings import KafkaSettings
from tests.support import Service, service_env

pytestmark = pytest.mark.integration


def _wait_ready(url: str, service: Service, timeout_s: float = 60) -> None:
    def alive() -> None:
        assert service.alive(), service.log_path.read_text()

    wait_http_ok(url, timeout_s=timeout_s, still_alive=alive)


@pytest.mark.parametrize("which", ["gateway", "projector"])
def test_service_starts_and_stops(
    which: str, kafka_settings: KafkaSettings, redis_db: str, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(kafka_settings, f"g{port}-", PAYMENTS_REDIS__URL=redis_db)
    args = ["gateway", "--port", str(port)] if which == "gateway" else ["projector", "--ops-port", str(port)]
    service = Service(args, env, tmp_path / f"{which}.log").start()
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", service)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert f"payments_{which}_" in metrics
        service.signal(signal.SIGTERM)
        assert service.proc is not None
        # uvicorn re-raises the signal after its graceful shutdown, so the gateway "dies" of SIGTERM
        assert service.proc.wait(30) in (0, -signal.SIGTERM), service.log_path.read_text()
        assert which == "projector" or "Application shutdown complete" in service.log_path.read_text()
    finally:
        service.stop()
