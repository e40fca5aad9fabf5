"""One logical call's attempts (``CallRun``) and the calls ``calls`` builds: pure, no I/O."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import httpx
import orjson
import pytest

from payments.client import calls
from payments.client import errors as e
from payments.client.core import Call, CallRun, Done, Fail, Sleep, Step
from payments.client.settings import ClientSettings
from payments.schemas.api import AccountOut, AccountPending, MemberChangeOut, PaymentOut

T = TypeVar("T")
WALL = datetime(2026, 12, 4, tzinfo=UTC)
JSON = {"content-type": "application/json"}
PJ = {"content-type": "application/problem+json"}
FAST = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05, max_attempts=5, deadline_s=10.0, timeout_s=2.0)


def payment_body(status: str = "pending", **extra: object) -> bytes:
    doc = {"id": "pay_1", "account_id": "acct_1", "amount": 100, "currency": "EUR", "payee": "shop"}
    return orjson.dumps(doc | {"status": status} | extra)


def problem(code: str, status: int) -> bytes:
    return orjson.dumps({"type": "t", "title": "t", "status": status, "detail": "d", "code": code})


def run_of(call: Call[PaymentOut] | None = None, settings: ClientSettings = FAST) -> CallRun[PaymentOut]:
    call = call or calls.create_payment("acct_1", amount=100, currency="EUR", payee="shop", wait_s=5)
    return CallRun(call, settings, random.Random(0), started=0.0)


def test_every_attempt_sends_the_same_key() -> None:
    run = run_of()
    keys = []
    outcomes: list[Callable[[float], Step[PaymentOut]]] = [
        lambda now: run.on_transport_error(httpx.ConnectError("refused"), now=now),
        lambda now: run.on_response(409, PJ, problem("idempotency_key_in_use", 409), now=now, wall=WALL),
        lambda now: run.on_response(503, PJ, problem("intake_unavailable", 503), now=now, wall=WALL),
        lambda now: run.on_transport_error(httpx.ReadTimeout("slow"), now=now),
    ]
    for i, outcome in enumerate(outcomes):
        keys.append(run.next_request(now=float(i)).headers["Idempotency-Key"])
        assert isinstance(outcome(float(i)), Sleep)
    keys.append(run.next_request(now=9.0).headers["Idempotency-Key"])
    step = run.on_response(
        201, {**JSON, "idempotent-replayed": "true"}, payment_body("succeeded"), now=9.0, wall=WALL
    )
    assert isinstance(step, Done)
    assert len(set(keys)) == 1
    assert keys[0] == run.call.idempotency_key
    assert (step.reply.attempts, step.reply.replayed, step.reply.final) == (5, True, True)
    assert step.reply.idempotency_key == keys[0]


def test_request_parts() -> None:
    run = run_of(
        calls.create_payment(
            "acct/1", amount=100, currency="EUR", payee="shop", wait_s=5, idempotency_key="order-7"
        )
    )
    parts = run.next_request(now=0.0)
    assert (parts.method, parts.url) == ("POST", "/v1/accounts/acct%2F1/payments")
    assert parts.headers["Idempotency-Key"] == "order-7"
    assert parts.headers["Prefer"] == "wait=5"
    assert parts.headers["Content-Type"] == "application/json"
    # None fields are left out; the server's fingerprint is of the validated body, so this is the same request.
    assert orjson.loads(parts.content or b"") == {"amount": 100, "currency": "EUR", "payee": "shop"}
    # The server holds a wait=5 answer for up to 5 s on purpose: the read time-out allows for it.
    assert parts.timeout.read == FAST.timeout_s + 5
    assert parts.timeout.connect == FAST.timeout_s


def test_the_attempt_time_out_never_reaches_past_the_deadline() -> None:
    run = run_of(settings=FAST)  # budget = deadline 10 + wait 5
    parts = run.next_request(now=14.0)
    assert parts.timeout.read == pytest.approx(1.0)
    assert parts.timeout.connect == pytest.approx(1.0)


def test_reads_send_no_key_and_no_body() -> None:
    parts = CallRun(
        calls.list_payments("acct_1", limit=2, cursor="abc"), FAST, random.Random(0), 0.0
    ).next_request(0.0)
    assert (parts.method, parts.url, parts.content, parts.params) == (
        "GET",
        "/v1/accounts/acct_1/payments",
        None,
        {"limit": 2, "cursor": "abc"},
    )
    assert "Idempotency-Key" not in parts.headers
    assert "Prefer" not in parts.headers


def test_a_fresh_key_per_logical_call_unless_given() -> None:
    a = calls.create_payment("acct_1", amount=1, currency="EUR", payee="p")
    b = calls.create_payment("acct_1", amount=1, currency="EUR", payee="p")
    assert a.idempotency_key
    assert b.idempotency_key
    assert a.idempotency_key != b.idempotency_key
    assert calls.add_member("acct_1", "carol", idempotency_key="mine").idempotency_key == "mine"


def test_invalid_input_fails_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="amount"):
        calls.create_payment("acct_1", amount=0, currency="EUR", payee="p")
    with pytest.raises(ValueError, match="wait_s"):
        calls.create_payment("acct_1", amount=1, currency="EUR", payee="p", wait_s=-1)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "idempotency_key_missing"),
        (402, "insufficient_funds"),
        (403, "not_a_member"),
        (404, "account_not_found"),
        (422, "idempotency_key_reused"),
        (422, "validation_error"),
    ],
)
def test_a_decision_fails_at_once(status: int, code: str) -> None:
    run = run_of()
    run.next_request(0.0)
    step = run.on_response(status, PJ, problem(code, status), now=0.1, wall=WALL)
    assert isinstance(step, Fail)
    assert step.error.code == code
    assert step.error.attempts == 1
    assert not step.error.retriable


def test_retry_after_is_honoured() -> None:
    run = run_of()
    run.next_request(0.0)
    step = run.on_response(429, {**PJ, "retry-after": "2"}, problem("rate_limited", 429), now=0.1, wall=WALL)
    assert isinstance(step, Sleep)
    assert step.seconds == 2.0


def test_attempts_exhausted_raise_the_last_answer() -> None:
    run = run_of(settings=FAST.model_copy(update={"max_attempts": 2}))
    run.next_request(0.0)
    assert isinstance(run.on_response(503, PJ, problem("intake_unavailable", 503), now=0.1, wall=WALL), Sleep)
    run.next_request(0.2)
    step = run.on_response(409, PJ, problem("idempotency_key_in_use", 409), now=0.3, wall=WALL)
    assert isinstance(step, Fail)
    assert isinstance(step.error, e.IdempotencyKeyInUse)
    assert step.error.retriable
    assert step.error.attempts == 2


def test_transport_failure_past_the_deadline_raises_transport_failed() -> None:
    run = run_of()
    run.next_request(0.0)
    cause = httpx.ConnectError("refused")
    step = run.on_transport_error(cause, now=15.0)  # budget: 10 s + the 5 s wait
    assert isinstance(step, Fail)
    assert isinstance(step.error, e.TransportFailed)
    assert step.error.status is None
    assert step.error.retriable
    assert step.error.__cause__ is cause
    assert step.error.idempotency_key == run.call.idempotency_key


def test_a_local_protocol_error_is_not_retried() -> None:
    run = run_of()
    run.next_request(0.0)
    step = run.on_transport_error(httpx.LocalProtocolError("bad header"), now=0.1)
    assert isinstance(step, Fail)
    assert not step.error.retriable


def test_an_answer_that_does_not_parse_is_unexpected() -> None:
    run = run_of()
    run.next_request(0.0)
    step = run.on_response(201, JSON, b'{"id": 1}', now=0.1, wall=WALL)
    assert isinstance(step, Fail)
    assert isinstance(step.error, e.UnexpectedResponse)


def test_finality_of_answers() -> None:
    def reply_of(call: Call[T], status: int, body: bytes, headers: dict[str, str] = JSON) -> Done[T]:
        run = CallRun(call, FAST, random.Random(0), 0.0)
        run.next_request(0.0)
        step = run.on_response(status, headers, body, now=0.1, wall=WALL)
        assert isinstance(step, Done)
        return step

    pay = calls.create_payment("acct_1", amount=1, currency="EUR", payee="p", wait_s=2)
    assert reply_of(pay, 202, payment_body("pending")).reply.final is False
    assert reply_of(pay, 202, payment_body("reserved")).reply.final is False
    done = reply_of(
        pay,
        201,
        payment_body("succeeded"),
        {**JSON, "preference-applied": "wait=2", "location": "/v1/payments/pay_1"},
    )
    assert (done.reply.final, done.reply.replayed, done.reply.preference_applied, done.reply.location) == (
        True,
        False,
        "wait=2",
        "/v1/payments/pay_1",
    )
    assert isinstance(done.reply.value, PaymentOut)
    assert done.reply.value.status == "succeeded"

    opened = calls.open_account(currency="EUR", members=["b", "a"])
    pending = reply_of(opened, 202, b'{"id": "acct_1", "status": "pending"}')
    assert isinstance(pending.reply.value, AccountPending)
    assert not pending.reply.final
    acct = orjson.dumps(
        {
            "id": "acct_1",
            "currency": "EUR",
            "members": ["a", "b"],
            "overdraft_limit": 0,
            "posted": 0,
            "held": 0,
            "available": 0,
            "version": 1,
        }
    )
    created = reply_of(opened, 201, acct)
    assert isinstance(created.reply.value, AccountOut)
    assert created.reply.final

    member = calls.add_member("acct_1", "carol", wait_s=1)
    body = {"account_id": "acct_1", "user_id": "carol", "action": "add", "pending": True, "version": None}
    assert not reply_of(member, 202, orjson.dumps(body)).reply.final
    shown = reply_of(member, 200, orjson.dumps(body | {"pending": False, "version": 3}))
    assert isinstance(shown.reply.value, MemberChangeOut)
    assert shown.reply.final
