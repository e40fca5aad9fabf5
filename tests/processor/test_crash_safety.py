"""Crash safety of the exactly-once runtime with the real processor process and a real broker.

While >=2,000 payment commands (plus redelivered duplicates) stream in, the processor is ``kill -9``ed at
random points and restarted. Afterwards the topics themselves (read_committed) must show every command
reflected exactly once, per-account sequences dense, the ledger balanced and balances equal to the replay.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from payments.audit.main import run_audit
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.ledger import LedgerTransaction, customer_ledger_account
from payments.schemas.state import ResultEvent, ResultType
from payments.settings import KafkaSettings
from tests.support import processor, producer, read_all, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNTS = 16
PAYMENTS = 2_000
DUPLICATES = 300
FUNDING = 10_000_000


def _workload(rng: random.Random) -> tuple[list[OpenAccount | AdjustBalance], list[RequestPayment]]:
    setup: list[OpenAccount | AdjustBalance] = []
    for a in range(ACCOUNTS):
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
            command_id=f"pay_{i}", account_id=f"acc_{rng.randrange(ACCOUNTS)}", issued_at=3 + i,
            amount=rng.randint(1, 5_000), currency="EUR", payee="shop", principal=rng.choice(["alice", "bob"]),
            fingerprint=f"fp-{i:020d}",
        )
        for i in range(PAYMENTS)
    ]  # fmt: skip
    return setup, pays


def test_kill9_during_stream_reflects_every_command_exactly_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    rng = random.Random(20261121)
    setup, pays = _workload(rng)
    stream = list(pays) + [rng.choice(pays) for _ in range(DUPLICATES)]  # redeliveries interleaved
    rng.shuffle(stream)
    topic = kafka_settings.topics.commands
    prod = producer(kafka_settings)
    for cmd in setup:
        send(prod, topic, cmd)
    assert prod.flush(30) == 0

    proc = processor(kafka_settings, f"{topic}.", 0, tmp_path).start()
    done = threading.Event()

    def feed() -> None:
        # ~12 s of steady traffic so that kills land mid-batch, mid-commit and mid-restore.
        for i, cmd in enumerate(stream):
            send(prod, topic, cmd)
            if i % 50 == 0:
                time.sleep(0.25)
        prod.flush(30)
        done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    kills = 0
    try:
        while kills < 3 or not done.is_set():
            time.sleep(rng.uniform(2.0, 4.0))
            if kills < 4:
                proc.kill9()
                kills += 1
                proc.start()
        feeder.join(60)
        expected_results = 2 * ACCOUNTS + PAYMENTS
        raw_results = read_all(
            kafka_settings, kafka_settings.topics.results, expect=expected_results, idle_s=3, timeout_s=180
        )
    finally:
        proc.stop()
    assert kills >= 3
    results = [ResultEvent.model_validate_json(r) for r in raw_results]
    ledger = [
        LedgerTransaction.model_validate_json(r)
        for r in read_all(kafka_settings, kafka_settings.topics.ledger)
    ]

    # Every command reflected exactly once: one result per payment id, none missing, none doubled.
    per_command = Counter(r.command_id for r in results)
    assert len(results) == expected_results, proc.log_path.read_text()[-3000:]
    assert all(n == 1 for n in per_command.values()), [c for c, n in per_command.items() if n > 1][:5]
    assert {p.command_id for p in pays} <= set(per_command)
    assert all(r.type is ResultType.PAYMENT_SUCCEEDED for r in results if r.command_id.startswith("pay_"))

    # Exactly one ledger transaction per successful payment and funding, each balanced.
    tx_ids = Counter(tx.tx_id for tx in ledger)
    assert all(n == 1 for n in tx_ids.values())
    assert len(ledger) == ACCOUNTS + PAYMENTS
    assert sum(sum(p.amount for p in tx.postings if p.debit) for tx in ledger) == sum(
        sum(p.amount for p in tx.postings if p.credit) for tx in ledger
    )

    # Per-account order: dense seq 1..n; the last snapshot's balance equals the ledger replay and the
    # workload's expected value.
    by_account: dict[str, list[ResultEvent]] = defaultdict(list)
    for r in results:
        by_account[r.account_id].append(r)
    spent: Counter[str] = Counter()
    for p in pays:
        spent[p.account_id] += p.amount
    for acc, events in by_account.items():
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), acc
        replay = sum(tx.net_for(customer_ledger_account(acc)) for tx in ledger if tx.account_id == acc)
        assert events[-1].account.posted == replay == FUNDING - spent[acc]

    report = run_audit(kafka_settings)
    assert report.clean, report.render()
    assert report.results == expected_results
