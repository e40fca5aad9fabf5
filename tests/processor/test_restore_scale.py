"""Restoring 100,000 accounts from a real changelog: latest value per key, tombstones and aborts honoured.

The changelog is written the way the runtime writes it: transactional, key ``a:<account id>``, explicit
partition = the account id's murmur2 partition. One transaction of another producer is left open while
committed records land after it, then aborted: none of its records may be restored.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from payments.devstack.murmur2 import partition_for
from payments.processor.transformer import ACCOUNT_PREFIX, StateCodec
from payments.schemas.state import AccountSnapshot, AccountStatus
from payments.settings import KafkaSettings
from payments.streaming.restore import restore_partitions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNTS = 100_000
OVERWRITES = 20_000  # accounts written again (some twice) in later transactions
TOMBSTONES = 5_000  # accounts deleted in a later transaction (a few re-created afterwards)
ABORTED = 6_000  # records of the aborted transaction: overwrites, tombstones and brand-new keys
TXN_RECORDS = 25_000  # records per committed transaction
PARTITIONS = 8

Expected = dict[int, dict[str, AccountSnapshot]]


def snapshot(rng: random.Random, account_id: str, version: int) -> AccountSnapshot:
    return AccountSnapshot(
        account_id=account_id,
        status=AccountStatus.OPEN,
        currency=rng.choice(["EUR", "USD", "JPY"]),
        members=tuple(sorted(rng.sample(["alice", "bob", "carol", "dave"], 2))),
        overdraft_limit=rng.choice([0, 0, 500]),
        posted=rng.randint(-500, 10**9),
        version=version,
        opened_by_command=f"open:{account_id}",
    )


def transactional_producer(kafka: KafkaSettings, name: str) -> Producer:
    p = Producer(
        {
            **kafka.client_config(),
            "transactional.id": f"{name}-{uuid.uuid4().hex}",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "transaction.timeout.ms": 120_000,
        }
    )
    p.init_transactions(30)
    return p


def write(p: Producer, topic: str, account_id: str, value: AccountSnapshot | None) -> None:
    key = (ACCOUNT_PREFIX + account_id).encode()
    raw = None if value is None else value.model_dump_json().encode()
    partition = pf(account_id)
    while True:
        try:
            p.produce(topic, key=key, value=raw, partition=partition)
            return
        except BufferError:
            p.poll(0.05)


def pf(account_id: str) -> int:
    return partition_for(account_id.encode(), PARTITIONS)


def end_offsets(kafka: KafkaSettings, topic: str) -> int:
    """The sum over partitions of the high watermarks: every record and control marker in the log."""
    c = Consumer({**kafka.consumer_config(), "group.id": f"hw-{uuid.uuid4().hex}"})
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in range(PARTITIONS)
        )
    finally:
        c.close()


def test_restore_100k_accounts_from_changelog(
    kafka_settings: KafkaSettings, record_property: Callable[[str, object], None]
) -> None:
    topic = kafka_settings.topics.state
    rng = random.Random(20240611)
    ids = [f"acct_{i:06d}" for i in range(ACCOUNTS)]
    latest: dict[str, AccountSnapshot | None] = {}
    written = 0

    started = time.monotonic()
    main = transactional_producer(kafka_settings, "restore-main")

    def commit_batch(batch: Sequence[tuple[str, AccountSnapshot | None]]) -> None:
        nonlocal written
        for start in range(0, len(batch), TXN_RECORDS):
            main.begin_transaction()
            for account_id, value in batch[start : start + TXN_RECORDS]:
                write(main, topic, account_id, value)
                latest[account_id] = value
            main.commit_transaction(60)
            written += len(batch[start : start + TXN_RECORDS])

    # 1. Every account once.
    commit_batch([(a, snapshot(rng, a, 1)) for a in ids])

    # 2. A zombie's transaction opens and writes garbage over live keys, tombstones and new keys...
    zombie = transactional_producer(kafka_settings, "restore-zombie")
    zombie.begin_transaction()
    aborted_targets = rng.sample(ids, ABORTED // 2)
    for a in aborted_targets[: ABORTED // 4]:
        write(zombie, topic, a, None)
    for a in aborted_targets[ABORTED // 4 :]:
        write(zombie, topic, a, snapshot(rng, a, 999_999))
    for i in range(ABORTED // 2):
        new_id = f"ghost_{i:06d}"
        write(zombie, topic, new_id, snapshot(rng, new_id, 1))
    assert zombie.flush(60) == 0  # the aborted records are in the log, not only in the client's queue

    # 3. ...committed overwrites land after them in the same partitions (some keys twice)...
    overwritten = rng.sample(ids, OVERWRITES)
    twice = overwritten[: OVERWRITES // 4]
    commit_batch([(a, snapshot(rng, a, 2)) for a in overwritten] + [(a, snapshot(rng, a, 3)) for a in twice])

    # 4. ...then the zombie aborts, and later transactions delete some accounts and re-create a few.
    zombie.abort_transaction(60)
    deleted = rng.sample(ids, TOMBSTONES)
    recreated = deleted[:100]
    commit_batch([(a, None) for a in deleted])
    commit_batch([(a, snapshot(rng, a, 7)) for a in recreated])
    main.flush(60)
    log_end = end_offsets(kafka_settings, topic)
    # Every record (committed and aborted) plus one control marker per transaction and partition.
    assert log_end > written + ABORTED
    print(f"\nwrote {written} committed + {ABORTED} aborted records in {time.monotonic() - started:.1f}s")

    expected: Expected = {p: {} for p in range(PARTITIONS)}
    for account_id, value in latest.items():
        if value is not None:
            expected[pf(account_id)][ACCOUNT_PREFIX + account_id] = value
    live = sum(len(v) for v in expected.values())
    assert live == ACCOUNTS - TOMBSTONES + len(recreated)

    t0 = time.monotonic()
    stores = restore_partitions(kafka_settings.client_config(), topic, range(PARTITIONS), StateCodec(), 300)
    elapsed = time.monotonic() - t0
    rate = log_end / elapsed
    print(f"restored {live} keys from {log_end} log offsets in {elapsed:.2f}s ({rate:,.0f} records/s)")
    record_property("restore_seconds", round(elapsed, 3))
    record_property("restore_records_per_second", round(rate))
    record_property("restore_log_offsets", log_end)
    record_property("restore_live_keys", live)

    assert sorted(stores) == list(range(PARTITIONS))
    for p in range(PARTITIONS):
        assert stores[p].partition == p
        got = stores[p].data
        # Tombstoned keys and everything the zombie wrote are absent; latest committed value everywhere else.
        assert got.keys() == expected[p].keys(), (
            p,
            sorted(got.keys() - expected[p].keys())[:5],
            sorted(expected[p].keys() - got.keys())[:5],
        )
        wrong = [k for k, v in expected[p].items() if got[k] != v]
        assert not wrong, (p, wrong[:5])
    restored = [(k, v) for s in stores.values() for k, v in s.data.items()]
    assert not [k for k, _ in restored if k.startswith(ACCOUNT_PREFIX + "ghost_")]
    assert not [k for k, v in restored if isinstance(v, AccountSnapshot) and v.version == 999_999]
    for a in recreated:
        restored_value = stores[pf(a)].data[ACCOUNT_PREFIX + a]
        assert isinstance(restored_value, AccountSnapshot)
        assert restored_value.version == 7
