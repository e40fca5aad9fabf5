"""``Prefer: wait=N``: the answer waits for the processor's decision in the read model.

The processor is played by ``FakeProcessor`` (the pure ``decide()`` on the consumed command), which
writes the result through the projector's writer; that write PUBLISHes the notification that wakes the
waiting request.
"""

from __future__ import annotations

import asyncio

import pytest

from payments.settings import KafkaSettings
from tests.gateway.support import FakeProcessor, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def fake(kafka_settings: KafkaSettings, redis_db: str) -> FakeProcessor:
    return FakeProcessor(kafka_settings, redis_db)


async def test_wait_outcomes(kafka_settings: KafkaSettings, redis_db: str, fake: FakeProcessor) -> None:
    acct = new_account_id()
    fake.seed(put_account(redis_db, acct, posted=1000))
    url = f"/v1/accounts/{acct}/payments"
    async with running_gateway(kafka_settings, redis_db, wait_recheck_s=30) as gw:

        async def pay(key: str, amount: int) -> tuple[int, dict[str, object], dict[str, str]]:
            hdrs = gw.auth("alice", **{"Idempotency-Key": key, "Prefer": "wait=8"})
            task = asyncio.create_task(
                gw.client.post(url, json={"amount": amount, "currency": "EUR", "payee": "shop"}, headers=hdrs)
            )
            await fake.process_one_async()
            resp = await asyncio.wait_for(task, 10)
            return resp.status_code, resp.json(), dict(resp.headers)

        # wait_recheck_s=30: answering well within it proves the pub/sub notification woke the request
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, body, headers = await pay("ok", 600)
        assert loop.time() - started < 5
        assert status == 201
        assert body["status"] == "succeeded"
        assert body["amount"] == 600
        assert headers["preference-applied"] == "wait=8"
        assert headers["location"] == f"/v1/payments/{body['id']}"

        status, body, headers = await pay("too-much", 600)
        assert status == 402
        assert headers["content-type"] == "application/problem+json"
        assert body["code"] == "insufficient_funds"
        assert str(body["payment_id"]).startswith("pay_")

        # the stored answer is the one sent: a replay is the 402, byte for byte
        hdrs = gw.auth("alice", **{"Idempotency-Key": "too-much"})
        replay = await gw.client.post(
            url, json={"amount": 600, "currency": "EUR", "payee": "shop"}, headers=hdrs
        )
        assert replay.status_code == 402
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == body

        balance = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("bob"))
        assert balance.json()["available"] == 400
        assert balance.json()["version"] == 4  # opened, reserved, succeeded, declined


async def test_rejection_by_the_processor_maps_to_its_4xx(
    kafka_settings: KafkaSettings, redis_db: str, fake: FakeProcessor
) -> None:
    acct = new_account_id()
    snap = put_account(redis_db, acct, posted=1000)
    # The read model still lists carol, the processor's state no longer does (removed a moment ago).
    fake.seed(snap.model_copy(update={"members": ("alice", "bob")}))
    put_account(redis_db, acct, members=("alice", "bob", "carol"), posted=1000, version=2)
    async with running_gateway(kafka_settings, redis_db) as gw:
        hdrs = gw.auth("carol", **{"Idempotency-Key": "k", "Prefer": "wait=8"})
        task = asyncio.create_task(
            gw.client.post(
                f"/v1/accounts/{acct}/payments",
                json={"amount": 5, "currency": "EUR", "payee": "s"},
                headers=hdrs,
            )
        )
        await fake.process_one_async()
        resp = await task
        assert resp.status_code == 403
        assert resp.json()["code"] == "not_a_member"
        assert "payment_id" in resp.json()


async def test_adjustment_and_account_opening_wait(
    kafka_settings: KafkaSettings, redis_db: str, fake: FakeProcessor
) -> None:
    async with running_gateway(kafka_settings, redis_db) as gw:
        task = asyncio.create_task(
            gw.client.post(
                "/v1/accounts",
                json={"currency": "EUR", "members": ["bob", "alice", "bob"]},
                headers=gw.auth("admin", **{"Idempotency-Key": "open-1"}),
            )
        )
        await fake.process_one_async()
        opened = await task
        assert opened.status_code == 201, opened.text
        assert "preference-applied" not in opened.headers  # the built-in wait, not a preference
        acct = opened.json()["id"]
        assert opened.json()["members"] == ["alice", "bob"]
        assert opened.json()["version"] == 1

        task = asyncio.create_task(
            gw.client.post(
                f"/v1/accounts/{acct}/adjustments",
                json={"amount": 5000, "currency": "EUR", "reason": "funding"},
                headers=gw.auth("admin", **{"Idempotency-Key": "fund-1", "Prefer": "wait=5"}),
            )
        )
        await fake.process_one_async()
        adjusted = await task
        assert adjusted.status_code == 201
        assert adjusted.json()["status"] == "succeeded"
        assert adjusted.json()["id"].startswith("adj_")
        account = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))
        assert account.json()["posted"] == 5000

        # retrying the open with the same key replays the 201; without a processor answer in time → 202
        again = await gw.client.post(
            "/v1/accounts",
            json={"currency": "EUR", "members": ["alice", "bob"]},
            headers=gw.auth("admin", **{"Idempotency-Key": "open-1"}),
        )
        assert (again.status_code, again.content) == (201, opened.content)
        pending = await gw.client.post(
            "/v1/accounts",
            json={"currency": "EUR", "members": ["alice"]},
            headers=gw.auth("admin", Prefer="wait=1"),
        )
        assert pending.status_code == 202
        assert pending.json()["status"] == "pending"
        assert pending.headers["preference-applied"] == "wait=1"


async def test_no_prefer_answers_right_after_publishing(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        resp = await gw.client.post(
            f"/v1/accounts/{acct}/payments",
            json={"amount": 5, "currency": "EUR", "payee": "s"},
            headers=gw.auth("alice", **{"Idempotency-Key": "k"}),
        )
        assert resp.status_code == 202
        assert "preference-applied" not in resp.headers
        assert resp.json()["status"] == "pending"
        assert resp.json()["history"] == []


async def test_reserved_keeps_waiting_for_the_psp(kafka_settings: KafkaSettings, redis_db: str) -> None:
    """``reserved`` is not final: the request waits on; the PSP's failure, which a later command with
    another command id brings, wakes it (the projector notifies the payment's own channel too)."""
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db, psp=None)
    fake.seed(put_account(redis_db, acct, posted=1000))
    url = f"/v1/accounts/{acct}/payments"
    try:
        async with running_gateway(kafka_settings, redis_db, wait_recheck_s=30) as gw:
            hdrs = gw.auth("alice", **{"Idempotency-Key": "psp-fails", "Prefer": "wait=9"})
            task = asyncio.create_task(
                gw.client.post(url, json={"amount": 300, "currency": "EUR", "payee": "shop"}, headers=hdrs)
            )
            (reserved,) = await fake.process_one_async()
            assert reserved.operation is not None
            assert reserved.operation.status.value == "reserved"
            await asyncio.sleep(1.5)
            assert not task.done()  # reserved is not an answer
            loop = asyncio.get_running_loop()
            started = loop.time()
            settled = await fake.settle_async(reserved.operation.op_id, "failed")
            assert settled.command_id != reserved.operation.op_id
            resp = await asyncio.wait_for(task, 10)
            assert loop.time() - started < 5  # woken by the notification, not the 30 s recheck
            assert resp.status_code == 402
            doc = resp.json()
            assert (doc["code"], doc["payment_id"], doc["psp_failure_code"]) == (
                "psp_declined",
                reserved.operation.op_id,
                "card_declined",
            )
            replay = await gw.client.post(
                url,
                json={"amount": 300, "currency": "EUR", "payee": "shop"},
                headers=gw.auth("alice", **{"Idempotency-Key": "psp-fails"}),
            )
            assert (replay.status_code, replay.content) == (402, resp.content)
            got = await gw.client.get(f"/v1/payments/{doc['payment_id']}", headers=gw.auth("bob"))
            assert got.json()["hold"] == {"amount": 300, "status": "released"}
            assert [h["status"] for h in got.json()["history"]] == ["reserved", "failed"]
            account = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("bob"))
            assert (account.json()["held"], account.json()["available"]) == (0, 1000)
    finally:
        fake.close()


async def test_timeout_answers_202_with_the_current_status_and_replays_it(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db, psp=None)
    fake.seed(put_account(redis_db, acct, posted=1000))
    url = f"/v1/accounts/{acct}/payments"
    body = {"amount": 250, "currency": "EUR", "payee": "shop"}
    try:
        async with running_gateway(kafka_settings, redis_db) as gw:
            hdrs = gw.auth("alice", **{"Idempotency-Key": "slow-psp", "Prefer": "wait=2"})
            task = asyncio.create_task(gw.client.post(url, json=body, headers=hdrs))
            await fake.process_one_async()
            resp = await task
            assert resp.status_code == 202
            assert resp.json()["status"] == "reserved"
            assert resp.json()["hold"] == {"amount": 250, "status": "open"}
            assert gw.metric("payments_gateway_prefer_wait_total", outcome="timeout") == 1

            # the PSP answers later; a retry still replays the 202 it got, byte for byte
            await fake.settle_async(resp.json()["id"], "succeeded")
            replay = await gw.client.post(
                url, json=body, headers=gw.auth("alice", **{"Idempotency-Key": "slow-psp"})
            )
            assert (replay.status_code, replay.content) == (202, resp.content)
            assert replay.headers["idempotent-replayed"] == "true"
            final = await gw.client.get(f"/v1/payments/{resp.json()['id']}", headers=gw.auth("alice"))
            assert (final.json()["status"], final.json()["hold"]["status"]) == ("succeeded", "captured")
    finally:
        fake.close()
