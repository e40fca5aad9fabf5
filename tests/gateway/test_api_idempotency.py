"""Idempotency end to end (invariant 4): replay, mismatch, in flight, concurrency — counted on the topic."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import cast

import pytest
from redis.asyncio import Redis

from payments.gateway.idempotency_keys import derive_payment_id
from payments.schemas.commands import RequestPayment
from payments.settings import KafkaSettings
from tests.gateway.support import FakeProcessor, commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 1250, "currency": "EUR", "payee": "acme_books", "description": "order 42"}


async def test_replay_is_byte_identical(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db) as gw:
        first = await gw.client.post(
            url, json=PAY, headers=gw.auth("alice", **{"Idempotency-Key": "order-42"})
        )
        assert first.status_code == 202
        assert "idempotent-replayed" not in first.headers
        body = first.json()
        assert body["id"] == derive_payment_id("alice", acct, "order-42")
        assert body["status"] == "pending"

        # same key in the quoted form, fields reordered and re-spaced: the same request
        again = await gw.client.post(
            url,
            content=b'{ "payee":"acme_books",  "description": "order 42", "currency":"EUR","amount":1250}',
            headers=gw.auth("alice", **{"Idempotency-Key": '"order-42"', "Content-Type": "application/json"}),
        )
        assert again.status_code == 202
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]

        # another principal's identical key is another operation
        bob = await gw.client.post(url, json=PAY, headers=gw.auth("bob", **{"Idempotency-Key": "order-42"}))
        assert bob.status_code == 202
        assert "idempotent-replayed" not in bob.headers
        assert bob.json()["id"] != body["id"]
        assert gw.metric("payments_gateway_idempotency_total", outcome="replay") == 1
        assert gw.metric("payments_gateway_idempotency_total", outcome="new") == 2

    published = commands(kafka_settings, expect=2)
    assert sorted(c.command_id for c in published) == sorted([body["id"], bob.json()["id"]])
    cmd = next(c for c in published if c.command_id == body["id"])
    assert isinstance(cmd, RequestPayment)
    assert (cmd.account_id, cmd.amount, cmd.principal, cmd.issued_at) == (
        acct,
        1250,
        "alice",
        1_767_225_600_000,
    )


async def test_reuse_with_other_payload_is_422_without_side_effect(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db) as gw:
        hdrs = gw.auth("alice", **{"Idempotency-Key": "k-reuse"})
        assert (await gw.client.post(url, json=PAY, headers=hdrs)).status_code == 202
        for changed in ({**PAY, "amount": 1251}, {**PAY, "payee": "other"}, {**PAY, "description": None}):
            resp = await gw.client.post(url, json=changed, headers=hdrs)
            assert resp.status_code == 422
            assert resp.json()["code"] == "idempotency_key_reused"
        assert gw.metric("payments_gateway_idempotency_total", outcome="mismatch") == 3
    assert len(commands(kafka_settings, expect=1)) == 1


async def test_in_flight_is_409_then_replay(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db) as gw:
        hdrs = gw.auth("alice", **{"Idempotency-Key": "slow"})
        # No processor runs: Prefer: wait keeps the first request in flight for 3 s.
        first = asyncio.create_task(gw.client.post(url, json=PAY, headers={**hdrs, "Prefer": "wait=3"}))
        await asyncio.sleep(1.0)
        second = await gw.client.post(url, json=PAY, headers=hdrs)
        assert second.status_code == 409
        assert second.json()["code"] == "idempotency_key_in_use"
        assert int(second.headers["retry-after"]) >= 1
        done = await first
        assert done.status_code == 202
        assert done.headers["preference-applied"] == "wait=3"
        third = await gw.client.post(url, json=PAY, headers=hdrs)
        assert (third.status_code, third.content) == (202, done.content)
        assert third.headers["idempotent-replayed"] == "true"
        assert gw.metric("payments_gateway_prefer_wait_total", outcome="timeout") == 1
    assert len(commands(kafka_settings, expect=1)) == 1


async def test_concurrent_identical_requests_publish_once(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db) as gw:
        hdrs = gw.auth("bob", **{"Idempotency-Key": "double-click"})
        answers = await asyncio.gather(*(gw.client.post(url, json=PAY, headers=hdrs) for _ in range(200)))
    originals = [a for a in answers if a.status_code == 202 and "idempotent-replayed" not in a.headers]
    assert len(originals) == 1
    original = originals[0].content
    for a in answers:
        if a is originals[0]:
            continue
        if a.status_code == 409:
            assert a.json()["code"] == "idempotency_key_in_use"
            assert "retry-after" in a.headers
        else:
            assert (a.status_code, a.headers["idempotent-replayed"], a.content) == (202, "true", original)
    published = commands(kafka_settings, expect=1)
    assert [c.command_id for c in published] == [derive_payment_id("bob", acct, "double-click")]


async def test_records_are_scoped_hashed_and_expire(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db, idempotency_retention_s=3600) as gw:
        resp = await gw.client.post(
            f"/v1/accounts/{acct}/payments",
            json=PAY,
            headers=gw.auth("alice", **{"Idempotency-Key": "secret-k"}),
        )
        assert resp.status_code == 202
    r: Redis = Redis.from_url(redis_db)
    try:
        keys = [k.decode() for k in await r.keys("idem:*")]
        assert len(keys) == 1
        assert keys[0].startswith("idem:alice:")
        assert "secret" not in keys[0]
        assert 3500_000 < await r.pttl(keys[0]) <= 3600_000
        record = await cast("Awaitable[dict[bytes, bytes]]", r.hgetall(keys[0]))
        assert record[b"state"] == b"done"
        assert record[b"status"] == b"202"
        assert record[b"body"] == resp.content
        assert b"token" not in record
    finally:
        await r.aclose()


async def test_after_the_record_is_lost_the_read_model_still_answers(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    """The key's record expired or Redis lost it, but the operation is in the read model: the same request
    gets the same 202 bytes without a second publish, another payload gets 422."""
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db)
    fake.seed(put_account(redis_db, acct, posted=10_000))
    url = f"/v1/accounts/{acct}/payments"
    try:
        async with running_gateway(kafka_settings, redis_db) as gw:
            hdrs = gw.auth("alice", **{"Idempotency-Key": "lost"})
            first = await gw.client.post(url, json=PAY, headers=hdrs)
            assert first.status_code == 202
            await fake.process_one_async()
            r: Redis = Redis.from_url(redis_db)
            try:
                assert await r.delete(*await r.keys("idem:*")) == 1
            finally:
                await r.aclose()
            again = await gw.client.post(url, json=PAY, headers=hdrs)
            assert again.status_code == 202
            assert again.content == first.content
            other = await gw.client.post(
                url, json={**PAY, "amount": 1}, headers=gw.auth("alice", **{"Idempotency-Key": "lost2"})
            )
            assert other.status_code == 202
            await fake.process_one_async()
            r = Redis.from_url(redis_db)
            try:
                await r.delete(*await r.keys("idem:*"))
            finally:
                await r.aclose()
            reused = await gw.client.post(
                url, json=PAY, headers=gw.auth("alice", **{"Idempotency-Key": "lost2"})
            )
            assert reused.status_code == 422
            assert reused.json()["code"] == "idempotency_key_reused"
    finally:
        fake.close()
    assert len(commands(kafka_settings, expect=2)) == 2
