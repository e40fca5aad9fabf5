"""Starting the benchmark's services as child processes (``payments.devstack.process.ChildProcess``:
own process group, log file, killed with us)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from payments.devstack.errors import DevstackError
from payments.devstack.probe import wait_http_ok
from payments.devstack.process import ChildProcess


def launch(argv: list[str], log_path: Path, env: Mapping[str, str]) -> ChildProcess:
    child = ChildProcess(argv, log_path, env=env)
    child.start()
    return child


def payments_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "payments.cli", *args]


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_ready(url: str, child: ChildProcess, name: str, timeout_s: float = 90) -> None:
    def alive() -> None:
        if not child.alive():
            raise DevstackError(
                f"{name} exited with {child.returncode()} while starting:\n{child.log_tail(20)}"
            )

    wait_http_ok(url, timeout_s=timeout_s, still_alive=alive)


def post_json(url: str, body: object) -> None:
    httpx.post(url, json=body, timeout=10).raise_for_status()


def settle(check: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` passes; whether it became true."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
