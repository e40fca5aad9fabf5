"""``payments psp-sim``: settings from flags and environment, and the real process serving."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from payments.psp_sim.main import build_settings, main


def test_build_settings_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSP_SIM_SEED", "3")
    monkeypatch.setenv("PSP_SIM_PORT", "1234")
    settings = build_settings(["--port", "8123", "--latency-median-ms", "10", "--latency-max-ms", "20"])
    assert (settings.port, settings.seed, settings.latency_median_ms, settings.latency_max_ms) == (
        8123,
        3,
        10,
        20,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_main_serves_until_terminated() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "payments.psp_sim",
            "--port",
            str(port),
            "--seed",
            "1",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else b""
            assert time.monotonic() < deadline, "psp-sim did not start"
            time.sleep(0.05)
        faults = httpx.get(f"http://127.0.0.1:{port}/_sim/faults").json()
        assert faults["latency_ms"] == {"median": 1500, "max": 3000}
        assert faults["seed"] == 1
    finally:
        process.terminate()
        # Uvicorn shuts down gracefully, then re-raises the signal so supervisors see why it stopped.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)


def test_main_rejects_invalid_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--webhook-url", "http://127.0.0.1:1/hooks"]) == 2
    assert "webhook_secret" in capsys.readouterr().out
