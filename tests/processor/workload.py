"""A deterministic command workload over many accounts, and the checks every processor test makes of it."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from payments.audit.main import run_audit
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.ledger import LedgerTransaction, customer_ledger_account
from payments.schemas.state import ResultEvent, ResultType
from payments.settings import KafkaSettings
from tests.support import read_all

FUNDING = 10_000_000


@dataclass(frozen=True)
class Workload:
    setup: list[OpenAccount | AdjustBalance]
    payments: list[RequestPayment]
    stream: list[RequestPayment]  # payments plus redelivered duplicates, shuffled

    @property
    def expected_results(self) -> int:
        return len(self.setup) + len(self.payments)


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
    stream = list(pays) + [rng.choice(pays) for _ in range(duplicates)]
    rng.shuffle(stream)
    return Workload(setup, pays, stream)


def check_exactly_once(kafka: KafkaSettings, w: Workload, log_hint: str = "") -> None:
    """Every command reflected exactly once, from the topics (read_committed), and the audit clean."""
    raw = read_all(kafka, kafka.topics.results, expect=w.expected_results, idle_s=3, timeout_s=240)
    results = [ResultEvent.model_validate_json(r) for r in raw]
    ledger = [LedgerTransaction.model_validate_json(r) for r in read_all(kafka, kafka.topics.ledger)]

    per_command = Counter(r.command_id for r in results)
    assert len(results) == w.expected_results, log_hint
    assert all(n == 1 for n in per_command.values()), [c for c, n in per_command.items() if n > 1][:5]
    assert {p.command_id for p in w.payments} <= set(per_command)
    assert all(r.type is ResultType.PAYMENT_SUCCEEDED for r in results if r.command_id.startswith("pay_"))
    assert len(ledger) == len(w.setup) // 2 + len(w.payments)

    by_account: dict[str, list[ResultEvent]] = defaultdict(list)
    for r in results:
        by_account[r.account_id].append(r)
    spent: Counter[str] = Counter()
    for p in w.payments:
        spent[p.account_id] += p.amount
    for acc, events in by_account.items():
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), acc
        replay = sum(tx.net_for(customer_ledger_account(acc)) for tx in ledger if tx.account_id == acc)
        assert events[-1].account.posted == replay == FUNDING - spent[acc]

    report = run_audit(kafka)
    assert report.clean, report.render()
    assert report.results == w.expected_results
