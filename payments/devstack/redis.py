"""A real ``redis-server`` (the Debian package) on a free loopback port, for development and tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import redis

from payments.devstack.errors import DevstackError
from payments.devstack.ports import free_port
from payments.devstack.process import ChildProcess

_INSTALL_HINT = "install the Debian package 'redis-server' (apt-get install -y redis-server)"


def ensure_redis_installed() -> str:
    """Return the path of ``redis-server``, installing it with apt-get when missing and we are root."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DevstackError(f"redis-server is not on PATH: {_INSTALL_HINT}, or run scripts/setup.sh as root")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    with _no_service_starts():
        for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "redis-server"]):
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if done.returncode != 0:
                tail = done.stderr[-2000:]
                raise DevstackError(f"{' '.join(argv)} failed (exit {done.returncode}):\n{tail}")
    found = shutil.which("redis-server")
    if found is None:
        raise DevstackError(f"apt-get installed redis-server but it is not on PATH: {_INSTALL_HINT}")
    return found


@contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep the package from starting its own daemon on 6379 (Debian's policy-rc.d convention): it would
    quietly serve any code that forgot to take the test's or the stack's Redis URL."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():  # someone else's policy: leave it alone
        yield
        return
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


class RedisServer:
    """One redis-server process, in memory only; ``with RedisServer() as r: r.url``.

    Persistence is off (``--save ""``, no AOF): the read model it holds is rebuilt from Kafka, and tests
    want a clean server. ``data_dir`` holds only its log; None means a temporary folder removed by
    :meth:`stop`.
    """

    def __init__(self, data_dir: Path | None = None, *, startup_timeout_s: float = 15.0) -> None:
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="payments-redis-")) if data_dir is None else data_dir
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self._child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and self._child.alive() else None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._child is not None and self._child.alive():
            return
        server = shutil.which("redis-server")
        if server is None:
            raise DevstackError(f"redis-server is not on PATH: {_INSTALL_HINT}, or run scripts/setup.sh")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self._child = ChildProcess(self._argv(server), self.log_path, cwd=self.data_dir)
            self._child.start()
            try:
                self._wait_for_ping()
                return
            except DevstackError:
                # Lost a race for the port between free_port() and redis' bind: try another one.
                lost_race = not self._child.alive() and "Address already in use" in self._child.log_tail()
                self._child.kill()
                self._child = None
                if not lost_race or attempt == 2:
                    raise
                self.port = free_port()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._child is not None:
            self._child.stop(timeout_s)
            self._child = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _argv(self, server: str) -> list[str]:
        return [
            server,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            # Its working dir, so nothing (a dump requested by hand, say) lands in the caller's cwd.
            *("--dir", str(self.data_dir)),
        ]

    def _wait_for_ping(self) -> None:
        assert self._child is not None
        deadline = time.monotonic() + self.startup_timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        try:
            while True:
                if not self._child.alive():
                    code = self._child.returncode()
                    raise DevstackError(f"redis-server exited (exit {code}):\n{self._child.log_tail()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise DevstackError(f"redis-server did not answer PING:\n{self._child.log_tail()}")
                time.sleep(0.05)
        finally:
            client.close()
