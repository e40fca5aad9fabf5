"""An incomplete read model (``readmodel:ready`` absent): reads answer 503 ``read_model_rebuilding``,
intake skips the membership pre-check (never a 404 for an account that exists), readiness reports it."""

from __future__ import annotations

import asyncio

import pytest
import redis

from payments.readmodel.layout import READY_KEY
from payments.schemas.state import OperationStatus
from payments.settings import KafkaSettings
from tests.gateway.support import FakeProcessor, commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 100, "currency": "EUR", "payee": "shop"}


async def test_reads_wait_for_the_rebuild_and_intake_goes_on(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct, unknown = new_account_id(), new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db, psp=None)
    fake.seed(put_account(redis_db, acct, posted=1000))
    r: redis.Redis = redis.Redis.from_url(redis_db)
    try:
        async with running_gateway(kafka_settings, redis_db) as gw:
            paid = await gw.client.post(
                f"/v1/accounts/{acct}/payments",
                json=PAY,
                headers=gw.auth("alice", **{"Idempotency-Key": "a"}),
            )
            assert paid.status_code == 202, paid.text
            await fake.process_one_async()
            payment_id = paid.json()["id"]
            assert (
                await gw.client.get(f"/v1/payments/{payment_id}", headers=gw.auth("bob"))
            ).status_code == 200

            r.delete(READY_KEY)  # as after a FLUSHALL, with the data still (partly) there
            reads = [
                f"/v1/accounts/{acct}",
                f"/v1/accounts/{unknown}",
                f"/v1/payments/{payment_id}",
                f"/v1/payments/pay_{unknown}",
                f"/v1/accounts/{acct}/payments",
                f"/v1/accounts/{acct}/top-ups",
                f"/v1/accounts/{acct}/ledger",
            ]
            for url in reads:
                resp = await gw.client.get(url, headers=gw.auth("alice"))
                assert resp.status_code == 503, (url, resp.text)
                assert resp.headers["content-type"] == "application/problem+json"
                assert resp.json()["code"] == "read_model_rebuilding"
                assert int(resp.headers["retry-after"]) >= 1
            assert gw.metric("payments_gateway_read_model_rebuilding_total", operation="read") == len(reads)

            # intake: the pre-check is skipped, as with Redis down; the processor decides membership
            again = await gw.client.post(
                f"/v1/accounts/{acct}/payments", json=PAY, headers=gw.auth("bob", **{"Idempotency-Key": "b"})
            )
            assert again.status_code == 202, again.text
            # even for an account the read model does not show: it may exist and be lost from Redis
            blind = await gw.client.post(
                f"/v1/accounts/{unknown}/payments",
                json=PAY,
                headers=gw.auth("bob", **{"Idempotency-Key": "c"}),
            )
            assert blind.status_code == 202, blind.text
            assert (
                gw.metric("payments_gateway_read_model_rebuilding_total", operation="membership_precheck")
                == 2
            )

            await fake.process_one_async()  # "b" reserved (the PSP has not answered)
            await fake.process_one_async()  # "c" rejected: no such account
            fake.settle(again.json()["id"], "succeeded")

            # Prefer: wait does not take what an incomplete read model holds for the final answer
            fake.psp = "succeeded"
            task = asyncio.create_task(
                gw.client.post(
                    f"/v1/accounts/{acct}/payments",
                    json=PAY,
                    headers=gw.auth("bob", **{"Idempotency-Key": "d", "Prefer": "wait=1"}),
                )
            )
            await fake.process_one_async()
            waited = await task
            assert (waited.status_code, waited.json()["status"]) == (202, "pending"), waited.text

            ready = await gw.client.get("/readyz")
            assert ready.status_code == 200  # intake works: the gateway stays in the load balancer
            assert ready.json()["checks"] == {"redis": True, "kafka": True, "read_model": False}

            r.set(READY_KEY, "rebuilt")
            got = await gw.client.get(f"/v1/payments/{again.json()['id']}", headers=gw.auth("alice"))
            assert got.status_code == 200
            assert got.json()["status"] == OperationStatus.SUCCEEDED.value
            missing = await gw.client.get(f"/v1/accounts/{unknown}", headers=gw.auth("alice"))
            assert (missing.status_code, missing.json()["code"]) == (404, "account_not_found")
            assert (await gw.client.get("/readyz")).json()["checks"]["read_model"] is True
    finally:
        fake.close()
        r.close()
    assert len({c.command_id for c in commands(kafka_settings, expect=4)}) == 4


async def test_account_opening_waits_for_a_complete_read_model(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    """``POST /v1/accounts`` waits for the account in the read model: while it is incomplete the answer is
    202 pending, never a 201 built from what an incomplete model happens to hold."""
    fake = FakeProcessor(kafka_settings, redis_db)
    try:
        async with running_gateway(
            kafka_settings, redis_db, read_model_ready=False, account_open_wait_s=1
        ) as gw:
            task = asyncio.create_task(
                gw.client.post(
                    "/v1/accounts",
                    json={"currency": "EUR", "members": ["alice"]},
                    headers=gw.auth("admin", **{"Idempotency-Key": "open-1"}),
                )
            )
            await fake.process_one_async()  # opened, and in Redis, but the model is not complete
            resp = await task
            assert resp.status_code == 202, resp.text
            assert resp.json()["status"] == "pending"
    finally:
        fake.close()
