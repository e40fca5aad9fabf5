"""Bounded state on the real broker: the processor process forgets ended operations past their retention.

Operations are stamped relative to the wall clock so that the test does not wait for time to pass: those
that ended an hour ago are past a 10-minute retention at the first pruning round, one that ended now is
not, and one still ``reserved`` an hour later must never be forgotten. Evidence comes from the changelog
topic (read_committed, tombstones included) and from the results, never from the processor's counters;
a ``kill -9`` and restart then shows that what was kept is what is restored.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from payments.processor.transformer import ACCOUNT_PREFIX, OPERATION_PREFIX
from payments.schemas.commands import AdjustBalance, AnyCommand, OpenAccount, RecordPspOutcome, RequestPayment
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus
from payments.schemas.state import ResultEvent, ResultType
from payments.settings import KafkaSettings
from tests.support import processor, producer, read_all, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RETENTION_MS = 10 * 60 * 1000
HOUR_MS = 3600 * 1000


def changelog(kafka: KafkaSettings) -> dict[str, bytes | None]:
    """The latest value of every changelog key (None for a tombstone), read_committed to the end."""
    topic = kafka.topics.state
    c = Consumer(
        {
            **kafka.consumer_config(),
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    latest: dict[str, bytes | None] = {}
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(at_end) < len(parts) and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition() or 0)
                        continue
                    raise RuntimeError(str(err))
                key = m.key()
                assert key is not None
                latest[key.decode()] = m.value()
    finally:
        c.close()
    return latest


def payment(i: int, account: str, at: int) -> RequestPayment:
    return RequestPayment(
        command_id=f"pay_{i}", account_id=account, issued_at=at, amount=100 + i, currency="EUR",
        payee="shop", principal="alice", fingerprint=f"fp-{i:020d}",
    )  # fmt: skip


def outcome(p: RequestPayment, at: int, status: PspOutcomeStatus, tag: str = "") -> RecordPspOutcome:
    return RecordPspOutcome(
        command_id=f"{p.command_id}.outcome{tag}", account_id=p.account_id, issued_at=at, op_id=p.command_id,
        source=PspOutcomeSource.PSP_CALLER, psp_movement_id=f"mv_{p.command_id}", status=status,
    )  # fmt: skip


def test_ended_operations_past_retention_are_tombstoned_and_the_rest_survives_a_restart(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    old = now - HOUR_MS
    accounts = ["acc_a", "acc_b", "acc_c"]
    setup: list[AnyCommand] = []
    for a in accounts:
        setup.append(
            OpenAccount(
                command_id=f"open_{a}", account_id=a, issued_at=old, currency="EUR",
                members=("alice",), principal="admin",
            )
        )  # fmt: skip
        setup.append(
            AdjustBalance(
                command_id=f"fund_{a}", account_id=a, issued_at=old, amount=1_000_000, currency="EUR",
                reason="funding", principal="admin",
            )
        )  # fmt: skip
    ended_long_ago = [payment(i, accounts[i % 3], old + i) for i in range(30)]
    ended_now = payment(100, "acc_a", now)
    still_open = payment(101, "acc_b", old)  # reserved an hour ago, the PSP never answered
    stream: list[AnyCommand] = [*setup, *ended_long_ago, ended_now, still_open]
    stream += [
        outcome(p, p.issued_at + 1, PspOutcomeStatus.FAILED if i % 5 == 0 else PspOutcomeStatus.SUCCEEDED)
        for i, p in enumerate(ended_long_ago)
    ]
    stream.append(outcome(ended_now, now + 1, PspOutcomeStatus.SUCCEEDED))

    prod = producer(kafka_settings)
    for cmd in stream:
        send(prod, kafka_settings.topics.commands, cmd)
    assert prod.flush(30) == 0
    env = {"PAYMENTS_TERMINAL_RETENTION_MS": str(RETENTION_MS), "PAYMENTS_RUNTIME__PRUNE_INTERVAL_S": "1"}
    proc = processor(kafka_settings, f"{kafka_settings.topics.commands}.", 0, tmp_path, **env).start()
    try:
        # 3 opened + 3 funded + 32 reserved + 31 outcomes
        results = read_all(kafka_settings, kafka_settings.topics.results, expect=69, idle_s=1, timeout_s=120)
        assert len(results) == 69

        forgotten = {OPERATION_PREFIX + p.command_id for p in ended_long_ago}
        forgotten |= {OPERATION_PREFIX + f"fund_{a}" for a in accounts}  # adjustments end at once
        deadline = time.monotonic() + 90
        latest = changelog(kafka_settings)
        while any(latest.get(k) is not None for k in forgotten) and time.monotonic() < deadline:
            time.sleep(1)
            latest = changelog(kafka_settings)
        assert {k for k in forgotten if latest.get(k) is not None} == set(), proc.log_path.read_text()[-3000:]
        assert all(k in latest for k in forgotten)  # tombstones, not never-written keys
        kept = {OPERATION_PREFIX + ended_now.command_id, OPERATION_PREFIX + still_open.command_id}
        kept |= {ACCOUNT_PREFIX + a for a in accounts}
        assert all(latest.get(k) is not None for k in kept), sorted(k for k in kept if latest.get(k) is None)

        # Restart from the changelog alone: the reserved payment's hold and state must be there (its
        # outcome succeeds and captures it), and news of a forgotten payment must change nothing.
        proc.kill9()
        proc.start()
        late = outcome(ended_long_ago[1], now + 2, PspOutcomeStatus.SUCCEEDED, tag=".late")
        assert late.account_id == still_open.account_id  # same partition: processed before what follows
        send(prod, kafka_settings.topics.commands, late)
        send(prod, kafka_settings.topics.commands, outcome(still_open, now + 3, PspOutcomeStatus.SUCCEEDED))
        assert prod.flush(30) == 0
        raw = read_all(kafka_settings, kafka_settings.topics.results, expect=70, idle_s=2, timeout_s=120)
        events = [ResultEvent.model_validate_json(r) for r in raw]
        assert [e.command_id for e in events].count(late.command_id) == 0
        (done,) = [e for e in events if e.command_id == f"{still_open.command_id}.outcome"]
        assert done.type is ResultType.PAYMENT_SUCCEEDED
        assert done.account.held == 0
        spent_b = sum(
            p.amount for i, p in enumerate(ended_long_ago) if p.account_id == "acc_b" and i % 5 != 0
        )
        assert done.account.posted == 1_000_000 - spent_b - still_open.amount
    finally:
        proc.stop()
