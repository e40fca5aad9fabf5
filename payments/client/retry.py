"""When to try a call again, and after how long. Pure: the clock and the random source are passed in.

Retrying is safe only when the repeat cannot be a second operation. Every call the client sends carries
one Idempotency-Key for all its attempts, so the server either replays the first answer, says it is still
working on it (409 ``idempotency_key_in_use``) or runs it for the first time (the first attempt never
arrived). So the client retries exactly the answers that mean "not decided (yet)":

* no answer at all: connection refused or dropped, time-outs (the request may or may not have arrived);
* ``409 idempotency_key_in_use``: the first attempt is still running;
* ``429`` (rate limited) and ``503`` (a dependency is down; nothing was accepted).

Every other answer is the server's decision (400, 402, 403, 404, 409 ``account_exists``, 422, 500...) and
is returned or raised as it is: trying it again would only repeat it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from payments.client.settings import ClientSettings
from payments.schemas.errors import ErrorCode

_RETRY_STATUSES = frozenset({429, 503})
_IN_USE = ErrorCode.IDEMPOTENCY_KEY_IN_USE.value


def is_retriable_status(status: int, code: str | None) -> bool:
    """An answer that means "not decided yet; the same request may get a decision later"."""
    return status in _RETRY_STATUSES or (status == 409 and code == _IN_USE)


def is_retriable_transport_error(exc: Exception) -> bool:
    """No answer for a reason that may pass: time-outs, refused or dropped connections, a server that
    closed mid-answer. Not: a malformed URL, an unsupported scheme or a protocol error on our side."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from ``now`` that a ``Retry-After`` header asks for (RFC 9110 §10.2.3: delay-seconds or an
    HTTP-date); None if absent or malformed, 0 for a date in the past."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; a naive result is an obsolete format's
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_s(retry: int, settings: ClientSettings, rng: random.Random) -> float:
    """Full jitter (uniform over [0, min(cap, base * 2^retry)]), ``retry`` counting from 0: spreads the
    retries of many clients instead of synchronising them into waves."""
    ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * math.pow(2, min(retry, 62)))
    return rng.uniform(0, ceiling)


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float = 0.0
    reason: str = ""


def decide(
    *,
    retriable: bool,
    attempts: int,
    elapsed_s: float,
    budget_s: float,
    retry_after_s: float | None,
    settings: ClientSettings,
    rng: random.Random,
) -> RetryDecision:
    """After ``attempts`` attempts (≥ 1) that took ``elapsed_s`` of ``budget_s``: retry, and after how long?

    The sleep is the jittered backoff, but at least what ``Retry-After`` asked for (capped by
    ``max_retry_after_s``). No retry whose sleep would end past the budget: giving up now, with the
    server's last answer, beats sleeping into the deadline and failing anyway.
    """
    if not retriable:
        return RetryDecision(False, reason="not retriable")
    if attempts >= settings.max_attempts:
        return RetryDecision(False, reason="attempts exhausted")
    delay = backoff_s(attempts - 1, settings, rng)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, settings.max_retry_after_s))
    if elapsed_s + delay >= budget_s:
        return RetryDecision(False, reason="deadline")
    return RetryDecision(True, delay_s=delay)
