"""The PSP money client: requests built identically for every attempt, answers classified by what they prove.

The live tests talk to the real simulator app served by uvicorn on a local port (no mocks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from payments.devstack.ports import free_port
from payments.psp_sim.app import create_app
from payments.pspclient.http import PspHttp
from payments.pspclient.money import AnswerKind, InvalidPspRequest, PspClient, build_call, classify
from payments.schemas.psp import PspRequest, PspRequestKind
from tests.psp_sim.support import live_server, make_settings


def req(**overrides: object) -> PspRequest:
    values: dict[str, object] = {
        "op_id": "pay_123",
        "account_id": "acct_1",
        "kind": PspRequestKind.CHARGE,
        "amount": 1250,
        "currency": "EUR",
        "payment_method": "tok_ok",
        "issued_at": 1,
        "deadline_at": 2,
        "seq": 1,
    }
    values.update(overrides)
    return PspRequest.model_validate(values)


def test_every_attempt_sends_the_same_key_and_body() -> None:
    call = build_call(req())
    assert call == build_call(req())
    assert call.path == "/v1/charges"
    assert call.headers == {"Idempotency-Key": "pay_123"}
    assert call.body["payment_method"] == "tok_ok"
    assert call.body["metadata"] == {"account_id": "acct_1", "op_id": "pay_123"}
    transfer = build_call(req(kind=PspRequestKind.TRANSFER, payment_method=None, payee="bob"))
    assert transfer.path == "/v1/transfers"
    assert transfer.body["payee"] == "bob"


def test_a_request_missing_what_its_kind_needs_is_not_sent() -> None:
    with pytest.raises(InvalidPspRequest):
        build_call(req(payment_method=None))
    with pytest.raises(InvalidPspRequest):
        build_call(req(kind=PspRequestKind.TRANSFER, payment_method=None))


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (201, b'{"id":"tr_1","status":"succeeded","amount":5}', AnswerKind.SUCCEEDED),
        (
            402,
            b'{"id":"ch_1","status":"failed","failure_code":"card_declined","amount":5}',
            AnswerKind.FAILED,
        ),
        (201, b"<html>oops</html>", AnswerKind.AMBIGUOUS),
        (409, b'{"code":"idempotency_key_in_use"}', AnswerKind.IN_FLIGHT),
        (429, b'{"code":"rate_limited"}', AnswerKind.UNAVAILABLE),
        (503, b'{"code":"service_unavailable"}', AnswerKind.UNAVAILABLE),
        (500, b'{"code":"internal_error"}', AnswerKind.AMBIGUOUS),
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", AnswerKind.AMBIGUOUS),
        (504, b"", AnswerKind.AMBIGUOUS),
        (400, b'{"code":"idempotency_key_missing"}', AnswerKind.REJECTED),
        (422, b'{"code":"idempotency_key_reused"}', AnswerKind.REJECTED),
    ],
)
def test_classification(status: int, body: bytes, kind: AnswerKind) -> None:
    assert classify(status, body).kind is kind


def test_classification_keeps_what_the_outcome_needs() -> None:
    ok = classify(201, b'{"id":"tr_1","status":"succeeded","amount":5}')
    assert (ok.movement_id, ok.amount) == ("tr_1", 5)
    declined = classify(402, b'{"id":"ch_1","status":"failed","failure_code":"card_declined","amount":5}')
    assert (declined.movement_id, declined.failure_code) == ("ch_1", "card_declined")
    assert classify(503, b"{}", "4").retry_after_s == 4.0
    # Values the outcome schema would reject never reach it (that would stop the worker on this record).
    long_id = b'{"id":"' + b"x" * 300 + b'","amount":5}'
    assert classify(201, long_id).kind is AnswerKind.AMBIGUOUS
    odd = classify(402, b'{"id":"ch_1","failure_code":"' + b"c" * 65 + b'","amount":1e30}')
    assert (odd.kind, odd.failure_code, odd.amount) == (AnswerKind.FAILED, None, None)
    assert classify(503, b"{}", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after_s is None


@pytest.fixture
def sim_url() -> Iterator[str]:
    with live_server(create_app(make_settings())) as url:
        yield url


@asynccontextmanager
async def clients(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, PspClient]]:
    """A control client for the simulator's /_sim endpoints and the money client under test."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as control:
        client = PspClient(PspHttp(url, timeout_s=5, max_connections=10))
        try:
            yield control, client
        finally:
            await client.aclose()


async def test_retry_after_an_error_after_commit_replays_the_same_movement(sim_url: str) -> None:
    async with clients(sim_url) as (control, client):
        call = build_call(req())
        (await control.post("/_sim/faults", json={"error_after_commit": 1.0})).raise_for_status()
        first = await client.attempt(call)
        assert first.kind is AnswerKind.AMBIGUOUS
        (await control.delete("/_sim/faults")).raise_for_status()
        second = await client.attempt(call)
        assert second.kind is AnswerKind.SUCCEEDED
        movements = (await control.get("/_sim/audit")).json()["movements"]
        assert [m["id"] for m in movements] == [second.movement_id]  # one movement, the one first committed


async def test_outage_and_decline_through_the_simulator(sim_url: str) -> None:
    async with clients(sim_url) as (control, client):
        (await control.post("/_sim/faults", json={"outage_seconds": 30})).raise_for_status()
        down = await client.attempt(build_call(req()))
        assert down.kind is AnswerKind.UNAVAILABLE
        assert down.retry_after_s is not None
        (await control.delete("/_sim/faults")).raise_for_status()
        declined = await client.attempt(build_call(req(op_id="pay_9", payment_method="tok_declined")))
        assert (declined.kind, declined.failure_code) == (AnswerKind.FAILED, "card_declined")


async def test_connection_refused_is_unavailable() -> None:
    client = PspClient(PspHttp(f"http://127.0.0.1:{free_port()}", timeout_s=2, max_connections=1))
    try:
        answer = await client.attempt(build_call(req()))
    finally:
        await client.aclose()
    assert answer.kind is AnswerKind.UNAVAILABLE
    assert answer.status_code is None
