"""The folded admission of payments and top-ups (pre-check + claim in one Lua evaluation) on the real Redis
and broker: the error order 401 → 404/403 → 400 → 422 → 409, a failed pre-check never claims a key, one
Redis round trip for a new payment, and the fresh-key-per-retry detection (counted, warned, never refused)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from payments.gateway.idempotency_keys import key_digest, redis_key
from payments.settings import KafkaSettings
from tests.gateway.support import Gateway, commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 1250, "currency": "EUR", "payee": "acme_books", "description": "order 42"}
TOP_UP = {"amount": 5000, "currency": "EUR", "payment_method": "tok_visa_4242"}
WARNING = "payments-warning"


async def _post(gw: Gateway, url: str, body: dict[str, Any] | None, user: str | None, key: str | None) -> Any:
    headers = gw.auth(user) if user is not None else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await gw.client.post(url, json=body, headers=headers)


async def test_error_order_and_failed_precheck_claims_nothing(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    missing = f"/v1/accounts/{new_account_id()}/payments"
    bad = {**PAY, "amount": -1}
    async with running_gateway(kafka_settings, redis_db) as gw:
        r = Redis.from_url(redis_db)
        try:
            cases: list[tuple[str, dict[str, Any], str | None, str | None, int, str]] = [
                (url, bad, None, None, 401, "unauthenticated"),
                (missing, bad, "alice", None, 404, "account_not_found"),  # 404 before the 400 and the 422
                (url, bad, "carol", None, 403, "not_a_member"),
                (url, {**PAY, "currency": "USD"}, "carol", "k-carol", 403, "not_a_member"),
                (url, PAY, "alice", None, 400, "idempotency_key_missing"),
                (url, {**PAY, "currency": "USD"}, "alice", "k-usd", 422, "currency_mismatch"),
            ]
            for path, body, user, key, status, code in cases:
                resp = await _post(gw, path, body, user, key)
                assert (resp.status_code, resp.json()["code"]) == (status, code), (path, user, key)
            # Neither the refused pre-checks nor the currency mismatch claimed their keys.
            for user, key in (("carol", "k-carol"), ("alice", "k-usd")):
                assert await r.exists(redis_key(user, key)) == 0
            assert gw.metric("payments_gateway_idempotency_total", outcome="new") == 0

            # The currency fixed, the same key is a new payment: 202, then the in-flight / reuse answers.
            ok = await _post(gw, url, PAY, "alice", "k-usd")
            assert ok.status_code == 202
            reused = await _post(gw, url, {**PAY, "amount": 1}, "alice", "k-usd")
            assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
            # A reused key with a payload the pre-check refuses: the pre-check answers, not the key.
            resp = await _post(gw, url, {**PAY, "currency": "USD"}, "alice", "k-usd")
            assert (resp.status_code, resp.json()["code"]) == (422, "currency_mismatch")
            await r.hset(
                redis_key("alice", "k-inflight"), mapping={"state": "inflight", "fp": "x", "token": "t"}
            )
            resp = await _post(gw, url, PAY, "alice", "k-inflight")
            assert resp.status_code == 422  # another fingerprint: 422 before 409
        finally:
            await r.aclose()
    assert len(commands(kafka_settings, expect=1)) == 1


@pytest.mark.parametrize("rate_limit_per_s", [None, 100.0], ids=["unlimited", "rate-limited"])
async def test_new_payment_is_one_redis_round_trip(
    kafka_settings: KafkaSettings, redis_db: str, rate_limit_per_s: float | None
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db, rate_limit_per_s=rate_limit_per_s) as gw:
        assert (await _post(gw, url, PAY, "alice", "warm-up")).status_code == 202  # caches the principal
        seen: list[str] = []
        r = Redis.from_url(redis_db)
        try:
            async with r.monitor() as monitor:

                async def watch() -> None:
                    async for entry in monitor.listen():
                        if entry.get("client_type") != "lua" and not entry["command"].startswith("PING"):
                            seen.append(entry["command"].split()[0].upper())

                task = asyncio.create_task(watch())
                await asyncio.sleep(0.2)
                assert (await _post(gw, url, {**PAY, "amount": 7}, "alice", "one-trip")).status_code == 202
                await asyncio.sleep(0.2)
                task.cancel()
        finally:
            await r.aclose()
    # The admission (pre-check, rate-limit token, claim, peek, fresh-key check) and the stored answer.
    assert seen == ["EVALSHA", "EVALSHA"]


async def test_fresh_key_per_retry_is_counted_and_warned_never_refused(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    pay_url = f"/v1/accounts/{acct}/payments"
    top_url = f"/v1/accounts/{acct}/top-ups"
    metric = "payments_gateway_suspected_fresh_key_retries_total"
    async with running_gateway(kafka_settings, redis_db, fresh_key_window_s=2.0) as gw:
        first = await _post(gw, pay_url, PAY, "alice", "attempt-1")
        assert first.status_code == 202
        assert WARNING not in first.headers
        replay = await _post(gw, pay_url, PAY, "alice", "attempt-1")  # a proper retry: same key
        assert replay.headers["idempotent-replayed"] == "true"
        assert WARNING not in replay.headers
        fresh = await _post(gw, pay_url, PAY, "alice", "attempt-2")  # the same payment under a new key
        assert fresh.status_code == 202, "never refused"
        assert fresh.json()["id"] != first.json()["id"]
        assert fresh.headers[WARNING].startswith('299 - "possible retry with a fresh Idempotency-Key')
        assert gw.metric(metric) == 1
        # The replay of that answer is the stored answer, without the warning about the request.
        again = await _post(gw, pay_url, PAY, "alice", "attempt-2")
        assert again.headers["idempotent-replayed"] == "true"
        assert WARNING not in again.headers
        # Another payee, amount, principal or kind of operation is another logical payment.
        for user, body in (
            ("alice", {**PAY, "payee": "other"}),
            ("alice", {**PAY, "amount": 1}),
            ("bob", PAY),
        ):
            resp = await _post(gw, pay_url, body, user, f"other-{user}-{body['payee']}-{body['amount']}")
            assert WARNING not in resp.headers
        assert WARNING not in (await _post(gw, top_url, TOP_UP, "alice", "top-1")).headers
        assert (await _post(gw, top_url, TOP_UP, "alice", "top-2")).headers[WARNING]
        assert gw.metric(metric) == 2
        # Only a digest of the key is stored, never the key.
        r = Redis.from_url(redis_db)
        try:
            slots = [k async for k in r.scan_iter("fk:alice:*")]
            values = {bytes(v) for v in await r.mget(slots)}
            assert all(b"attempt" not in k and b"acme" not in k for k in slots)
            assert key_digest("attempt-2")[:32].encode() in values
            assert all(b"attempt" not in v and b"top-" not in v for v in values)
        finally:
            await r.aclose()
    async with running_gateway(kafka_settings, redis_db, fresh_key_window_s=0.5) as gw:
        assert (await _post(gw, pay_url, {**PAY, "amount": 3}, "alice", "late-1")).status_code == 202
        await asyncio.sleep(0.8)  # past the window: a new payment, not a suspected retry
        late = await _post(gw, pay_url, {**PAY, "amount": 3}, "alice", "late-2")
        assert WARNING not in late.headers
        assert gw.metric(metric) == 0


async def test_rate_limit_in_the_admission(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db, rate_limit_per_s=0.01, rate_limit_burst=2) as gw:
        for i in range(3):  # refused by the pre-check: no token spent
            assert (await _post(gw, url, PAY, "carol", f"c{i}")).status_code == 403
        assert (await _post(gw, url, {**PAY, "amount": 0}, "alice", "bad")).status_code == 422
        assert (await _post(gw, url, PAY, "alice", "a1")).status_code == 202
        assert (await _post(gw, url, {**PAY, "amount": 2}, "alice", "a2")).status_code == 202
        limited = await _post(gw, url, {**PAY, "amount": 3}, "alice", "a3")
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert (await _post(gw, url, PAY, "bob", "b1")).status_code == 202  # a bucket per principal
        r = Redis.from_url(redis_db)
        try:
            assert await r.exists(redis_key("alice", "a3")) == 0  # limited: nothing claimed
            assert await r.exists(redis_key("carol", "c0")) == 0
        finally:
            await r.aclose()
