"""``Client`` and ``AsyncClient`` driving ``CallRun`` over an in-memory transport (``httpx.MockTransport``:
no sockets). What matters here is the loop both clients share: the same key on every attempt, the sleeps
asked for, and what is raised. The real stack is in test_client_e2e.py."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest

from payments.client import AsyncClient, Client, ClientSettings
from payments.client import errors as e

SETTINGS = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.02, max_attempts=5, deadline_s=30)
PAYMENT = {"id": "pay_1", "account_id": "acct_1", "amount": 100, "currency": "EUR", "payee": "shop"}


def problem(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "t", "title": "t", "status": status, "detail": "d", "code": code}
    return httpx.Response(
        status,
        content=orjson.dumps(body),
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


def ok(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests in order from a script; an exception in it is raised instead (no answer)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]


def sync_client(script: Script, sleeps: list[float]) -> Client:
    return Client(
        "http://gw",
        "key",
        settings=SETTINGS,
        transport=httpx.MockTransport(script),
        rng=random.Random(0),
        sleep=sleeps.append,
    )


def test_transient_answers_are_retried_with_one_key_and_retry_after() -> None:
    script = Script(
        httpx.ConnectError("refused"),
        problem(503, "intake_unavailable", {"Retry-After": "1"}),
        problem(409, "idempotency_key_in_use", {"Retry-After": "2"}),
        problem(429, "rate_limited", {"Retry-After": "1"}),
        ok(
            201,
            PAYMENT | {"status": "succeeded"},
            {"Idempotent-Replayed": "true", "Preference-Applied": "wait=3"},
        ),
    )
    sleeps: list[float] = []
    with sync_client(script, sleeps) as client:
        reply = client.create_payment("acct_1", amount=100, currency="EUR", payee="shop", wait_s=3)
    keys = script.keys()
    assert len(keys) == 5
    assert len(set(keys)) == 1
    assert keys[0] == reply.idempotency_key
    assert all(r.headers["prefer"] == "wait=3" for r in script.requests)
    assert all(r.headers["authorization"] == "Bearer key" for r in script.requests)
    assert sleeps[0] <= 0.01  # no Retry-After: jittered backoff
    assert sleeps[1:] == [1.0, 2.0, 1.0]  # Retry-After honoured
    assert (reply.status_code, reply.final, reply.replayed, reply.attempts) == (201, True, True, 5)
    assert reply.preference_applied == "wait=3"
    assert reply.value.status == "succeeded"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (402, "insufficient_funds", e.InsufficientFunds),
        (403, "not_a_member", e.NotAMember),
        (404, "account_not_found", e.AccountNotFound),
        (422, "idempotency_key_reused", e.IdempotencyKeyReused),
        (400, "idempotency_key_invalid", e.IdempotencyKeyInvalid),
    ],
)
def test_a_decision_is_raised_after_one_attempt(
    status: int, code: str, cls: type[e.PaymentsClientError]
) -> None:
    script = Script(problem(status, code))
    sleeps: list[float] = []
    with sync_client(script, sleeps) as client, pytest.raises(cls) as info:
        client.create_payment("acct_1", amount=100, currency="EUR", payee="shop", idempotency_key="order-1")
    assert (len(script.requests), sleeps) == (1, [])
    assert (info.value.attempts, info.value.idempotency_key) == (1, "order-1")


def test_gets_are_retried_on_transport_errors_and_503_only() -> None:
    script = Script(
        httpx.ReadTimeout("slow"),
        problem(503, "read_model_rebuilding", {"Retry-After": "1"}),
        ok(200, PAYMENT | {"status": "reserved"}),
        problem(404, "payment_not_found"),
    )
    sleeps: list[float] = []
    with sync_client(script, sleeps) as client:
        assert client.get_payment("pay_1").status == "reserved"
        assert script.keys() == [None, None, None]
        with pytest.raises(e.PaymentNotFound):
            client.get_payment("pay_2")
    assert len(script.requests) == 4
    assert len(sleeps) == 2


def test_retries_give_up_with_the_last_answer_when_attempts_run_out() -> None:
    script = Script(*[problem(503, "intake_unavailable") for _ in range(SETTINGS.max_attempts)])
    sleeps: list[float] = []
    with sync_client(script, sleeps) as client, pytest.raises(e.IntakeUnavailable) as info:
        client.adjust_balance("acct_1", amount=-5, currency="EUR", reason="fix")
    assert info.value.retriable
    assert info.value.attempts == SETTINGS.max_attempts
    assert len(set(script.keys())) == 1


def test_no_answer_at_all_raises_transport_failed_with_the_key_to_retry_later() -> None:
    script = Script(*[httpx.ConnectError("refused") for _ in range(SETTINGS.max_attempts)])
    with sync_client(script, []) as client, pytest.raises(e.TransportFailed) as info:
        client.create_top_up("acct_1", amount=5, currency="EUR", payment_method="tok_ok")
    assert info.value.status is None
    assert info.value.idempotency_key == script.keys()[0]


def page(items: list[int], next_cursor: str | None) -> httpx.Response:
    return ok(
        200,
        {
            "items": [PAYMENT | {"id": f"pay_{i}", "status": "succeeded"} for i in items],
            "next_cursor": next_cursor,
        },
    )


def test_paging_follows_next_cursor_to_the_end() -> None:
    script = Script(
        page([1, 2], "c1"), problem(503, "dependency_unavailable"), page([3, 4], "c2"), page([5], None)
    )
    with sync_client(script, []) as client:
        ids = [p.id for p in client.iter_payments("acct_1", page_size=2)]
    assert ids == [f"pay_{i}" for i in range(1, 6)]
    assert [r.url.params.get("cursor") for r in script.requests] == [None, "c1", "c1", "c2"]
    assert all(r.url.params["limit"] == "2" for r in script.requests)


async def test_the_async_client_runs_the_same_loop() -> None:
    script = Script(
        httpx.RemoteProtocolError("server disconnected"),
        problem(409, "idempotency_key_in_use", {"Retry-After": "1"}),
        ok(202, PAYMENT | {"status": "pending"}, {"Idempotent-Replayed": "true"}),
        page([1], "c1"),
        page([2], None),
    )
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    transport = httpx.MockTransport(script)
    async with AsyncClient("http://gw", "k", settings=SETTINGS, transport=transport, sleep=sleep) as client:
        reply = await client.create_payment(
            "acct_1", amount=100, currency="EUR", payee="shop", idempotency_key="o-9"
        )
        ids = [p.id async for p in client.iter_payments("acct_1")]
    assert script.keys()[:3] == ["o-9", "o-9", "o-9"]
    assert (reply.status_code, reply.final, reply.replayed, reply.attempts) == (202, False, True, 3)
    assert sleeps[1] == 1.0
    assert ids == ["pay_1", "pay_2"]


def test_local_validation_fails_before_any_request() -> None:
    script = Script()
    with sync_client(script, []) as client, pytest.raises(ValueError, match="currency"):
        client.create_payment("acct_1", amount=100, currency="XXX", payee="shop")
    assert script.requests == []
