"""Open-loop (fixed-rate) arrival schedule. Pure.

Request ``i`` is due at ``t0 + i / rate`` whatever happened to earlier requests, and its latency is
measured from that due time, not from when it was actually sent. Measuring from the send time would hide
the queueing a slow server causes in its own load generator ("coordinated omission").
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FixedRate:
    rate_per_s: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration must be positive")

    @property
    def total(self) -> int:
        """Requests in the run: every due time strictly inside ``[0, duration)``."""
        return math.ceil(self.rate_per_s * self.duration_s - 1e-9)

    def due_at(self, t0: float, i: int) -> float:
        """When request ``i`` (0-based) is due."""
        return t0 + i / self.rate_per_s

    def due_by(self, t0: float, now: float) -> int:
        """How many requests are due at ``now`` (indices ``0 .. due_by - 1``), capped at ``total``."""
        if now < t0:
            return 0
        return min(self.total, math.floor((now - t0) * self.rate_per_s + 1e-9) + 1)
