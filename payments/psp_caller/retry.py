"""Calling the PSP until there is an answer worth reporting: bounded retries, backoff, breaker, deadline.

The budget (``max_attempts``) counts only *ambiguous* answers, the ones after which the PSP may have moved
money without telling us: when it is used up the outcome is ``unknown`` and the reconciler resolves it by
looking the key up. Answers that prove nothing was committed (PSP unavailable, rate limited, the same key
still in flight) are retried without using the budget, for as long as the operation's deadline allows:
past ``deadline_at`` the reconciler may expire the operation, so no new attempt may start after it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from payments.psp_caller.backoff import Backoff
from payments.psp_caller.breaker import CircuitBreaker, Permit
from payments.pspclient.money import RETRY_KINDS, Answer, AnswerKind
from payments.schemas.psp import PspOutcomeStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int  # ambiguous answers tolerated before giving up as unknown
    backoff: Backoff

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


@dataclass(frozen=True)
class Final:
    """What to report for an operation once retrying stops."""

    status: PspOutcomeStatus
    answer: Answer | None  # the last answer, None if no attempt could be made
    attempts: int  # attempts made, of every kind
    reason: str  # why: the answer kind, "budget_exhausted", "deadline", "rejected"


@dataclass(frozen=True)
class RetryDeps:
    """The outside world of the retry loop, injected so that it is testable without time or network."""

    breaker: CircuitBreaker
    policy: RetryPolicy
    rng: random.Random
    now_ms: Callable[[], int]  # wall clock, ms since the epoch (deadlines are wall-clock times)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def call_until_final(
    attempt: Callable[[], Awaitable[Answer]],
    *,
    deadline_ms: int,
    deps: RetryDeps,
    on_retrying: Callable[[], Awaitable[None]],
    op: str = "-",
) -> Final:
    """Call ``attempt`` until it gives a final answer, the budget is spent or the deadline passes.

    ``on_retrying`` is awaited once, before the first wait (a backoff or an open breaker), so that the
    caller can report that the PSP leg is slow. ``op`` only labels log lines.
    """
    ambiguous = retries = attempts = 0
    announced = False
    last: Answer | None = None
    while True:
        remaining_s = (deadline_ms - deps.now_ms()) / 1000
        if remaining_s <= 0:
            return Final(PspOutcomeStatus.UNKNOWN, last, attempts, "deadline")
        permit = deps.breaker.try_acquire()
        if permit is None:
            if not announced:
                announced = True
                await on_retrying()
            try:
                # Waiting for the PSP to come back costs no budget, but no attempt starts past the deadline.
                permit = await asyncio.wait_for(deps.breaker.acquire(), timeout=remaining_s)
            except TimeoutError:
                return Final(PspOutcomeStatus.UNKNOWN, last, attempts, "deadline")
        answer = await _attempt(attempt, deps.breaker, permit)
        attempts += 1
        last = answer
        if answer.kind is AnswerKind.SUCCEEDED:
            return Final(PspOutcomeStatus.SUCCEEDED, answer, attempts, answer.kind.value)
        if answer.kind is AnswerKind.FAILED:
            return Final(PspOutcomeStatus.FAILED, answer, attempts, answer.kind.value)
        if answer.kind not in RETRY_KINDS:
            log.error(
                "PSP rejected op=%s status=%s code=%s: a bug in the request; reporting unknown",
                op,
                answer.status_code,
                answer.detail,
            )
            return Final(PspOutcomeStatus.UNKNOWN, answer, attempts, "rejected")
        if answer.kind is AnswerKind.AMBIGUOUS:
            ambiguous += 1
            if ambiguous >= deps.policy.max_attempts:
                log.warning("op=%s still ambiguous after %d attempts; reporting unknown", op, attempts)
                return Final(PspOutcomeStatus.UNKNOWN, answer, attempts, "budget_exhausted")
        if not announced:
            announced = True
            await on_retrying()
        await deps.sleep(min(_delay(answer, retries, deps), max(0.0, remaining_s)))
        retries += 1


async def _attempt(
    attempt: Callable[[], Awaitable[Answer]], breaker: CircuitBreaker, permit: Permit
) -> Answer:
    try:
        answer = await attempt()
    except BaseException:
        breaker.release(permit)  # cancelled (shutdown): proves nothing about the PSP
        raise
    if answer.kind is AnswerKind.UNAVAILABLE:
        breaker.failure(permit)
    elif answer.status_code is None:
        breaker.release(permit)  # a time-out or dropped connection: no evidence either way
    else:
        breaker.success(permit)  # any other HTTP answer: the PSP is serving
    return answer


def _delay(answer: Answer, retry: int, deps: RetryDeps) -> float:
    delay = deps.policy.backoff.delay(retry, deps.rng)
    if answer.retry_after_s is not None:
        # Honour the PSP's Retry-After, but never beyond our own cap: the breaker handles long outages.
        delay = max(delay, min(answer.retry_after_s, deps.policy.backoff.cap_s))
    return delay
