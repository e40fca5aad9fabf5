"""End to end with the PSP leg: gateway → processor (hold) → psp-caller → PSP simulator → outcome → ledger.

Checked from the topics (read_committed) and from the PSP simulator's own audit log, never from our counters.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from payments.audit.main import fetch_psp_movements, run_audit
from payments.devstack.murmur2 import partition_for
from payments.schemas.commands import RecordPspOutcome, decode_command
from payments.schemas.psp import PspOutcomeSource
from payments.schemas.state import ResultEvent, ResultType
from tests.e2e.conftest import Stack
from tests.e2e.test_shared_account import open_funded_account
from tests.support import read_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMBERS = ["alice", "bob", "carol", "dave"]
SETTLED = {"succeeded", "failed", "declined", "rejected", "unknown"}
TERMINAL = SETTLED - {"unknown"}


async def set_faults(stack: Stack, **faults: object) -> None:
    async with httpx.AsyncClient(base_url=stack.psp_url, timeout=10) as psp:
        r = await (psp.delete("/_sim/faults") if not faults else psp.post("/_sim/faults", json=faults))
        assert r.status_code == 200, r.text


async def wait_settled(
    stack: Stack, ids: dict[str, str], *, settled: set[str] = TERMINAL, timeout_s: float = 180
) -> dict[str, dict[str, object]]:
    """Poll ``GET /v1/{payments|top-ups}/{id}`` until every operation's status is in ``settled``."""
    bodies: dict[str, dict[str, object]] = {}
    pending = dict(ids)  # op id -> member who made it
    deadline = time.monotonic() + timeout_s
    sem = asyncio.Semaphore(32)
    async with stack.client("admin") as admin:

        async def look(op_id: str) -> None:
            path = f"/v1/top-ups/{op_id}" if op_id.startswith("top_") else f"/v1/payments/{op_id}"
            async with sem:
                r = await admin.get(path)
            if r.status_code == 200 and r.json()["status"] in settled:
                bodies[op_id] = r.json()
                pending.pop(op_id, None)

        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} never settled, e.g. {list(pending)[:5]}"
            await asyncio.gather(*(look(op_id) for op_id in list(pending)))
            if pending:
                await asyncio.sleep(1.0)
    return bodies


async def submit(
    stack: Stack,
    account_ids: list[str],
    payments: int,
    top_ups: int,
    rng: random.Random,
    tokens: tuple[str, ...] = ("tok_ok",) * 8 + ("tok_declined", "tok_insufficient_funds"),
    into: dict[str, str] | None = None,
) -> dict[str, str]:
    """POST payments and top-ups concurrently as random members; returns op id -> member (``into``, if
    given, fills as answers arrive, so a concurrent task can follow the progress)."""
    jobs: list[tuple[str, str, dict[str, object]]] = []
    for _ in range(payments):
        acct = rng.choice(account_ids)
        body = {"amount": rng.randint(1, 5_000), "currency": "EUR", "payee": f"merchant-{rng.randrange(40)}"}
        jobs.append((rng.choice(MEMBERS), f"/v1/accounts/{acct}/payments", body))
    for _ in range(top_ups):
        acct = rng.choice(account_ids)
        body = {"amount": rng.randint(100, 20_000), "currency": "EUR", "payment_method": rng.choice(tokens)}
        jobs.append((rng.choice(MEMBERS), f"/v1/accounts/{acct}/top-ups", body))
    rng.shuffle(jobs)
    ids: dict[str, str] = {} if into is None else into
    sem = asyncio.Semaphore(64)
    clients = {m: stack.client(m) for m in MEMBERS}
    try:

        async def post(member: str, path: str, body: dict[str, object]) -> None:
            async with sem:
                r = await clients[member].post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            assert r.status_code == 202, r.text
            ids[r.json()["id"]] = member

        await asyncio.gather(*(post(*job) for job in jobs))
    finally:
        for c in clients.values():
            await c.aclose()
    return ids


async def test_payments_and_top_ups_under_psp_faults_move_money_at_most_once(
    stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    rng = random.Random(55)
    accounts = [await open_funded_account(stack, MEMBERS, 50_000_000) for _ in range(6)]
    await set_faults(
        stack, timeout_after_commit=0.1, error_after_commit=0.05, webhook_duplicate=0.2, webhook_reorder=0.2,
        latency_ms={"median": 5, "max": 50}, seed=11,
    )  # fmt: skip
    started = time.monotonic()
    ids = await submit(stack, accounts, payments=2_000, top_ups=500, rng=rng)
    assert len(ids) == 2_500
    bodies = await wait_settled(stack, ids, settled=SETTLED)
    record_property("settled_s", round(time.monotonic() - started, 1))
    await set_faults(stack)
    statuses = Counter(str(b["status"]) for b in bodies.values())
    unknown = sorted(op_id for op_id, b in bodies.items() if b["status"] == "unknown")
    record_property("statuses", dict(statuses))
    record_property("unknown", unknown)  # the reconciler resolves these; listed so a reader sees them
    assert statuses["succeeded"] > 1_800, statuses
    # Declined cards at the PSP fail the top-up with the PSP's own code kept.
    failed_top_ups = [b for i, b in bodies.items() if i.startswith("top_") and b["status"] == "failed"]
    assert failed_top_ups
    assert all(b["failure_code"] == "psp_declined" and b["psp_failure_code"] for b in failed_top_ups)

    # The PSP's own log: at most one money movement per operation id; each success matches one posting.
    movements = fetch_psp_movements(stack.psp_url)
    per_key = Counter(m.idempotency_key for m in movements)
    assert max(per_key.values()) == 1
    assert {m.idempotency_key for m in movements} <= set(ids)
    report = run_audit(stack.kafka, psp_url=stack.psp_url)
    assert report.clean, report.render()
    assert report.psp_movements_matched == sum(1 for m in movements if m.status == "succeeded")
    assert report.psp_movements_matched == statuses["succeeded"]

    # Webhooks reached the command log through the signed ingress, each webhook id once despite the
    # simulator's 20% duplicate deliveries.
    commands = [decode_command(raw) for raw in read_all(stack.kafka, stack.kafka.topics.commands)]
    hooks = [c for c in commands if isinstance(c, RecordPspOutcome) and c.source is PspOutcomeSource.WEBHOOK]
    assert len(hooks) > 1_000
    assert max(Counter(c.command_id for c in hooks).values()) == 1


async def until_in_flight_at_psp(stack: Stack, key: str, timeout_s: float = 30) -> None:
    """Side-effect-free probe: a refund of a charge that does not exist under ``key`` answers 409 while a
    request with that key is in flight at the PSP (404 before it arrived); it never stores anything."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=stack.psp_url, timeout=10) as psp:
        while True:
            r = await psp.post(
                "/v1/refunds", json={"charge_id": "ch_probe_does_not_exist", "amount": 1},
                headers={"Idempotency-Key": key},
            )  # fmt: skip
            if r.status_code == 409:
                return
            assert r.status_code == 404, r.text
            assert time.monotonic() < deadline, f"{key} never reached the PSP"
            await asyncio.sleep(0.02)


async def test_a_slow_psp_call_does_not_block_other_accounts_on_its_partition(stack: Stack) -> None:
    partitions = stack.kafka.partitions
    by_partition: dict[int, list[str]] = {}
    while True:  # open accounts until two share a partition (at most partitions + 1 of them)
        acct = await open_funded_account(stack, ["alice"], 1_000_000)
        same = by_partition.setdefault(partition_for(acct.encode(), partitions), [])
        same.append(acct)
        if len(same) == 2:
            slow, fast = same
            break
    async with stack.client("alice") as alice:
        await set_faults(stack, latency_ms={"median": 3000, "max": 3000})
        r = await alice.post(
            f"/v1/accounts/{slow}/payments", json={"amount": 100, "currency": "EUR", "payee": "slow-shop"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert r.status_code == 202, r.text
        slow_id = r.json()["id"]
        # Until its PSP call is in flight at the PSP (its key claimed there): only then may the latency go
        # back to 0 without the slow call picking up the fast latency.
        await until_in_flight_at_psp(stack, slow_id)
        await set_faults(stack, latency_ms={"median": 0, "max": 0})
        r = await alice.post(
            f"/v1/accounts/{fast}/payments", json={"amount": 100, "currency": "EUR", "payee": "fast-shop"},
            headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        fast_id = r.json()["id"]
    await wait_settled(stack, {slow_id: "alice"})
    # Same partition, so the topic order is the processor's decision order.
    order = [
        (e.operation.op_id, e.type)
        for e in (ResultEvent.model_validate_json(raw) for raw in read_all(stack.kafka, stack.kafka.topics.results))
        if e.operation is not None and e.operation.op_id in (slow_id, fast_id)
    ]  # fmt: skip
    assert order == [
        (slow_id, ResultType.PAYMENT_RESERVED),
        (fast_id, ResultType.PAYMENT_RESERVED),
        (fast_id, ResultType.PAYMENT_SUCCEEDED),
        (slow_id, ResultType.PAYMENT_SUCCEEDED),
    ]


async def test_a_psp_outage_fails_no_payment_and_all_complete_after_it(stack: Stack) -> None:
    account = await open_funded_account(stack, MEMBERS, 10_000_000)
    await set_faults(stack, outage_seconds=6)
    ids = await submit(stack, [account], payments=60, top_ups=20, rng=random.Random(3), tokens=("tok_ok",))
    bodies = await wait_settled(stack, ids, settled=SETTLED, timeout_s=120)
    await set_faults(stack)
    assert Counter(str(b["status"]) for b in bodies.values()) == {"succeeded": len(ids)}
    # The outage really happened: the psp-caller met it (503s) and waited instead of failing.
    assert "breaker" in stack.psp_caller.log_path.read_text().lower()
