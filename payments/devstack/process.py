"""A server run as a child process: own process group, output to a log file, no orphans.

Both the Kafka broker and redis-server are started through :class:`ChildProcess`, so stopping, killing
and reporting a crash work the same way for both.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from payments.devstack.errors import DevstackError

# Children still running when the interpreter exits (a test run interrupted between start and stop, a
# CLI that forgot to stop) are killed then, so they do not outlive us holding ports and data dirs.
_LIVE: weakref.WeakSet[ChildProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for child in list(_LIVE):
        child.kill()


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """Prefix ``setpriv --pdeathsig TERM`` so the kernel SIGTERMs the child if we are SIGKILLed.

    atexit does not run when this process is killed (a CI timeout, a stuck test run killed by hand), and a
    broker left behind holds 1 GiB of heap and its ports. The death signal fires when the *thread* that
    forked the child exits, so it is only set from the main thread, whose end is the process's end.
    setpriv execs the program in place, so the pid we hold is still the server's own.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


class ChildProcess:
    """One long-running child, started in its own session so that signals reach its whole group.

    Its own session also keeps a terminal's Ctrl-C (sent to the foreground group) from reaching it: the
    owner decides when it stops, in order, instead of every process dying at once.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._cwd = cwd
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self.alive():
            raise DevstackError(f"{self.argv[0]} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = _with_parent_death_signal(self.argv)
        # Appending keeps the output of earlier runs (a restart) in one file, in order.
        with self.log_path.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._cwd,
                    env=self._env,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise DevstackError(f"cannot run {self.argv[0]}: {exc}") from exc
        _LIVE.add(self)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the group, then SIGKILL it if it has not exited within ``timeout_s`` seconds."""
        if self._proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._proc.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the group at once: what a crash or an OOM kill looks like to everyone else."""
        if self._proc is None:
            return
        self._signal(signal.SIGKILL)
        self._proc.wait()
        self._reap()

    def pause(self) -> None:
        """SIGSTOP the group: a process that hangs (a GC pause, a stuck disk) without dying."""
        if self.alive():
            self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._signal(signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        # The child leads its own group (start_new_session), so its pgid is its pid; signalling the
        # group also reaches anything it forked.
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._proc.pid, sig)

    def _reap(self) -> None:
        # Only the group leader is waited for: java and redis-server fork no helpers. Signalling the group
        # again after the wait could hit an unrelated group that has since reused the pid.
        _LIVE.discard(self)
