"""The reconciler end to end: open operations converge under PSP faults and crashes, expiry past the
deadline, and settlement's three-way match publishing each discrepancy once.

The psp-caller here makes one attempt per request, so every ambiguous PSP answer leaves the operation
``unknown`` and only the reconciler can resolve it. Checked from the topics (read_committed), the PSP
simulator's own log and the HTTP API.
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
from payments.audit.reader import read_topic
from payments.schemas.ids import derive_payment_id
from payments.schemas.settlement import SETTLEMENT_ADAPTER, Discrepancy, DiscrepancyKind, SettlementRun
from payments.schemas.state import ResultEvent
from tests.e2e.conftest import RECONCILER_ENV, Stack
from tests.e2e.test_psp_flow import MEMBERS, TERMINAL, set_faults, submit, wait_settled
from tests.e2e.test_shared_account import open_funded_account

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Long enough for the crashes below: each kill -9 of the psp-caller idles it for a session time-out plus
# a rebalance, and a request's deadline runs from the moment the gateway accepted the payment.
TTL_MS = 90_000
GRACE_MS = int(RECONCILER_ENV["PAYMENTS_EXPIRE_GRACE_MS"])
SETTLEMENT_GRACE_MS = int(RECONCILER_ENV["PAYMENTS_SETTLEMENT_GRACE_MS"])
HEALED = {"latency_ms": {"median": 5, "max": 50}}


@pytest.fixture(scope="module")
def stack_env() -> dict[str, dict[str, str]]:
    return {
        "processor": {"PAYMENTS_OPERATION_TTL_MS": str(TTL_MS)},
        "psp_caller": {"PAYMENTS_MAX_ATTEMPTS": "1", "PAYMENTS_SESSION_TIMEOUT_MS": "6000"},
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def settlement_records(stack: Stack) -> list[Discrepancy | SettlementRun]:
    return [
        SETTLEMENT_ADAPTER.validate_json(raw)
        for _, raw in read_topic(stack.kafka, stack.kafka.topics.discrepancies, stall_s=5)
        if raw is not None
    ]


async def wait_for_settlement_run(stack: Stack, after_ms: int, runs: int = 1, timeout_s: float = 90) -> None:
    """Until ``runs`` settlement runs have started at or after ``after_ms``."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = await asyncio.to_thread(settlement_records, stack)
        if sum(1 for r in records if isinstance(r, SettlementRun) and r.started_at >= after_ms) >= runs:
            return
        assert time.monotonic() < deadline, "no settlement run"
        await asyncio.sleep(1)


def terminal_events(stack: Stack, op_ids: set[str]) -> dict[str, ResultEvent]:
    """The first terminal result of each operation."""
    out: dict[str, ResultEvent] = {}
    for _, raw in read_topic(stack.kafka, stack.kafka.topics.results):
        assert raw is not None
        e = ResultEvent.model_validate_json(raw)
        op = e.operation
        if op is not None and op.op_id in op_ids and op.is_terminal and op.op_id not in out:
            out[op.op_id] = e
    return out


async def chaos(stack: Stack, accepted: Callable[[], int], total: int) -> list[str]:
    """kill -9 the psp-caller and the processor twice each, and the reconciler once, while payments
    flow; each comes back 2 s later. Returns what was done, in order."""
    plan = [
        (0.15, stack.psp_caller, "psp-caller"),
        (0.30, stack.processors[0], "processor"),
        (0.45, stack.reconciler, "reconciler"),
        (0.60, stack.psp_caller, "psp-caller"),
        (0.75, stack.processors[0], "processor"),
    ]
    done = []
    for fraction, service, name in plan:
        while accepted() < fraction * total:  # noqa: ASYNC110 - progress is a counter, not an event
            await asyncio.sleep(0.05)
        await asyncio.to_thread(service.kill9)
        done.append(f"kill -9 {name} at {accepted()} accepted")
        await asyncio.sleep(2)
        service.start()
    return done


async def test_open_operations_converge_after_faults_and_crashes(
    stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    rng = random.Random(606)
    accounts = [await open_funded_account(stack, MEMBERS, 50_000_000) for _ in range(8)]
    await set_faults(
        stack, timeout_after_commit=0.1, error_before_commit=0.05, error_after_commit=0.05,
        webhook_duplicate=0.2, webhook_reorder=0.2, latency_ms={"median": 5, "max": 50}, seed=21,
    )  # fmt: skip
    ids: dict[str, str] = {}
    total = 2_000
    # submit() returns when all are accepted; chaos() watches its progress through the shared dict.
    submission = asyncio.create_task(submit(stack, accounts, payments=total, top_ups=0, rng=rng, into=ids))
    actions = await chaos(stack, lambda: len(ids), total)
    await submission
    assert len(ids) == total
    record_property("chaos", actions)
    await set_faults(stack, **HEALED)
    healed_at = time.monotonic()

    # Every payment reaches a terminal state: nothing stays reserved, processing or unknown.
    bodies = await wait_settled(stack, ids, settled=TERMINAL, timeout_s=(TTL_MS + GRACE_MS) / 1000 + 120)
    record_property("converged_after_heal_s", round(time.monotonic() - healed_at, 1))
    statuses = Counter(str(b["status"]) for b in bodies.values())
    record_property("statuses", dict(statuses))
    assert statuses["succeeded"] > 1_800, statuses

    # ... within its deadline: what the PSP knew was fed back, and only what it never saw was expired, no
    # later than the deadline plus the grace (and a few lookup intervals).
    events = await asyncio.to_thread(terminal_events, stack, set(ids))
    assert set(events) == set(ids)
    late_ms = [e.occurred_at - (e.operation.deadline_at or 0) for e in events.values() if e.operation]
    record_property("max_terminal_after_deadline_ms", max(late_ms))
    assert max(late_ms) <= GRACE_MS + 30_000
    expired = [i for i, e in events.items() if e.code is not None and e.code.value == "operation_expired"]
    record_property("expired", len(expired))

    # The reconciler did the resolving: many payments the psp-caller left unknown.
    log = stack.reconciler.log_path.read_text()
    assert "PSP says succeeded" in log

    # The PSP's own log: at most one movement per payment; the three-way audit with every op terminal.
    movements = fetch_psp_movements(stack.psp_url)
    assert max(Counter(m.idempotency_key for m in movements).values()) == 1
    report = await asyncio.to_thread(run_audit, stack.kafka, psp_url=stack.psp_url, require_terminal=True)
    assert report.clean, report.render()
    assert report.psp_movements_matched == statuses["succeeded"]
    # No movement for an expired payment: the PSP never executed it.
    assert not {m.idempotency_key for m in movements if m.status == "succeeded"} & set(expired)

    # Settlement agrees once every outcome is in and the grace has passed: clean, no discrepancy at all.
    await wait_for_settlement_run(stack, _now_ms() + SETTLEMENT_GRACE_MS)
    records = await asyncio.to_thread(settlement_records, stack)
    assert [r for r in records if isinstance(r, Discrepancy)] == []
    last = max((r for r in records if isinstance(r, SettlementRun)), key=lambda r: r.started_at)
    assert last.clean
    assert last.matched == statuses["succeeded"]
    assert last.pending == 0


async def test_no_psp_record_past_the_deadline_expires_and_a_late_execution_goes_to_suspense(
    stack: Stack,
) -> None:
    account = await open_funded_account(stack, ["alice"], 1_000_000)
    stack.psp_caller.stop()  # nobody calls the PSP: it never sees this payment
    try:
        async with stack.client("alice") as alice:
            r = await alice.post(
                f"/v1/accounts/{account}/payments", json={"amount": 700, "currency": "EUR", "payee": "p-1"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            assert r.status_code == 202, r.text
            op_id = r.json()["id"]
            started = time.monotonic()
            body = (await wait_settled(stack, {op_id: "alice"}, timeout_s=(TTL_MS + GRACE_MS) / 1000 + 60))[
                op_id
            ]
            assert time.monotonic() - started >= (TTL_MS + GRACE_MS) / 1000 - 2  # not before deadline + grace
            assert (body["status"], body["failure_code"]) == ("failed", "operation_expired")
            acct = (await alice.get(f"/v1/accounts/{account}")).json()
            assert (acct["posted"], acct["held"], acct["available"]) == (1_000_000, 0, 1_000_000)
    finally:
        stack.psp_caller.start()
    # The restarted psp-caller finds the request (and the reconciler's re-drives) past their deadline and
    # makes no call.
    await asyncio.sleep(3)
    assert op_id not in {m.idempotency_key for m in fetch_psp_movements(stack.psp_url)}

    # The PSP executes it anyway, late (an operator's manual replay, say): the key is still bound to the
    # expired payment, so the money is posted once to suspense and reported once, never credited back.
    since = _now_ms()
    async with httpx.AsyncClient(base_url=stack.psp_url, timeout=10) as psp:
        r = await psp.post(
            "/_sim/inject",
            json={"kind": "transfer", "amount": 700, "currency": "EUR", "payee": "p-1",
                  "idempotency_key": op_id, "metadata": {"account_id": account, "op_id": op_id}},
        )  # fmt: skip
        assert r.status_code == 201, r.text
    await wait_for_settlement_run(stack, since + SETTLEMENT_GRACE_MS, runs=2)
    found = [r for r in await asyncio.to_thread(settlement_records, stack) if isinstance(r, Discrepancy)]
    assert [(d.kind, d.op_id) for d in found] == [(DiscrepancyKind.SUSPENSE_POSTING, op_id)]
    report = await asyncio.to_thread(run_audit, stack.kafka, psp_url=stack.psp_url, require_terminal=True)
    assert report.clean, report.render()


async def test_an_orphan_and_an_amount_mismatch_each_give_exactly_one_discrepancy(stack: Stack) -> None:
    account = await open_funded_account(stack, ["alice"], 1_000_000)
    before = {
        r.discrepancy_id
        for r in await asyncio.to_thread(settlement_records, stack)
        if isinstance(r, Discrepancy)
    }
    key = uuid.uuid4().hex
    op_id = derive_payment_id("alice", account, key)
    async with httpx.AsyncClient(base_url=stack.psp_url, timeout=10) as psp:
        # Money the PSP moved that nobody asked for.
        r = await psp.post(
            "/_sim/inject", json={"kind": "charge", "amount": 4_321, "currency": "EUR", "send_webhook": False}
        )
        assert r.status_code == 201, r.text
        orphan_id = r.json()["id"]
        # The PSP executed our coming payment's key for 5 more than we will ask: our call is refused for
        # reusing the key, and the reconciler's lookup then finds the movement with the PSP's amount.
        r = await psp.post(
            "/_sim/inject",
            json={"kind": "transfer", "amount": 1_005, "currency": "EUR", "payee": "shop",
                  "idempotency_key": op_id, "send_webhook": False},
        )  # fmt: skip
        assert r.status_code == 201, r.text
    async with stack.client("alice") as alice:
        r = await alice.post(
            f"/v1/accounts/{account}/payments", json={"amount": 1_000, "currency": "EUR", "payee": "shop"},
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        assert r.status_code == 202, r.text
        assert r.json()["id"] == op_id
    body = (await wait_settled(stack, {op_id: "alice"}, timeout_s=60))[op_id]
    assert body["status"] == "succeeded"
    since = _now_ms()
    # Three runs after both are judgeable: each mismatch is published by the first, and only by it.
    await wait_for_settlement_run(stack, since + SETTLEMENT_GRACE_MS, runs=3)
    found = [
        r for r in await asyncio.to_thread(settlement_records, stack)
        if isinstance(r, Discrepancy) and r.discrepancy_id not in before
    ]  # fmt: skip
    assert sorted((d.kind, d.op_id, d.psp_movement_id) for d in found) == sorted(
        [
            (DiscrepancyKind.ORPHAN_MOVEMENT, None, orphan_id),
            (DiscrepancyKind.AMOUNT_MISMATCH, op_id, body["psp_movement_id"]),
        ]
    )
    mismatch = next(d for d in found if d.kind is DiscrepancyKind.AMOUNT_MISMATCH)
    assert (mismatch.ledger_amount, mismatch.psp_amount) == (1_000, 1_005)
    runs = [r for r in await asyncio.to_thread(settlement_records, stack) if isinstance(r, SettlementRun)]
    last = max(runs, key=lambda r: r.started_at)  # run records are spread over partitions: not in order
    assert (last.clean, last.new_discrepancies, last.known_discrepancies) == (False, 0, 3)
