"""The waiting circuit breaker: transitions on an injected clock, and callers that wait instead of failing."""

from __future__ import annotations

import asyncio
import time

import pytest

from payments.psp_caller.breaker import BreakerState, CircuitBreaker, Permit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, cool_down_s: float = 5.0) -> tuple[CircuitBreaker, Clock, list[BreakerState]]:
    clock, changes = Clock(), list[BreakerState]()
    breaker = CircuitBreaker(
        failure_threshold=threshold, cool_down_s=cool_down_s, clock=clock, on_change=changes.append
    )
    return breaker, clock, changes


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # A call, not an attribute: mypy would narrow ``b.state`` after one assert and flag the next one.
    return breaker.state


def trip(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        permit = breaker.try_acquire()
        assert permit is not None
        breaker.failure(permit)


def test_opens_after_threshold_consecutive_failures_only() -> None:
    b, _, changes = make(threshold=3)
    trip(b, 2)
    b.success(Permit())  # a success in between resets the count
    trip(b, 2)
    assert state_of(b) is BreakerState.CLOSED
    trip(b, 1)
    assert state_of(b) is BreakerState.OPEN
    assert changes == [BreakerState.OPEN]
    assert b.try_acquire() is None


def test_half_open_after_cool_down_lets_exactly_one_probe() -> None:
    b, clock, _ = make(threshold=1, cool_down_s=5)
    trip(b, 1)
    clock.now += 4.9
    assert b.try_acquire() is None
    assert b.wait_hint() == pytest.approx(0.1)
    clock.now += 0.1
    probe = b.try_acquire()
    assert probe is not None
    assert probe.probe is not None
    assert state_of(b) is BreakerState.HALF_OPEN
    assert b.try_acquire() is None  # everyone else waits for the probe's answer
    assert b.wait_hint() is None


def test_probe_success_closes() -> None:
    b, clock, changes = make(threshold=1, cool_down_s=1)
    trip(b, 1)
    clock.now += 1
    probe = b.try_acquire()
    assert probe is not None
    b.success(probe)
    assert state_of(b) is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert b.try_acquire() == Permit()


def test_probe_failure_reopens_for_a_full_cool_down() -> None:
    b, clock, _ = make(threshold=1, cool_down_s=2)
    trip(b, 1)
    clock.now += 2
    probe = b.try_acquire()
    assert probe is not None
    clock.now += 0.5
    b.failure(probe)
    assert state_of(b) is BreakerState.OPEN
    assert b.wait_hint() == pytest.approx(2.0)


def test_late_failures_of_calls_from_before_the_opening_are_ignored() -> None:
    b, clock, _ = make(threshold=2, cool_down_s=1)
    early = [b.try_acquire() for _ in range(5)]  # in flight when the PSP goes down
    for permit in early[:2]:
        assert permit is not None
        b.failure(permit)
    assert state_of(b) is BreakerState.OPEN
    clock.now += 1
    probe = b.try_acquire()
    assert probe is not None
    for permit in early[2:]:
        assert permit is not None
        b.failure(permit)  # not the probe: does not re-open or extend anything
    assert state_of(b) is BreakerState.HALF_OPEN
    b.success(probe)
    assert state_of(b) is BreakerState.CLOSED


def test_a_neutral_probe_lets_the_next_caller_probe() -> None:
    b, clock, _ = make(threshold=1, cool_down_s=1)
    trip(b, 1)
    clock.now += 1
    probe = b.try_acquire()
    assert probe is not None
    b.release(probe)  # e.g. it timed out: no evidence either way
    assert state_of(b) is BreakerState.HALF_OPEN
    second = b.try_acquire()
    assert second is not None
    assert second.probe != probe.probe
    b.failure(probe)  # the old probe reporting again changes nothing
    assert state_of(b) is BreakerState.HALF_OPEN


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0, cool_down_s=1, clock=time.monotonic)
    with pytest.raises(ValueError, match="cool_down_s"):
        CircuitBreaker(failure_threshold=1, cool_down_s=-1, clock=time.monotonic)


async def test_waiters_are_held_while_open_and_released_on_recovery() -> None:
    # Real monotonic clock with a short cool-down: acquire() waits on asyncio time.
    b = CircuitBreaker(failure_threshold=1, cool_down_s=0.05, clock=time.monotonic)
    trip(b, 1)
    waiters = [asyncio.create_task(b.acquire()) for _ in range(50)]
    done, _ = await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1  # the probe; the other 49 are waiting, not failed
    probe = done.pop().result()
    assert probe.probe is not None
    await asyncio.sleep(0.1)
    assert sum(w.done() for w in waiters) == 1
    b.success(probe)
    permits = await asyncio.wait_for(asyncio.gather(*waiters), timeout=1.0)
    assert sum(p.probe is not None for p in permits) == 1  # only the probe; the rest went through closed
    assert state_of(b) is BreakerState.CLOSED


async def test_failed_probe_keeps_waiters_waiting_until_the_next_probe() -> None:
    b = CircuitBreaker(failure_threshold=1, cool_down_s=0.05, clock=time.monotonic)
    trip(b, 1)
    first = await asyncio.wait_for(b.acquire(), timeout=1.0)
    waiter = asyncio.create_task(b.acquire())
    await asyncio.sleep(0.01)
    b.failure(first)
    second = await asyncio.wait_for(waiter, timeout=1.0)  # after another cool-down, as the next probe
    assert second.probe is not None
    assert second.probe != first.probe
