"""A throwaway PostgreSQL cluster for the baseline: ``initdb`` into a temporary folder, ``pg_ctl start`` on
127.0.0.1 with a free port, deleted by :meth:`stop`.

PostgreSQL refuses to run as root, so when we are root every server command runs as the ``postgres``
user that the Debian package creates (``runuser -u postgres``), in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from payments.devstack.ports import free_port


class PostgresError(RuntimeError):
    """The cluster could not be created, started or stopped (not retriable: the machine needs fixing)."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` (Debian), else the folder of ``initdb`` on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PostgresError(
            "PostgreSQL is not installed: run bench/setup_postgres.sh (apt-get install postgresql)"
        )
    return Path(initdb).resolve().parent


@dataclass(frozen=True)
class ServerSettings:
    """Server options for the benchmark. Everything else is PostgreSQL's default."""

    max_connections: int = 200
    shared_buffers: str = "512MB"
    # Off by default, which is generous to the baseline: our single Kafka broker acknowledges a write once
    # it is in the OS page cache (no fsync), and synchronous_commit=off is PostgreSQL's nearest equivalent.
    # With it on, every commit waits for an fdatasync (~1 ms on this disk) while holding the row lock.
    # ``payments bench --pg-sync-commit`` measures that variant.
    synchronous_commit: bool = False

    def argv(self) -> list[str]:
        return [
            "-c", f"max_connections={self.max_connections}",
            "-c", f"shared_buffers={self.shared_buffers}",
            "-c", f"synchronous_commit={'on' if self.synchronous_commit else 'off'}",
        ]  # fmt: skip


class PostgresCluster:
    """``with PostgresCluster() as pg: pg.dsn`` — superuser ``bench``, database ``bench``, trust auth on
    loopback only."""

    user = "bench"
    database = "bench"

    def __init__(self, settings: ServerSettings | None = None, *, base_dir: Path | None = None) -> None:
        self.settings = settings or ServerSettings()
        self._bindir = find_bindir()
        self._run_as = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="payments-bench-pg-", dir=base_dir))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = free_port()
        self._started = False

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _cmd(self, tool: str, *args: str) -> list[str]:
        argv = [str(self._bindir / tool), *args]
        if self._run_as is None:
            return argv
        return ["runuser", "-u", self._run_as, "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        if self._run_as is not None:
            try:
                entry = pwd.getpwnam(self._run_as)
            except KeyError as exc:
                raise PostgresError(
                    "running as root needs the 'postgres' user (the Debian package makes it)"
                ) from exc
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        # --no-sync: a throwaway cluster need not survive a power cut during initdb; saves seconds.
        self._run(
            self._cmd(
                "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"
            ),
            "initdb",
        )
        options = " ".join(
            ["-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-c unix_socket_directories={self.dir}"]
            + [f"{a} {b}" for a, b in zip(self.settings.argv()[::2], self.settings.argv()[1::2], strict=True)]
        )
        self._run(
            self._cmd(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            "pg_ctl start",
        )
        self._started = True
        self._run(
            self._cmd("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database),
            "createdb",
        )

    def stop(self) -> None:
        """Fast shutdown (open sessions are cut), then delete the folder."""
        try:
            if self._started:
                self._run(
                    self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"), "pg_ctl stop"
                )
                self._started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (FileNotFoundError, PermissionError):
            return "(no log)"
