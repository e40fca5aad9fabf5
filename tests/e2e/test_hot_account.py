"""End to end over HTTP: one hot account, four members, 10,000 concurrent payments, exactly K declined.

Every payment is for the same amount A and the account is funded with A x (N - K) + R (0 <= R < A, no
overdraft). Whatever order the processor sees the payments in, exactly N - K of them fit (a hold is placed
and the PSP transfer made) and the other K are declined without reaching the PSP; the final balance is R,
and in seq order every reservation comes before every decline.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from payments.audit.main import run_audit
from payments.schemas.state import OperationStatus, ResultEvent, ResultType
from tests.e2e.conftest import Stack
from tests.e2e.test_shared_account import open_funded_account
from tests.support import read_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMBERS = ["alice", "bob", "carol", "dave"]
PER_MEMBER = 2_500
N = PER_MEMBER * len(MEMBERS)
K = 137  # payments that must be declined
CONCURRENCY = 96
CLIENTS_PER_MEMBER = 2


async def test_hot_account_declines_exactly_k_of_10000_concurrent_payments(
    stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    rng = random.Random(20_000)
    amount = rng.randint(50, 1_000)
    remainder = rng.randrange(amount)
    funding = amount * (N - K) + remainder
    account_id = await open_funded_account(stack, MEMBERS, funding)
    # opened, funded, one result per payment (reserved or declined), one per PSP success; at least: a PSP
    # call slow enough to be retried adds a `payment_processing` result (a real state change) too
    final_version = 2 + N + (N - K)

    # Who pays, in a seeded random interleaving of the members.
    payers = [m for m in MEMBERS for _ in range(PER_MEMBER)]
    rng.shuffle(payers)
    payees = [f"merchant-{rng.randrange(50)}" for _ in range(N)]

    observed: list[tuple[int, int, int]] = []  # (version, posted, available) of each poll
    poll_errors: list[int] = []
    done = asyncio.Event()
    sem = asyncio.Semaphore(CONCURRENCY)

    async def pay(client: httpx.AsyncClient, i: int) -> tuple[int, str]:
        async with sem:
            r = await client.post(
                f"/v1/accounts/{account_id}/payments",
                json={"amount": amount, "currency": "EUR", "payee": payees[i]},
                headers={"Idempotency-Key": f"hot-{i}-{uuid.uuid4().hex}"},
            )
        return r.status_code, r.json()["id"] if r.status_code == 202 else r.text

    async def poll(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            r = await client.get(f"/v1/accounts/{account_id}")
            if r.status_code != 200:
                poll_errors.append(r.status_code)
            else:
                body = r.json()
                observed.append((body["version"], body["posted"], body["available"]))
                if body["version"] >= final_version and body["held"] == 0:
                    return
            await asyncio.sleep(0.01)

    started = time.monotonic()
    async with AsyncExitStack() as clients:
        pools = {
            m: [
                await clients.enter_async_context(stack.client(m, timeout=60))
                for _ in range(CLIENTS_PER_MEMBER)
            ]
            for m in MEMBERS
        }
        watcher_client = await clients.enter_async_context(stack.client("alice"))
        watcher = asyncio.create_task(poll(watcher_client))
        answers = await asyncio.gather(
            *(pay(pools[m][i % CLIENTS_PER_MEMBER], i) for i, m in enumerate(payers))
        )
        accepted = time.monotonic() - started
        try:
            await asyncio.wait_for(watcher, timeout=180)  # every hold captured through the PSP leg
        finally:
            done.set()
        settled = time.monotonic() - started
        final = (await watcher_client.get(f"/v1/accounts/{account_id}")).json()

    print(
        f"\n{N} payments: all answered in {accepted:.1f}s ({N / accepted:.0f}/s), read model final after "
        f"{settled:.1f}s; {len(observed)} polls"
    )
    record_property("hot_account_accept_seconds", round(accepted, 2))
    record_property("hot_account_settle_seconds", round(settled, 2))

    # Every POST was durably accepted.
    statuses = Counter(code for code, _ in answers)
    assert statuses == {202: N}, statuses
    payment_ids = {pid for _, pid in answers}
    assert len(payment_ids) == N

    # The read model: final balance exact; at every read available stayed within [R, funding] and, since
    # only holds and their captures happen after funding, never rose while versions never regressed
    # (invariants 2 and 10).
    assert not poll_errors, Counter(poll_errors)
    assert final["version"] >= final_version
    assert (final["posted"], final["held"], final["available"]) == (remainder, 0, remainder)
    assert observed
    assert all(remainder <= available <= funding for _, _, available in observed)
    assert all(posted >= available for _, posted, available in observed)
    versions = [v for v, _, _ in observed]
    assert versions == sorted(versions)
    balances = [a for _, _, a in observed]
    assert balances == sorted(balances, reverse=True)

    # The results topic (read_committed): exactly K declines and N - K successes, each payment once.
    raw = read_all(stack.kafka, stack.kafka.topics.results, expect=final_version, idle_s=2, timeout_s=60)
    mine = [e for e in (ResultEvent.model_validate_json(v) for v in raw) if e.account_id == account_id]
    mine_ops = [e for e in mine if e.operation is not None and e.operation.op_id in payment_ids]
    kinds = Counter(e.type for e in mine_ops if e.type is not ResultType.PAYMENT_PROCESSING)
    assert kinds == {
        ResultType.PAYMENT_RESERVED: N - K,
        ResultType.PAYMENT_SUCCEEDED: N - K,
        ResultType.PAYMENT_DECLINED: K,
    }, kinds
    decided = [e for e in mine_ops if e.type in (ResultType.PAYMENT_RESERVED, ResultType.PAYMENT_DECLINED)]
    assert sorted(e.operation.op_id for e in decided if e.operation) == sorted(payment_ids)  # each once
    assert [e.seq for e in mine] == list(range(1, final["version"] + 1))
    # Per-account order: the first N - K payments decided are reserved, every later one is declined.
    assert [e.type for e in decided] == [ResultType.PAYMENT_RESERVED] * (N - K) + [
        ResultType.PAYMENT_DECLINED
    ] * K
    for e in mine_ops:
        assert e.operation is not None
        assert e.operation.amount == amount
        assert e.account.available >= 0
        if e.type is ResultType.PAYMENT_DECLINED:
            assert e.code == "insufficient_funds"
            assert e.operation.status is OperationStatus.DECLINED
            assert e.account.available < amount
    assert mine[-1].account.posted == remainder

    # And the whole stack's topics pass the audit (ledger balances and replays to the balances, seq dense).
    report = run_audit(stack.kafka, psp_url=stack.psp_url)
    assert report.clean, report.render()
    print(f"total incl. topic checks and audit: {time.monotonic() - started:.1f}s")
    record_property("hot_account_total_seconds", round(time.monotonic() - started, 2))
