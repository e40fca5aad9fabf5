"""Card numbers never enter: a PAN anywhere in a request (body field, path, query) is refused with
422 ``card_number_not_allowed`` before anything is claimed, published, stored or logged, and the answer
does not echo it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from payments.settings import KafkaSettings
from tests.gateway.support import commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAN = "4111111111111111"
SPACED = "4111 1111 1111 1111"
DASHED = "3782-822463-10005"  # Amex
DIGITS_ONLY = ("4111111111111111", "378282246310005")


def _refused(resp: Any, *, instance: bool = True) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = resp.json()
    assert doc["code"] == "card_number_not_allowed"
    assert doc["type"] == "urn:payments:problem:card_number_not_allowed"
    if instance:
        assert doc["instance"] == resp.request.url.path
    else:
        assert doc["instance"] is None  # the path held the number
    for digits in DIGITS_ONLY:
        assert digits not in resp.text.replace(" ", "").replace("-", "")
    return doc


def _no_trace_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Every server-side logger; the test's own HTTP client (httpx, httpcore) logs the URLs it sends.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server  # the capture works: the gateway logs at start
    text = "\n".join(r.getMessage() + repr(r.args) for r in server)
    flat = text.replace(" ", "").replace("-", "")
    for digits in DIGITS_ONLY:
        assert digits not in flat


def _no_idempotency_records(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter("idem:*")) == []
    finally:
        client.close()


async def test_card_numbers_in_bodies_are_refused_and_leave_no_trace(
    kafka_settings: KafkaSettings, redis_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acct = new_account_id()
    put_account(redis_db, acct)
    base = f"/v1/accounts/{acct}"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("alice", "/payments", {"amount": 5, "currency": "EUR", "payee": PAN}),
        ("alice", "/payments", {"amount": 5, "currency": "EUR", "payee": "shop", "description": SPACED}),
        ("alice", "/payments", {"amount": 5, "currency": "EUR", "payee": "shop", "description": f"card {DASHED}"}),
        ("alice", "/payments", {"amount": 5, "currency": "EUR", "payee": "shop", "card": PAN}),  # unknown field
        ("alice", "/payments", {"amount": 5, "currency": "EUR", "payee": "shop", PAN: "x"}),  # as a key
        ("alice", "/top-ups", {"amount": 5, "currency": "EUR", "payment_method": PAN}),
        ("alice", "/top-ups", {"amount": 5, "currency": "EUR", "payment_method": SPACED}),
        ("admin", "/adjustments", {"amount": 5, "currency": "EUR", "reason": f"refund to {SPACED}"}),
        ("admin", "/members", {"user_id": PAN}),
    ]  # fmt: skip
    async with running_gateway(kafka_settings, redis_db) as gw:
        for i, (user, path, body) in enumerate(requests):
            resp = await gw.client.post(
                base + path, json=body, headers=gw.auth(user, **{"Idempotency-Key": f"k{i}"})
            )
            doc = _refused(resp)
            assert doc["errors"][0]["type"] == "card_number_not_allowed", body
        resp = await gw.client.post(
            "/v1/accounts",
            json={"currency": "EUR", "members": ["alice", DASHED]},
            headers=gw.auth("admin", **{"Idempotency-Key": "open"}),
        )
        assert "members.1" in _refused(resp)["errors"][0]["msg"]  # where, never what
        _no_idempotency_records(redis_db)
        # card tokens and Luhn-invalid digit strings still pass
        ok = await gw.client.post(
            base + "/top-ups",
            json={"amount": 5, "currency": "EUR", "payment_method": "tok_ok"},
            headers=gw.auth("alice", **{"Idempotency-Key": "good-1"}),
        )
        assert ok.status_code == 202, ok.text
        ok = await gw.client.post(
            base + "/payments",
            json={"amount": 5, "currency": "EUR", "payee": "4111111111111112", "description": "order 1234"},
            headers=gw.auth("alice", **{"Idempotency-Key": "good-2"}),
        )
        assert ok.status_code == 202, ok.text
    published = commands(kafka_settings, expect=2)
    assert len(published) == 2  # only the two good requests
    assert PAN not in repr(published)
    _no_trace_in_logs(caplog)


async def test_card_numbers_in_the_url_are_refused_before_routing(
    kafka_settings: KafkaSettings, redis_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        for method, url in [
            ("GET", f"/v1/payments/{PAN}"),
            ("GET", f"/v1/accounts/{PAN}"),
            ("DELETE", f"/v1/accounts/{acct}/members/{PAN}"),
            ("GET", f"/v1/accounts/{acct}/payments?cursor=4111%201111%201111%201111"),
            ("GET", f"/v1/accounts/{acct}/ledger?cursor=4111+1111+1111+1111"),
            ("GET", f"/no/such/route/{PAN}"),  # before routing: not even a 404 that names the path
        ]:
            _refused(await gw.client.request(method, url, headers=gw.auth("admin")), instance=False)
        # without credentials too: nothing about the caller is looked at first
        _refused(await gw.client.get(f"/v1/payments/{PAN}"), instance=False)
        # ordinary ids and cursors still work
        ok = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))
        assert ok.status_code == 200
        assert (
            gw.metric("payments_gateway_requests_total", route="unmatched", method="GET", status="422") >= 1
        )  # refusals are counted
    _no_idempotency_records(redis_db)
    _no_trace_in_logs(caplog)
