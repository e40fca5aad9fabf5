"""One broken invariant, found by a check; ``invariant`` is its number in docs/design.md §3
(0 = state agreement)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    invariant: int
    subject: str
    detail: str
