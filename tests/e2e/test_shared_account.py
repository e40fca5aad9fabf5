"""End to end over HTTP: two members pay concurrently from one shared account."""

from __future__ import annotations

import asyncio
import random
import uuid

import httpx
import pytest

from payments.schemas.state import ResultEvent
from tests.e2e.conftest import Stack
from tests.support import read_all

pytestmark = pytest.mark.integration


async def open_funded_account(stack: Stack, members: list[str], funding: int, overdraft: int = 0) -> str:
    async with stack.client() as admin:
        body = {"currency": "EUR", "members": members, "overdraft_limit": overdraft}
        r = await admin.post("/v1/accounts", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code in (201, 202), r.text
        account_id: str = r.json()["id"]
        for _ in range(100):
            if (await admin.get(f"/v1/accounts/{account_id}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        r = await admin.post(
            f"/v1/accounts/{account_id}/adjustments",
            json={"amount": funding, "currency": "EUR", "reason": "initial funding"},
            headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
        )
        assert r.status_code == 201, r.text
        return account_id


async def test_two_members_pay_concurrently_and_balance_is_exact(stack: Stack) -> None:
    funding = 1_000_000
    account_id = await open_funded_account(stack, ["alice", "bob"], funding)
    rng = random.Random(7)
    amounts = [rng.randint(1, 4_000) for _ in range(240)]
    observed: list[int] = []
    done = asyncio.Event()

    async def pay(client: httpx.AsyncClient, amount: int) -> httpx.Response:
        return await client.post(
            f"/v1/accounts/{account_id}/payments",
            json={"amount": amount, "currency": "EUR", "payee": "merchant-42"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )

    async def watch(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            r = await client.get(f"/v1/accounts/{account_id}")
            observed.append(r.json()["available"])
            await asyncio.sleep(0.02)

    async with stack.client("alice") as alice, stack.client("bob") as bob:
        watcher = asyncio.create_task(watch(alice))
        responses = await asyncio.gather(
            *(pay(alice if i % 2 == 0 else bob, a) for i, a in enumerate(amounts))
        )
        assert all(r.status_code == 202 for r in responses), {r.status_code for r in responses}
        expected = funding - sum(amounts)
        for _ in range(300):
            acct = (await alice.get(f"/v1/accounts/{account_id}")).json()
            if acct["posted"] == expected:
                break
            await asyncio.sleep(0.1)
        done.set()
        await watcher
    assert acct["posted"] == acct["available"] == expected
    assert min(observed) >= 0
    # Read model versions never regress for a reader.
    statuses = {(await _status(stack, "alice", r.json()["id"])) for r in responses[:20]}
    assert statuses == {"succeeded"}
    # The topic agrees: one success per payment, for exactly the amounts sent.
    results = [ResultEvent.model_validate_json(v) for v in read_all(stack.kafka, stack.kafka.topics.results)]
    mine = [e for e in results if e.account_id == account_id and e.type == "payment_succeeded"]
    assert sorted(e.operation.amount for e in mine if e.operation) == sorted(amounts)


async def _status(stack: Stack, user: str, payment_id: str) -> str:
    async with stack.client(user) as c:
        r = await c.get(f"/v1/payments/{payment_id}")
        assert r.status_code == 200, r.text
        status: str = r.json()["status"]
        return status


async def test_over_limit_payment_is_declined_with_402(stack: Stack) -> None:
    account_id = await open_funded_account(stack, ["alice", "bob"], 1_000)
    async with stack.client("bob") as bob:
        r = await bob.post(
            f"/v1/accounts/{account_id}/payments",
            json={"amount": 1_001, "currency": "EUR", "payee": "merchant-42"},
            headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
        )
        assert r.status_code == 402, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "insufficient_funds"
        acct = (await bob.get(f"/v1/accounts/{account_id}")).json()
        assert acct["posted"] == acct["available"] == 1_000


async def test_non_member_cannot_pay_or_read(stack: Stack) -> None:
    account_id = await open_funded_account(stack, ["alice", "bob"], 1_000)
    async with stack.client("mallory") as mallory:
        r = await mallory.post(
            f"/v1/accounts/{account_id}/payments",
            json={"amount": 1, "currency": "EUR", "payee": "x"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 403
        assert r.json()["code"] == "not_a_member"
        assert (await mallory.get(f"/v1/accounts/{account_id}")).status_code == 403
