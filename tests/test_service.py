"""payments/service.py: the common flags, settings precedence, and the ops endpoints' lifetime."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments import service
from payments.devstack.ports import free_port
from payments.settings import KafkaSettings


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_nested_delimiter="__", frozen=True)

    kafka: KafkaSettings = KafkaSettings()
    instance: int = 0
    ops_host: str = "127.0.0.1"
    ops_port: int = 0
    log_level: str = "INFO"
    psp_url: str = "http://default"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PAYMENTS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAYMENTS_DEVSTACK_DIR", "off")


def test_flags_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_KAFKA__BOOTSTRAP", "env:1")
    monkeypatch.setenv("PAYMENTS_PSP_URL", "http://env")
    parser = service.parser("t", instance=True)
    parser.add_argument("--psp-url")
    args = parser.parse_args(["--bootstrap", "flag:1", "--instance", "3", "--ops-port", "7"])
    settings, res = service.settings(_Settings, args, psp_url=args.psp_url)
    assert settings.kafka.bootstrap == "flag:1"
    assert settings.instance == 3
    assert settings.ops_port == 7
    assert settings.psp_url == "http://env"
    assert res.sources["kafka.bootstrap"] == "flag"
    assert res.sources["psp_url"] == "env"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a local test URL
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_runs_the_ops_endpoints_and_signals_set_stop() -> None:
    ready = False
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        port = free_port()
        with service.serve(_Settings(ops_port=port), lambda: ready) as stop:
            assert _get(f"http://127.0.0.1:{port}/readyz") == 503
            ready = True
            assert _get(f"http://127.0.0.1:{port}/readyz") == 200
            assert not stop.is_set()
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(5)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
