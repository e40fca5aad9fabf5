"""Authentication, roles and the membership pre-check (real Redis and broker)."""

from __future__ import annotations

import pytest

from payments.settings import KafkaSettings
from tests.gateway.support import commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 100, "currency": "EUR", "payee": "shop"}


async def test_missing_or_unknown_key_is_401(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        for headers in ({}, {"Authorization": "Bearer pk_nope"}, {"Authorization": "Basic YTpi"}):
            resp = await gw.client.get(f"/v1/accounts/{acct}", headers=headers)
            assert resp.status_code == 401
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.headers["www-authenticate"] == "Bearer"
            assert resp.json()["code"] == "unauthenticated"
        resp = await gw.client.post(
            f"/v1/accounts/{acct}/payments", json=PAY, headers={"Idempotency-Key": "k"}
        )
        assert resp.status_code == 401
    assert commands(kafka_settings) == []


async def test_read_access(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct, posted=500, version=3)
    async with running_gateway(kafka_settings, redis_db) as gw:
        ok = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))
        assert ok.status_code == 200
        assert ok.json() == {
            "id": acct,
            "currency": "EUR",
            "members": ["alice", "bob"],
            "overdraft_limit": 0,
            "posted": 500,
            "held": 0,
            "available": 500,
            "version": 3,
        }
        # admins read every account
        assert (await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("admin"))).status_code == 200

        forbidden = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("carol"))
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "not_a_member"

        for unknown in ("acct_unknown", "not%20an%20id"):
            missing = await gw.client.get(f"/v1/accounts/{unknown}", headers=gw.auth("alice"))
            assert missing.status_code == 404
            assert missing.json()["code"] == "account_not_found"


async def test_intake_access(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        resp = await gw.client.post(
            f"/v1/accounts/{acct}/payments", json=PAY, headers=gw.auth("carol", **{"Idempotency-Key": "k1"})
        )
        assert (resp.status_code, resp.json()["code"]) == (403, "not_a_member")

        resp = await gw.client.post(
            "/v1/accounts/acct_nope/payments", json=PAY, headers=gw.auth("alice", **{"Idempotency-Key": "k2"})
        )
        assert (resp.status_code, resp.json()["code"]) == (404, "account_not_found")

        # members cannot adjust balances or open accounts
        resp = await gw.client.post(
            f"/v1/accounts/{acct}/adjustments",
            json={"amount": 5, "currency": "EUR", "reason": "x"},
            headers=gw.auth("alice", **{"Idempotency-Key": "k3"}),
        )
        assert (resp.status_code, resp.json()["code"]) == (403, "forbidden")
        resp = await gw.client.post(
            "/v1/accounts", json={"currency": "EUR", "members": ["alice"]}, headers=gw.auth("alice")
        )
        assert (resp.status_code, resp.json()["code"]) == (403, "forbidden")
    assert commands(kafka_settings) == []


async def test_payment_read_access(kafka_settings: KafkaSettings, redis_db: str) -> None:
    from tests.gateway.support import FakeProcessor

    acct = new_account_id()
    snap = put_account(redis_db, acct, posted=1000)
    fake = FakeProcessor(kafka_settings, redis_db)
    fake.seed(snap)
    try:
        async with running_gateway(kafka_settings, redis_db) as gw:
            resp = await gw.client.post(
                f"/v1/accounts/{acct}/payments",
                json=PAY,
                headers=gw.auth("alice", **{"Idempotency-Key": "p"}),
            )
            assert resp.status_code == 202
            payment_id = resp.json()["id"]
            await fake.process_one_async()
            for user in ("alice", "bob", "admin"):
                got = await gw.client.get(f"/v1/payments/{payment_id}", headers=gw.auth(user))
                assert got.status_code == 200, user
                assert got.json()["status"] == "succeeded"
                assert [h["status"] for h in got.json()["history"]] == ["reserved", "succeeded"]
            carol = await gw.client.get(f"/v1/payments/{payment_id}", headers=gw.auth("carol"))
            assert (carol.status_code, carol.json()["code"]) == (403, "not_a_member")
            missing = await gw.client.get("/v1/payments/pay_nope", headers=gw.auth("alice"))
            assert (missing.status_code, missing.json()["code"]) == (404, "payment_not_found")
    finally:
        fake.close()
