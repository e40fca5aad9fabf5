"""A deterministic command workload over many accounts, and the checks every processor test makes of it."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from payments.audit.main import run_audit
from payments.schemas.commands import (
    AdjustBalance,
    AnyCommand,
    OpenAccount,
    RecordPspOutcome,
    RequestPayment,
)
from payments.schemas.ledger import LedgerTransaction, customer_ledger_account
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus, PspRequest
from payments.schemas.state import ResultEvent, ResultType
from payments.settings import KafkaSettings
from tests.support import read_all

FUNDING = 10_000_000


@dataclass(frozen=True)
class Workload:
    setup: list[OpenAccount | AdjustBalance]
    payments: list[RequestPayment]
    outcomes: list[RecordPspOutcome]  # one per payment: what the PSP did with it
    # payments, redelivered payments, outcomes and redelivered outcomes, shuffled, with each outcome
    # after its payment (as in production: the outcome follows the psp-request of the reserved payment)
    stream: list[AnyCommand]

    @property
    def expected_results(self) -> int:
        # setup + one `reserved` per payment + one terminal result per outcome; redeliveries add nothing
        return len(self.setup) + len(self.payments) + len(self.outcomes)

    @property
    def succeeded(self) -> set[str]:
        return {o.op_id for o in self.outcomes if o.status is PspOutcomeStatus.SUCCEEDED}


def make_workload(rng: random.Random, accounts: int, payments: int, duplicates: int) -> Workload:
    setup: list[OpenAccount | AdjustBalance] = []
    for a in range(accounts):
        acc = f"acc_{a}"
        setup.append(
            OpenAccount(
                command_id=f"open_{a}",
                account_id=acc,
                issued_at=1,
                currency="EUR",
                members=("alice", "bob"),
                principal="admin",
            )
        )
        setup.append(
            AdjustBalance(
                command_id=f"adj_{a}",
                account_id=acc,
                issued_at=2,
                amount=FUNDING,
                currency="EUR",
                reason="funding",
                principal="admin",
            )
        )
    pays = [
        RequestPayment(
            command_id=f"pay_{i}", account_id=f"acc_{rng.randrange(accounts)}", issued_at=3 + i,
            amount=rng.randint(1, 5_000), currency="EUR", payee="shop", principal=rng.choice(["alice", "bob"]),
            fingerprint=f"fp-{i:020d}",
        )
        for i in range(payments)
    ]  # fmt: skip
    outcomes = [
        RecordPspOutcome(
            command_id=f"{p.command_id}.outcome", account_id=p.account_id, issued_at=p.issued_at + 1,
            op_id=p.command_id, source=PspOutcomeSource.PSP_CALLER, psp_movement_id=f"mv_{p.command_id}",
            status=PspOutcomeStatus.FAILED if rng.random() < 0.1 else PspOutcomeStatus.SUCCEEDED,
        )
        for p in pays
    ]  # fmt: skip
    first = list(pays) + [rng.choice(pays) for _ in range(duplicates)]
    rng.shuffle(first)
    # Place each outcome (and its redeliveries) at a random later position than its payment's first copy.
    placed: list[tuple[float, AnyCommand]] = []
    seen: dict[str, float] = {}
    for i, cmd in enumerate(first):
        placed.append((float(i), cmd))
        seen.setdefault(cmd.command_id, float(i))
    for o in outcomes:
        at = seen[o.op_id] + rng.uniform(1, 300)
        placed.append((at, o))
    for o in rng.sample(outcomes, min(duplicates, len(outcomes))):
        placed.append((seen[o.op_id] + rng.uniform(1, 600) + 300, o))
    placed.sort(key=lambda item: item[0])
    return Workload(setup, pays, outcomes, [cmd for _, cmd in placed])


def check_exactly_once(kafka: KafkaSettings, w: Workload, log_hint: str = "") -> None:
    """Every command reflected exactly once, from the topics (read_committed), and the audit clean."""
    raw = read_all(kafka, kafka.topics.results, expect=w.expected_results, idle_s=3, timeout_s=240)
    results = [ResultEvent.model_validate_json(r) for r in raw]
    ledger = [LedgerTransaction.model_validate_json(r) for r in read_all(kafka, kafka.topics.ledger)]
    requests = [PspRequest.model_validate_json(r) for r in read_all(kafka, kafka.topics.psp_requests)]

    per_command = Counter(r.command_id for r in results)
    assert len(results) == w.expected_results, log_hint
    assert all(n == 1 for n in per_command.values()), [c for c, n in per_command.items() if n > 1][:5]
    payment_ids = {p.command_id for p in w.payments}
    assert payment_ids | {o.command_id for o in w.outcomes} <= set(per_command)
    by_type = Counter(r.type for r in results if r.operation is not None and r.operation.op_id in payment_ids)
    assert by_type == {
        ResultType.PAYMENT_RESERVED: len(w.payments),
        ResultType.PAYMENT_SUCCEEDED: len(w.succeeded),
        ResultType.PAYMENT_FAILED: len(w.payments) - len(w.succeeded),
    }
    # One PSP request per reserved payment, never two (the psp-caller would make a second call).
    assert sorted(r.op_id for r in requests) == sorted(payment_ids)
    assert len(ledger) == len(w.setup) // 2 + len(w.succeeded)

    by_account: dict[str, list[ResultEvent]] = defaultdict(list)
    for r in results:
        by_account[r.account_id].append(r)
    spent: Counter[str] = Counter()
    for p in w.payments:
        if p.command_id in w.succeeded:
            spent[p.account_id] += p.amount
    for acc, events in by_account.items():
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), acc
        replay = sum(tx.net_for(customer_ledger_account(acc)) for tx in ledger if tx.account_id == acc)
        assert events[-1].account.posted == replay == FUNDING - spent[acc]
        assert events[-1].account.held == 0

    report = run_audit(kafka, require_terminal=True)
    assert report.clean, report.render()
    assert report.results == w.expected_results
