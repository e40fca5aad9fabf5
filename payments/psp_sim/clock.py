"""The clock the simulator reads, injected so that tests can move time instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC: stamps movements and webhook timestamps."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: measures outage windows."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()
