"""The retry loop: what costs budget, what waits, when it gives up. Scripted answers, fake time."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

import pytest

from payments.psp_caller.backoff import Backoff
from payments.psp_caller.breaker import BreakerState, CircuitBreaker
from payments.psp_caller.retry import Final, RetryDeps, RetryPolicy, call_until_final
from payments.pspclient.money import Answer, AnswerKind
from payments.schemas.psp import PspOutcomeStatus

OK = Answer(AnswerKind.SUCCEEDED, 201, "tr_1", amount=100)
DECLINED = Answer(AnswerKind.FAILED, 402, "ch_1", failure_code="card_declined", amount=100)
TIMEOUT = Answer(AnswerKind.AMBIGUOUS, None, detail="ReadTimeout")
E500 = Answer(AnswerKind.AMBIGUOUS, 500, detail="internal_error")
E503 = Answer(AnswerKind.UNAVAILABLE, 503, retry_after_s=4.0, detail="service_unavailable")
E409 = Answer(AnswerKind.IN_FLIGHT, 409, detail="idempotency_key_in_use")
E422 = Answer(AnswerKind.REJECTED, 422, detail="idempotency_key_reused")


class World:
    """Fake wall clock that advances only when the loop sleeps; records every sleep."""

    def __init__(self, threshold: int = 1_000, cool_down_s: float = 0.0) -> None:
        self.now = 1_700_000_000_000
        self.sleeps: list[float] = []
        self.retrying = 0
        self.breaker = CircuitBreaker(
            failure_threshold=threshold, cool_down_s=cool_down_s, clock=time.monotonic
        )

    def deps(self, max_attempts: int = 6) -> RetryDeps:
        return RetryDeps(
            breaker=self.breaker,
            policy=RetryPolicy(max_attempts=max_attempts, backoff=Backoff(base_s=0.1, cap_s=2.0)),
            rng=random.Random(1),
            now_ms=lambda: self.now,
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * 1000)

    async def on_retrying(self) -> None:
        self.retrying += 1


def script(*answers: Answer) -> tuple[Callable[[], Awaitable[Answer]], list[int]]:
    calls = [0]
    it = iter(answers)

    async def attempt() -> Answer:
        calls[0] += 1
        return next(it)

    return attempt, calls


async def run(
    world: World,
    attempt: Callable[[], Awaitable[Answer]],
    *,
    deadline_in_ms: int = 600_000,
    max_attempts: int = 6,
) -> Final:
    return await call_until_final(
        attempt,
        deadline_ms=world.now + deadline_in_ms,
        deps=world.deps(max_attempts),
        on_retrying=world.on_retrying,
    )


async def test_first_answer_final_means_no_processing_and_no_sleep() -> None:
    w = World()
    final = await run(w, script(DECLINED)[0])
    assert (final.status, final.attempts, final.answer) == (PspOutcomeStatus.FAILED, 1, DECLINED)
    assert w.retrying == 0
    assert w.sleeps == []


async def test_ambiguous_answers_use_the_budget_then_unknown() -> None:
    w = World()
    attempt, calls = script(*[TIMEOUT, E500] * 3)
    final = await run(w, attempt, max_attempts=6)
    assert final.status is PspOutcomeStatus.UNKNOWN
    assert final.reason == "budget_exhausted"
    assert calls[0] == 6
    assert w.retrying == 1  # processing announced once, not per retry


async def test_success_within_budget() -> None:
    w = World()
    final = await run(w, script(TIMEOUT, E500, TIMEOUT, TIMEOUT, E500, OK)[0], max_attempts=6)
    assert final.status is PspOutcomeStatus.SUCCEEDED
    assert final.answer == OK


async def test_not_committed_answers_are_free() -> None:
    # 40 "PSP down" and "key in flight" answers do not use a budget of 2 ambiguous attempts.
    w = World()
    final = await run(w, script(*[E503, E409] * 20, TIMEOUT, OK)[0], max_attempts=2)
    assert final.status is PspOutcomeStatus.SUCCEEDED
    assert final.attempts == 42


async def test_retry_after_is_honoured_up_to_the_cap() -> None:
    w = World()
    await run(w, script(E503, OK)[0])
    assert w.sleeps == [2.0]  # Retry-After 4 s, backoff cap 2 s


async def test_rejected_is_unknown_without_retrying() -> None:
    w = World()
    attempt, calls = script(E422, OK)
    final = await run(w, attempt)
    assert (final.status, final.reason, calls[0]) == (PspOutcomeStatus.UNKNOWN, "rejected", 1)


async def test_no_attempt_starts_past_the_deadline() -> None:
    w = World()
    final = await run(w, script(*[E503] * 10_000)[0], deadline_in_ms=5_000)
    assert final.status is PspOutcomeStatus.UNKNOWN
    assert final.reason == "deadline"
    assert final.answer == E503


async def test_open_breaker_waits_without_calling_until_the_deadline() -> None:
    w = World(threshold=1, cool_down_s=60)
    attempt, calls = script(*[E503] * 10)
    final = await run(w, attempt, deadline_in_ms=50)  # breaker wait uses real time: keep it short
    assert final.reason == "deadline"
    assert calls[0] == 1  # the one that opened the breaker; the rest of the time was spent waiting
    assert w.breaker.state is BreakerState.OPEN


async def test_breaker_failures_and_successes_are_reported() -> None:
    w = World(threshold=3, cool_down_s=0)
    await run(w, script(E503, E503, OK)[0])
    assert w.breaker.state is BreakerState.CLOSED


def test_policy_needs_one_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0, backoff=Backoff(0.1, 1))
