"""CPU time per process from ``/proc`` (Linux): what each part of a system spent during a run.

On 2 shared cores, throughput depends on what else runs; CPU time per completed payment is the steadier
measure of what a design costs, so every run records it for every process of the system under test.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) from the text of ``/proc/<pid>/stat``. Pure.

    The command name (field 2) is in parentheses and may itself contain spaces and parentheses, so the
    fields are counted from the last ')'.
    """
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): ppid is field 4, utime and stime are fields 14 and 15.
    return int(rest[1]), (int(rest[11]) + int(rest[12])) * _TICK_S


def _read(pid: int) -> tuple[int, float] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile


def _children() -> dict[int, list[int]]:
    """parent pid -> child pids, from one scan of ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _read(int(entry))) is not None:
            parents.setdefault(stat[0], []).append(int(entry))
    return parents


def subtree(roots: Iterable[int], children: Mapping[int, list[int]]) -> list[int]:
    """``roots`` and every process below them, given the parent -> children map. Pure."""
    out: list[int] = []
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        todo += children.get(pid, [])
    return out


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (PostgreSQL's backends are children of the postmaster)."""
    return subtree([root], _children())


def cpu_seconds(pids: Iterable[int]) -> float:
    return sum(stat[1] for pid in pids if (stat := _read(pid)) is not None)


def tree_seconds(root: int) -> float:
    """CPU seconds so far of ``root`` and its descendants (a gateway with worker processes)."""
    return cpu_seconds(descendants(root))


def snapshot(groups: Mapping[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes, their descendants included (resolved now, in
    one ``/proc`` scan): a service that forks workers (uvicorn ``--workers``, PostgreSQL backends opened
    during a run) is counted whole."""
    children = _children()
    return {name: cpu_seconds(subtree(pids, children)) for name, pids in groups.items()}


def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: round(max(0.0, after[name] - before.get(name, 0.0)), 3) for name in after}
