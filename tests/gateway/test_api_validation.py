"""Bad input is answered with the right problem+json and publishes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from payments.settings import KafkaSettings
from tests.gateway.support import commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = resp.json()
    assert doc["code"] == code
    assert doc["status"] == status
    assert doc["type"] == f"urn:payments:problem:{code}"
    assert doc["title"]
    assert doc["detail"]
    assert doc["instance"] == resp.request.url.path
    return doc


async def test_bad_payments_publish_nothing(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db) as gw:
        key = {"Idempotency-Key": "k", "Content-Type": "application/json"}
        resp = await gw.client.post(
            url, content=b'{"amount": 5, "currency": ', headers=gw.auth("alice", **key)
        )
        _problem(resp, 400, "malformed_json")

        bad_bodies: list[tuple[dict[str, Any], str]] = [
            ({"amount": -5, "currency": "EUR", "payee": "shop"}, "amount"),
            ({"amount": 0, "currency": "EUR", "payee": "shop"}, "amount"),
            ({"amount": 12.5, "currency": "EUR", "payee": "shop"}, "amount"),
            ({"amount": "125", "currency": "EUR", "payee": "shop"}, "amount"),
            ({"amount": 5, "currency": "XXX", "payee": "shop"}, "currency"),
            ({"amount": 5, "currency": "eur", "payee": "shop"}, "currency"),
            ({"amount": 5, "currency": "EUR"}, "payee"),
            ({"amount": 5, "currency": "EUR", "payee": "shop", "extra": 1}, "extra"),
        ]
        for body, field in bad_bodies:
            resp = await gw.client.post(url, json=body, headers=gw.auth("alice", **{"Idempotency-Key": "k"}))
            doc = _problem(resp, 422, "validation_error")
            assert any(e["loc"][-1] == field for e in doc["errors"]), (body, doc)

        # the currency pre-check against the read model
        resp = await gw.client.post(
            url,
            json={"amount": 5, "currency": "USD", "payee": "shop"},
            headers=gw.auth("alice", **{"Idempotency-Key": "k"}),
        )
        _problem(resp, 422, "currency_mismatch")

        good = {"amount": 5, "currency": "EUR", "payee": "shop"}
        _problem(
            await gw.client.post(url, json=good, headers=gw.auth("alice")), 400, "idempotency_key_missing"
        )
        # bytes, so that a non-ASCII key reaches the server undecoded
        for bad_key in (b"", b"x" * 256, b'"open', "caf\u00e9".encode()):
            headers = [(k.encode(), v.encode()) for k, v in gw.auth("alice").items()]
            resp = await gw.client.post(url, json=good, headers=[*headers, (b"Idempotency-Key", bad_key)])
            _problem(resp, 400, "idempotency_key_invalid")

        # None of these claimed the key: the same key now works for a valid request.
        resp = await gw.client.post(url, json=good, headers=gw.auth("alice", **{"Idempotency-Key": "k"}))
        assert resp.status_code == 202
    published = commands(kafka_settings, expect=1)
    assert len(published) == 1


async def test_bad_adjustments_and_accounts_publish_nothing(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        url = f"/v1/accounts/{acct}/adjustments"
        for body in (
            {"amount": 0, "currency": "EUR", "reason": "x"},
            {"amount": 1.0, "currency": "EUR", "reason": "x"},
            {"amount": 5, "currency": "EUR", "reason": ""},
            {"amount": 5, "currency": "EUR"},
        ):
            resp = await gw.client.post(url, json=body, headers=gw.auth("admin", **{"Idempotency-Key": "a"}))
            _problem(resp, 422, "validation_error")
        for account_body in (
            {"currency": "EUR", "members": []},
            {"currency": "EUR", "members": ["bad id"]},
            {"currency": "EUR", "members": ["alice"], "overdraft_limit": -1},
            {"currency": "ABC", "members": ["alice"]},
        ):
            resp = await gw.client.post("/v1/accounts", json=account_body, headers=gw.auth("admin"))
            _problem(resp, 422, "validation_error")
    assert commands(kafka_settings) == []


async def test_unknown_route_and_method_are_problems(kafka_settings: KafkaSettings, redis_db: str) -> None:
    async with running_gateway(kafka_settings, redis_db, seed_users=False) as gw:
        _problem(await gw.client.get("/v2/nothing"), 404, "not_found")
        _problem(await gw.client.delete("/v1/accounts"), 405, "method_not_allowed")
