"""``payments down``: stop a stack started by ``payments up`` in another terminal (or left behind)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

from payments.devstack.discovery import remove_stack


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="payments down")
    parser.add_argument("--state-dir", default=".devstack")
    args = parser.parse_args(argv)
    pid_file = Path(args.state_dir) / "pids.json"
    if not pid_file.exists():
        remove_stack(Path(args.state_dir))  # a stale one, if the supervisor was killed outright
        print("no running stack (no pids.json)")
        return 0
    recorded = json.loads(pid_file.read_text())
    supervisor: int = recorded["supervisor"]
    pids: dict[str, int] = recorded["children"]
    # The supervisor stops its children in order; give it the chance before signalling them directly.
    if _alive(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _alive(supervisor):
            time.sleep(0.2)
    # Every child leads its own process group (see ChildProcess), so signalling the group reaches it all.
    for name in reversed(list(pids)):
        if _alive(pids[name]):
            os.killpg(pids[name], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.2)
    for name, pid in pids.items():
        if _alive(pid):
            print(f"{name} (pid {pid}) did not stop in time; killing it")
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    remove_stack(Path(args.state_dir))
    print(f"stopped {len(pids)} processes")
    return 0
