"""A circuit breaker whose callers wait instead of failing.

closed --(``failure_threshold`` consecutive failures)--> open --(``cool_down_s``)--> half-open: one probe
goes through --success--> closed, --failure--> open again.

Unlike the textbook breaker, an open breaker does not fail calls: a payment cannot be "failed" because the
PSP is down (that would release a hold for money the PSP may still be asked to move). Callers ``await
acquire()`` until the breaker lets them through, which spares the PSP a retry storm during an outage and
does not use up the callers' retry budgets.

What counts: ``failure`` only for answers that prove the PSP is not serving (429, 503, connection refused);
``success`` for any real answer; ``release`` for a call that proves nothing either way (a time-out).
The state transitions are synchronous and read only the injected clock; only ``acquire`` waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Permit:
    """Leave to make one call. ``probe`` is set for the single call let through a half-open breaker."""

    probe: int | None = None


_CLOSED_PERMIT = Permit()


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cool_down_s: float,
        clock: Callable[[], float],
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if cool_down_s < 0:
            raise ValueError("cool_down_s must be >= 0")
        self._threshold = failure_threshold
        self._cool_down_s = cool_down_s
        self._clock = clock  # monotonic seconds
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0  # consecutive, counted while closed
        self._opened_at = 0.0
        self._probe: int | None = None  # id of the probe in flight while half-open
        self._probe_ids = itertools.count(1)
        self._changed = asyncio.Event()

    @property
    def state(self) -> BreakerState:
        return self._state

    # -- synchronous core ------------------------------------------------------------------------------

    def try_acquire(self) -> Permit | None:
        """A permit if a call may go now, else None."""
        if self._state is BreakerState.CLOSED:
            return _CLOSED_PERMIT
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self._cool_down_s:
                return None
            self._set(BreakerState.HALF_OPEN)
        if self._probe is not None:
            return None  # half-open and the one probe is still out
        self._probe = next(self._probe_ids)
        return Permit(probe=self._probe)

    def wait_hint(self) -> float | None:
        """Seconds until ``try_acquire`` may succeed by the passage of time alone; None if only a state
        change (the probe's answer) can let a caller through."""
        if self._state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self._cool_down_s - self._clock())
        return None if self._state is BreakerState.HALF_OPEN else 0.0

    def success(self, permit: Permit) -> None:
        """The PSP answered: it is serving. Closes the breaker from any state."""
        self._failures = 0
        if permit.probe is not None and permit.probe == self._probe:
            self._probe = None
        if self._state is not BreakerState.CLOSED:
            self._probe = None
            self._set(BreakerState.CLOSED)

    def failure(self, permit: Permit) -> None:
        """The PSP proved it is not serving (429, 503, connection refused)."""
        if self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()
        elif (
            self._state is BreakerState.HALF_OPEN and permit.probe is not None and permit.probe == self._probe
        ):
            self._open()
        # Otherwise a call let through before the breaker opened is reporting late: already accounted for.

    def release(self, permit: Permit) -> None:
        """The call proved nothing (a time-out, an ambiguous error): if it was the probe, let another try."""
        if permit.probe is not None and permit.probe == self._probe:
            self._probe = None
            self._notify()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._probe = None
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter; each re-checks. A fresh event for the next round of waiting.
        self._changed.set()
        self._changed = asyncio.Event()

    # -- waiting ---------------------------------------------------------------------------------------

    async def acquire(self) -> Permit:
        """Wait until a call may go, however long the breaker stays open. Cancel it to give up."""
        while True:
            permit = self.try_acquire()
            if permit is not None:
                return permit
            changed = self._changed
            hint = self.wait_hint()
            # A time-out means the cool-down elapsed: loop and try again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=hint)
