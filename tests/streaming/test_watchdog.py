"""The watchdog fires only for a guarded call that overran its timeout plus the margin."""

from __future__ import annotations

from payments.streaming.watchdog import Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fires_once_a_guarded_call_overruns_timeout_plus_margin() -> None:
    clock, stuck = Clock(), list[str]()
    dog = Watchdog(5, clock=clock, on_stuck=stuck.append)
    with dog.guard("send_offsets_to_transaction", 30):
        clock.now += 34.9
        assert not dog.check()
        clock.now += 0.2
        assert dog.check()
    assert stuck == ["send_offsets_to_transaction"]


def test_quiet_between_calls_and_after_a_call_returned() -> None:
    clock, stuck = Clock(), list[str]()
    dog = Watchdog(5, clock=clock, on_stuck=stuck.append)
    assert not dog.check()
    with dog.guard("commit_transaction", 30):
        clock.now += 10
    clock.now += 1_000
    assert not dog.check()
    assert stuck == []


def test_each_call_gets_its_own_deadline() -> None:
    clock, stuck = Clock(), list[str]()
    dog = Watchdog(1, clock=clock, on_stuck=stuck.append)
    with dog.guard("a", 10):
        clock.now += 9
    with dog.guard("b", 10):
        clock.now += 9
        assert not dog.check()
    assert stuck == []
