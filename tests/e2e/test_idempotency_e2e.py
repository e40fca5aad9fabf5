"""Idempotency end to end: retries, Redis loss and a gateway crash never move money twice.

Every check counts what the results topic (read_committed) says, not what the gateway answered.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable

import httpx
import pytest
import redis

from payments.devstack.ports import free_port
from payments.devstack.probe import wait_http_ok
from payments.schemas.state import ResultEvent
from tests.e2e.conftest import Stack
from tests.e2e.test_shared_account import open_funded_account
from tests.support import Service, read_all, service_env

pytestmark = pytest.mark.integration


def succeeded_per_payment(stack: Stack, account_id: str) -> Counter[str]:
    results = [ResultEvent.model_validate_json(v) for v in read_all(stack.kafka, stack.kafka.topics.results)]
    return Counter(
        e.operation.op_id
        for e in results
        if e.account_id == account_id and e.type == "payment_succeeded" and e.operation is not None
    )


async def wait_posted(stack: Stack, account_id: str, expected: int, timeout_s: float = 60) -> dict[str, int]:
    """The account once it shows ``expected`` posted (or at the time-out). After Redis lost the read model,
    reads answer 503 read_model_rebuilding until the projector has rebuilt it: those are waited out."""
    async with stack.client() as admin:
        deadline = time.monotonic() + timeout_s
        while True:
            resp = await admin.get(f"/v1/accounts/{account_id}")
            acct: dict[str, int] = resp.json()
            if (resp.status_code == 200 and acct["posted"] == expected) or time.monotonic() > deadline:
                return acct
            await asyncio.sleep(0.1)


async def test_two_members_500_payments_each_with_random_retries(stack: Stack) -> None:
    funding = 10_000_000
    account_id = await open_funded_account(stack, ["carol", "dave"], funding)
    rng = random.Random(11)
    plan = [
        (user, uuid.uuid4().hex, rng.randint(1, 5_000), rng.randint(0, 3))
        for user in ("carol", "dave")
        for _ in range(500)
    ]
    sem = asyncio.Semaphore(64)
    answers: Counter[int] = Counter()

    async def attempt(client: httpx.AsyncClient, key: str, amount: int) -> None:
        async with sem:
            r = await client.post(
                f"/v1/accounts/{account_id}/payments",
                json={"amount": amount, "currency": "EUR", "payee": "grocer"},
                headers={"Idempotency-Key": key},
            )
        answers[r.status_code] += 1
        assert r.status_code in (202, 409), r.text

    async with stack.client("carol") as carol, stack.client("dave") as dave:
        clients = {"carol": carol, "dave": dave}
        tasks = []
        for user, key, amount, retries in plan:
            # The first attempt plus 0-3 retries, some concurrent with it, some after it.
            for i in range(1 + retries):
                delay = 0 if i % 2 else rng.uniform(0, 0.5)
                tasks.append(_later(delay, attempt(clients[user], key, amount)))
        await asyncio.gather(*tasks)
        # Whatever raced into a 409 is retried until it gets its answer, as a real client would.
        for user, key, amount, _ in plan:
            for _ in range(50):
                r = await clients[user].post(
                    f"/v1/accounts/{account_id}/payments",
                    json={"amount": amount, "currency": "EUR", "payee": "grocer"},
                    headers={"Idempotency-Key": key},
                )
                if r.status_code != 409:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 202
            assert r.headers.get("Idempotent-Replayed") == "true"
    expected = funding - sum(amount for _, _, amount, _ in plan)
    acct = await wait_posted(stack, account_id, expected)
    assert acct["posted"] == acct["available"] == expected
    per_payment = succeeded_per_payment(stack, account_id)
    assert len(per_payment) == len(plan)
    assert set(per_payment.values()) == {1}


async def _later(delay: float, coro: Awaitable[None]) -> None:
    await asyncio.sleep(delay)
    await coro


async def test_redis_flushall_mid_run_still_one_debit_per_key(stack: Stack) -> None:
    funding = 1_000_000
    account_id = await open_funded_account(stack, ["alice", "bob"], funding)
    keys = [(uuid.uuid4().hex, 100 + i) for i in range(60)]

    async def send_all(client: httpx.AsyncClient) -> None:
        for key, amount in keys:
            r = await client.post(
                f"/v1/accounts/{account_id}/payments",
                json={"amount": amount, "currency": "EUR", "payee": "grocer"},
                headers={"Idempotency-Key": key},
            )
            assert r.status_code in (202, 409), r.text

    sync_redis = redis.Redis.from_url(stack.redis_url)
    async with stack.client("alice") as alice:
        await send_all(alice)
        # Redis loses every idempotency record (flushed, failed over without replication)...
        lose_redis(sync_redis, account_id)
        # ...and the client retries every request: the processor's dedupe must hold the line.
        await send_all(alice)
    expected = funding - sum(amount for _, amount in keys)
    acct = await wait_posted(stack, account_id, expected)
    await asyncio.sleep(2)  # let any duplicate that slipped through show up before counting
    assert (await wait_posted(stack, account_id, expected))["posted"] == expected, acct
    per_payment = succeeded_per_payment(stack, account_id)
    assert len(per_payment) == len(keys)
    assert set(per_payment.values()) == {1}

    # Once everything settled, Redis is lost again and a key is reused with another amount: the gateway
    # cannot catch it now; the processor refuses it and the refusal shows on the payment.
    lose_redis(sync_redis, account_id)
    reused_key, original_amount = keys[0]
    async with stack.client("alice") as alice:
        r = await alice.post(
            f"/v1/accounts/{account_id}/payments",
            json={"amount": original_amount + 1, "currency": "EUR", "payee": "grocer"},
            headers={"Idempotency-Key": reused_key},
        )
        assert r.status_code == 202, r.text
        payment_id = r.json()["id"]
        for _ in range(600):  # the read model is rebuilt from Kafka first (503 meanwhile)
            payment = (await alice.get(f"/v1/payments/{payment_id}")).json()
            if payment.get("mismatched_requests") == 1:
                break
            await asyncio.sleep(0.1)
    assert payment["mismatched_requests"] == 1, payment
    assert payment["amount"] == original_amount
    assert payment["status"] == "succeeded"
    assert (await wait_posted(stack, account_id, expected))["posted"] == expected


def lose_redis(sync_redis: redis.Redis, account_id: str) -> None:
    """FLUSHALL, keeping only the API keys (an operator re-provisions them) and the account's read-model
    record (harmless: until the projector has rebuilt the read model the gateway does not trust it)."""
    api_keys = {k: sync_redis.dump(k) for k in sync_redis.scan_iter("apikey:*")}
    read_model = {k: sync_redis.dump(k) for k in sync_redis.scan_iter(f"acct:{account_id}")}
    sync_redis.flushall()
    for k, v in {**api_keys, **read_model}.items():
        assert isinstance(v, bytes)
        sync_redis.restore(k, 0, v, replace=True)


async def test_gateway_killed_between_claim_and_publish_then_retry_completes_once(stack: Stack) -> None:
    account_id = await open_funded_account(stack, ["alice", "bob"], 10_000)
    # A second gateway whose broker address is dead: it claims the key in Redis, then hangs in publish.
    port = free_port()
    env = service_env(
        stack.kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"}),
        "dead.",
        PAYMENTS_REDIS__URL=stack.redis_url,
        PAYMENTS_PUBLISH_TIMEOUT_MS="8000",
        PAYMENTS_INFLIGHT_LEASE_S="9",
        PAYMENTS_MAX_PREFER_WAIT_S="0",
        PAYMENTS_ACCOUNT_OPEN_WAIT_S="0",
    )
    doomed = Service(
        ["gateway", "--host", "127.0.0.1", "--port", str(port)], env, stack.log_dir / "doomed-gateway.log"
    ).start()
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz")
        key = uuid.uuid4().hex
        body = {"amount": 700, "currency": "EUR", "payee": "grocer"}
        headers = {"Authorization": f"Bearer {stack.keys['alice']}", "Idempotency-Key": key}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            pending = asyncio.create_task(
                c.post(f"/v1/accounts/{account_id}/payments", json=body, headers=headers)
            )
            await asyncio.sleep(1.5)  # claimed, publish still waiting for a broker that is not there
            doomed.kill9()
            with pytest.raises(httpx.HTTPError):
                await pending
    finally:
        doomed.stop()
    started = time.monotonic()
    statuses = []
    async with stack.client("alice") as alice:
        while True:
            r = await alice.post(
                f"/v1/accounts/{account_id}/payments", json=body, headers={"Idempotency-Key": key}
            )
            statuses.append(r.status_code)
            if r.status_code != 409:
                break
            assert "Retry-After" in r.headers
            assert time.monotonic() - started < 30
            await asyncio.sleep(0.5)
    assert statuses[0] == 409  # the dead gateway's lease still holds the key
    assert statuses[-1] == 202
    acct = await wait_posted(stack, account_id, 10_000 - 700)
    assert acct["posted"] == 9_300
    assert succeeded_per_payment(stack, account_id) == Counter({r.json()["id"]: 1})


async def test_200_concurrent_identical_requests_move_money_once(stack: Stack) -> None:
    account_id = await open_funded_account(stack, ["alice", "bob"], 50_000)
    key = uuid.uuid4().hex
    body = {"amount": 1_234, "currency": "EUR", "payee": "grocer"}
    async with stack.client("alice") as alice:
        responses = await asyncio.gather(
            *(
                alice.post(f"/v1/accounts/{account_id}/payments", json=body, headers={"Idempotency-Key": key})
                for _ in range(200)
            )
        )
    by_status = Counter(r.status_code for r in responses)
    assert set(by_status) <= {202, 409}, by_status
    firsts = [r for r in responses if r.status_code == 202 and r.headers.get("Idempotent-Replayed") != "true"]
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(firsts) == 1
    assert all(r.content == firsts[0].content for r in replays)
    assert all(r.json()["code"] == "idempotency_key_in_use" for r in responses if r.status_code == 409)
    acct = await wait_posted(stack, account_id, 50_000 - 1_234)
    assert acct["posted"] == 50_000 - 1_234
    await asyncio.sleep(1)
    assert succeeded_per_payment(stack, account_id) == Counter({firsts[0].json()["id"]: 1})
