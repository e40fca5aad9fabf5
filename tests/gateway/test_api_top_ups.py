"""``POST /v1/accounts/{id}/top-ups`` and ``GET /v1/top-ups/{id}``: the payments' idempotency rules,
strict validation (card tokens only, integer amounts), and the final answer with ``Prefer: wait``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from payments.gateway.idempotency_keys import derive_top_up_id
from payments.schemas.commands import RequestTopUp
from payments.settings import KafkaSettings
from tests.gateway.support import (
    NOW_MS,
    FakeProcessor,
    commands,
    new_account_id,
    put_account,
    running_gateway,
)

pytestmark = pytest.mark.integration

TOP_UP = {"amount": 5000, "currency": "EUR", "payment_method": "tok_ok"}


async def test_replay_mismatch_and_in_flight(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/top-ups"
    async with running_gateway(kafka_settings, redis_db) as gw:
        hdrs = gw.auth("alice", **{"Idempotency-Key": "top-1"})
        first = await gw.client.post(url, json=TOP_UP, headers=hdrs)
        assert first.status_code == 202, first.text
        body = first.json()
        assert body["id"] == derive_top_up_id("alice", acct, "top-1")
        assert body["id"].startswith("top_")
        assert len(body["id"]) == 4 + 26
        assert (body["status"], body["payment_method"], body["history"]) == ("pending", "tok_ok", [])

        again = await gw.client.post(
            url,
            content=b'{"payment_method": "tok_ok", "currency": "EUR", "amount": 5000}',
            headers=gw.auth("alice", **{"Idempotency-Key": '"top-1"', "Content-Type": "application/json"}),
        )
        assert (again.status_code, again.content) == (202, first.content)
        assert again.headers["idempotent-replayed"] == "true"

        for changed in ({**TOP_UP, "amount": 5001}, {**TOP_UP, "payment_method": "tok_declined"}):
            resp = await gw.client.post(url, json=changed, headers=hdrs)
            assert (resp.status_code, resp.json()["code"]) == (422, "idempotency_key_reused")
        # the key of a top-up cannot be reused for a payment either (another route, another fingerprint)
        pay = await gw.client.post(
            f"/v1/accounts/{acct}/payments", json={"amount": 5, "currency": "EUR", "payee": "s"}, headers=hdrs
        )
        assert (pay.status_code, pay.json()["code"]) == (422, "idempotency_key_reused")

        slow = gw.auth("bob", **{"Idempotency-Key": "slow"})
        waiting = asyncio.create_task(gw.client.post(url, json=TOP_UP, headers={**slow, "Prefer": "wait=3"}))
        await asyncio.sleep(1.0)
        busy = await gw.client.post(url, json=TOP_UP, headers=slow)
        assert (busy.status_code, busy.json()["code"]) == (409, "idempotency_key_in_use")
        assert int(busy.headers["retry-after"]) >= 1
        done = await waiting
        assert (done.status_code, done.json()["status"]) == (202, "pending")
    published = commands(kafka_settings, expect=2)
    cmd = next(c for c in published if c.principal == "alice")  # type: ignore[union-attr]
    assert isinstance(cmd, RequestTopUp)
    assert (cmd.command_id, cmd.account_id, cmd.amount, cmd.currency, cmd.payment_method, cmd.issued_at) == (
        body["id"],
        acct,
        5000,
        "EUR",
        "tok_ok",
        NOW_MS,
    )
    assert len(cmd.fingerprint) == 64


async def test_validation_publishes_nothing(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/top-ups"
    async with running_gateway(kafka_settings, redis_db) as gw:
        hdrs = gw.auth("alice", **{"Idempotency-Key": "k"})
        bad: list[tuple[dict[str, Any], str]] = [
            ({**TOP_UP, "payment_method": "tok_"}, "payment_method"),
            ({**TOP_UP, "payment_method": "tok_bad-char"}, "payment_method"),
            ({**TOP_UP, "payment_method": "tok_" + "x" * 65}, "payment_method"),
            ({**TOP_UP, "amount": 12.5}, "amount"),
            ({**TOP_UP, "amount": 5000.0}, "amount"),
            ({**TOP_UP, "amount": "5000"}, "amount"),
            ({**TOP_UP, "amount": 0}, "amount"),
            ({**TOP_UP, "amount": -1}, "amount"),
            ({**TOP_UP, "currency": "eur"}, "currency"),
            ({**TOP_UP, "card_number": "4242"}, "card_number"),
        ]
        for body, field in bad:
            resp = await gw.client.post(url, json=body, headers=hdrs)
            assert (resp.status_code, resp.json()["code"]) == (422, "validation_error"), body
            assert any(e["loc"][-1] == field for e in resp.json()["errors"]), body
        # a card number where a token belongs, or anywhere else, has its own code (test_api_card_numbers.py)
        for body in (
            {**TOP_UP, "payment_method": "4242424242424242"},
            {**TOP_UP, "card_number": "4242424242424242"},
        ):
            resp = await gw.client.post(url, json=body, headers=hdrs)
            assert (resp.status_code, resp.json()["code"]) == (422, "card_number_not_allowed"), body
            assert "4242424242424242" not in resp.text
        resp = await gw.client.post(url, json={**TOP_UP, "currency": "USD"}, headers=hdrs)
        assert (resp.status_code, resp.json()["code"]) == (422, "currency_mismatch")
        resp = await gw.client.post(url, json=TOP_UP, headers=gw.auth("alice"))
        assert (resp.status_code, resp.json()["code"]) == (400, "idempotency_key_missing")
        resp = await gw.client.post(url, json=TOP_UP, headers=gw.auth("carol", **{"Idempotency-Key": "k"}))
        assert (resp.status_code, resp.json()["code"]) == (403, "not_a_member")
        resp = await gw.client.post(
            "/v1/accounts/acct_nope/top-ups",
            json=TOP_UP,
            headers=gw.auth("alice", **{"Idempotency-Key": "k"}),
        )
        assert (resp.status_code, resp.json()["code"]) == (404, "account_not_found")
    assert commands(kafka_settings) == []


async def test_wait_for_the_psp_and_read_back(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db)
    fake.seed(put_account(redis_db, acct, posted=100))
    url = f"/v1/accounts/{acct}/top-ups"
    try:
        async with running_gateway(kafka_settings, redis_db, wait_recheck_s=30) as gw:

            async def top_up(key: str, method: str) -> Any:
                hdrs = gw.auth("alice", **{"Idempotency-Key": key, "Prefer": "wait=8"})
                task = asyncio.create_task(
                    gw.client.post(url, json={**TOP_UP, "payment_method": method}, headers=hdrs)
                )
                await fake.process_one_async()
                return await asyncio.wait_for(task, 10)

            ok = await top_up("ok", "tok_ok")
            assert ok.status_code == 201, ok.text
            assert ok.headers["location"] == f"/v1/top-ups/{ok.json()['id']}"
            assert [h["status"] for h in ok.json()["history"]] == ["processing", "succeeded"]

            fake.psp = "failed"
            declined = await top_up("declined", "tok_declined")
            assert declined.status_code == 402
            doc = declined.json()
            assert (doc["code"], doc["psp_failure_code"]) == ("psp_declined", "card_declined")
            assert doc["top_up_id"] == derive_top_up_id("alice", acct, "declined")

            for user in ("alice", "bob", "admin"):
                got = await gw.client.get(f"/v1/top-ups/{ok.json()['id']}", headers=gw.auth(user))
                assert (got.status_code, got.json()) == (200, ok.json())
            failed = await gw.client.get(f"/v1/top-ups/{doc['top_up_id']}", headers=gw.auth("bob"))
            assert (failed.json()["status"], failed.json()["failure_code"]) == ("failed", "psp_declined")
            carol = await gw.client.get(f"/v1/top-ups/{ok.json()['id']}", headers=gw.auth("carol"))
            assert (carol.status_code, carol.json()["code"]) == (403, "not_a_member")
            missing = await gw.client.get("/v1/top-ups/top_nope", headers=gw.auth("alice"))
            assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
            account = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))
            assert account.json()["posted"] == 5100
    finally:
        fake.close()
