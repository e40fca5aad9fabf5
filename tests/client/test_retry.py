"""The retry decisions and Retry-After parsing: pure, no I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from payments.client.retry import (
    backoff_s,
    decide,
    is_retriable_status,
    is_retriable_transport_error,
    parse_retry_after,
)
from payments.client.settings import ClientSettings

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
REQ = httpx.Request("POST", "http://x/v1/accounts/a/payments")


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (409, "idempotency_key_in_use", True),
        (429, "rate_limited", True),
        (503, "intake_unavailable", True),
        (503, "read_model_rebuilding", True),
        (503, None, True),
        # Decisions: repeating them would only repeat them.
        (400, "idempotency_key_missing", False),
        (402, "insufficient_funds", False),
        (402, "psp_declined", False),
        (403, "not_a_member", False),
        (404, "account_not_found", False),
        (409, "account_exists", False),
        (409, "psp_discrepancy", False),
        (422, "idempotency_key_reused", False),
        (422, "validation_error", False),
        (500, "internal_error", False),
        (502, None, False),
    ],
)
def test_only_undecided_answers_are_retriable(status: int, code: str | None, expected: bool) -> None:
    assert is_retriable_status(status, code) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("refused", request=REQ), True),
        (httpx.ConnectTimeout("slow", request=REQ), True),
        (httpx.ReadTimeout("slow", request=REQ), True),
        (httpx.ReadError("reset", request=REQ), True),
        (httpx.RemoteProtocolError("server disconnected", request=REQ), True),
        (httpx.PoolTimeout("pool", request=REQ), True),
        (httpx.LocalProtocolError("our bug", request=REQ), False),
        (httpx.UnsupportedProtocol("ftp://", request=REQ), False),
    ],
)
def test_transport_errors_that_may_pass_are_retriable(exc: Exception, expected: bool) -> None:
    assert is_retriable_transport_error(exc) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (format_datetime(NOW + timedelta(seconds=7), usegmt=True), 7.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Fri, 04 Dec 2026 12:00:05 GMT", 5.0),
        ("Friday, 04-Dec-26 12:00:09 GMT", 9.0),  # RFC 850, obsolete but still to be accepted
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_full_jitter_stays_within_the_exponential_ceiling_and_spreads() -> None:
    s = ClientSettings(backoff_base_s=0.1, backoff_cap_s=2.0)
    rng = random.Random(1)
    for retry, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (4, 1.6), (5, 2.0), (40, 2.0), (10_000, 2.0)]:
        delays = [backoff_s(retry, s, rng) for _ in range(500)]
        assert all(0 <= d <= ceiling for d in delays)
        # Full jitter: the whole range is used, not a fixed delay plus a little noise.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def _decide(**kw: object) -> tuple[bool, float, str]:
    args: dict[str, object] = {
        "retriable": True,
        "attempts": 1,
        "elapsed_s": 0.0,
        "budget_s": 30.0,
        "retry_after_s": None,
        "settings": ClientSettings(backoff_base_s=0.1, backoff_cap_s=1.0, max_attempts=4),
        "rng": random.Random(3),
    }
    d = decide(**(args | kw))  # type: ignore[arg-type]
    return d.retry, d.delay_s, d.reason


def test_a_decision_is_never_retried() -> None:
    assert _decide(retriable=False) == (False, 0.0, "not retriable")


def test_retries_stop_after_max_attempts() -> None:
    assert _decide(attempts=3)[0] is True
    assert _decide(attempts=4) == (False, 0.0, "attempts exhausted")


def test_retry_after_is_a_lower_bound_on_the_sleep() -> None:
    retry, delay, _ = _decide(retry_after_s=2.0)
    assert retry
    assert delay == 2.0


def test_retry_after_is_capped() -> None:
    s = ClientSettings(max_retry_after_s=3.0)
    retry, delay, _ = _decide(retry_after_s=3600.0, settings=s)
    assert retry
    assert delay == 3.0


def test_no_sleep_past_the_deadline() -> None:
    assert _decide(elapsed_s=29.0, retry_after_s=2.0) == (False, 0.0, "deadline")
    assert _decide(elapsed_s=27.0, retry_after_s=2.0)[0] is True


def test_settings_refuse_a_cap_below_the_base() -> None:
    with pytest.raises(ValueError, match="backoff_cap_s"):
        ClientSettings(backoff_base_s=2.0, backoff_cap_s=1.0)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_CLIENT_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PAYMENTS_CLIENT_DEADLINE_S", "4.5")
    s = ClientSettings.from_env()
    assert (s.max_attempts, s.deadline_s, s.timeout_s) == (2, 4.5, ClientSettings().timeout_s)
