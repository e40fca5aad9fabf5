"""Restore time of the processor's state with 1,000,000 historical payments, with and without pruning.

``python -m bench.restore_bench`` (``make bench-restore``): on a throwaway broker, writes a processor
changelog the way the runtime writes it (transactional, explicit partition = the account's murmur2
partition, keys ``a:<account>`` and ``o:<operation>``) holding ``--accounts`` accounts and ``--payments``
ended payments, then restores it with the processor's own code (``streaming.restore.restore_partitions``
and the processor's ``StateCodec``), each restore in a fresh child process so that its peak memory is its
own. Three restores:

1. **unpruned**: every payment ever made is state (what the processor kept before bounded state);
2. **pruned, before compaction**: the processor's ``RetentionPruner`` named every payment past retention and
   their tombstones were written; the log still holds the values and the tombstones;
3. **pruned, compacted**: once the broker's log cleaner has run, only accounts remain.

The third is what a restart costs in steady state: it grows with accounts and the retention window, not with
history. Prints a table, writes ``restore.json`` and ``restore.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from payments.devstack.kafka import KafkaBroker
from payments.devstack.murmur2 import partition_for
from payments.processor.retention import RetentionPruner
from payments.processor.transformer import ACCOUNT_PREFIX, OPERATION_PREFIX, StateCodec
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Hold,
    HoldStatus,
    Operation,
    OperationKind,
    OperationStatus,
    StatusChange,
)
from payments.settings import KafkaSettings
from payments.streaming.restore import restore_partitions

TOPIC = "restore-bench.processor-state"
DAY_MS = 24 * 3600 * 1000
# Compaction as aggressive as the broker allows, so that the compacted restore can be measured within the
# run: small segments, any dirt is cleanable, tombstones dropped at once. Production keeps the defaults of
# devstack.topics (the cleaner then catches up within minutes, not seconds).
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": str(1024 * 1024),
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
    "min.compaction.lag.ms": "0",
    "segment.ms": "2000",
}


@dataclass(frozen=True)
class Restore:
    label: str
    seconds: float
    keys: int
    peak_rss_growth_mib: float  # the restoring process's peak RSS over its own after-import baseline


def _restore_child(bootstrap: str, partitions: int, out: mp.Queue[tuple[float, int, float]]) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    stores = restore_partitions(
        KafkaSettings(bootstrap=bootstrap).client_config(), TOPIC, range(partitions), StateCodec(), 1200
    )
    seconds = time.monotonic() - started
    keys = sum(len(s) for s in stores.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out.put((seconds, keys, (peak - before) / 1024))


def restore(label: str, bootstrap: str, partitions: int) -> Restore:
    ctx = mp.get_context("spawn")
    queue: mp.Queue[tuple[float, int, float]] = ctx.Queue()
    child = ctx.Process(target=_restore_child, args=(bootstrap, partitions, queue))
    child.start()
    seconds, keys, rss = queue.get(timeout=1500)
    child.join(30)
    print(f"  {label:<28} {seconds:7.1f} s  {keys:>9,} keys  memory +{rss:6.0f} MiB", flush=True)
    return Restore(label, round(seconds, 2), keys, round(rss, 1))


def ended_payment(i: int, account: str, at: int) -> Operation:
    """An ended payment as the processor stores it: reserved, then succeeded, hold captured."""
    return Operation(
        op_id=f"pay_{i:09d}", kind=OperationKind.PAYMENT, account_id=account, principal=f"user_{i % 50}",
        amount=100 + i % 5000, currency="EUR", payee=f"merchant_{i % 997}", fingerprint=f"{i:064x}",
        status=OperationStatus.SUCCEEDED, psp_movement_id=f"mv_{i:09d}",
        hold=Hold(amount=100 + i % 5000, status=HoldStatus.CAPTURED), deadline_at=at + 900_000,
        created_at=at, updated_at=at + 50,
        history=(StatusChange(status=OperationStatus.RESERVED, at=at, seq=2 * i + 3),
                 StatusChange(status=OperationStatus.SUCCEEDED, at=at + 50, seq=2 * i + 4)),
    )  # fmt: skip


class ChangelogWriter:
    """Transactional writes to the changelog, as the runtime makes them (one producer, big transactions)."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self._partitions = partitions
        self._producer = Producer(
            {
                **KafkaSettings(bootstrap=bootstrap).client_config(),
                "transactional.id": f"restore-bench-{uuid.uuid4().hex}",
                "linger.ms": 50,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 1024 * 1024,
                "transaction.timeout.ms": 300_000,
            }
        )
        self._producer.init_transactions(60)
        self._in_txn = 0

    def put(self, account: str, key: str, value: bytes | None) -> None:
        if self._in_txn == 0:
            self._producer.begin_transaction()
        while True:
            try:
                self._producer.produce(
                    TOPIC,
                    key=key.encode(),
                    value=value,
                    partition=partition_for(account.encode(), self._partitions),
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._in_txn += 1
        if self._in_txn >= 100_000:
            self.commit()

    def put_at(self, partition: int, key: str, value: bytes | None) -> None:
        if self._in_txn == 0:
            self._producer.begin_transaction()
        self._producer.produce(TOPIC, key=key.encode(), value=value, partition=partition)
        self._in_txn += 1

    def commit(self) -> None:
        if self._in_txn:
            self._producer.commit_transaction(120)
            self._in_txn = 0


def write_history(writer: ChangelogWriter, accounts: int, payments: int, long_ago: int) -> None:
    codec = StateCodec()
    for a in range(accounts):
        acc = f"acct_{a:06d}"
        snap = AccountSnapshot(
            account_id=acc, status=AccountStatus.OPEN, currency="EUR",
            members=tuple(f"user_{u}" for u in range(a % 7 + 2)), posted=10**9, version=2 * payments // accounts,
        )  # fmt: skip
        writer.put(acc, ACCOUNT_PREFIX + acc, codec.encode(ACCOUNT_PREFIX + acc, snap))
    for i in range(payments):
        acc = f"acct_{i % accounts:06d}"
        op = ended_payment(i, acc, long_ago + i)
        writer.put(acc, OPERATION_PREFIX + op.op_id, codec.encode(OPERATION_PREFIX + op.op_id, op))
    writer.commit()


def prune(writer: ChangelogWriter, accounts: int, payments: int, now: int, retention_ms: int) -> int:
    """Tombstones for what the processor's own pruner names (the runtime writes exactly these records)."""
    state: dict[str, object] = {}
    for i in range(payments):
        acc = f"acct_{i % accounts:06d}"
        op = ended_payment(i, acc, now - retention_ms - DAY_MS + i % 1000)
        state[OPERATION_PREFIX + op.op_id] = op
    names = list(RetentionPruner(retention_ms)(state, now))
    for key in names:
        named = state[key]
        assert isinstance(named, Operation)
        writer.put(named.account_id, key, None)
    writer.commit()
    return len(names)


def wait_for_compaction(
    writer: ChangelogWriter, bootstrap: str, partitions: int, accounts: int, timeout_s: float
) -> float:
    """Seconds until a restore would find only the accounts (checked by restoring, as a processor would).

    The cleaner never touches a partition's active segment, where the tombstones just written are: a
    tombstone of a key that never held a value, once ``segment.ms`` has passed, rolls it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        time.sleep(3)
        for p in range(partitions):
            writer.put_at(p, ACCOUNT_PREFIX + "__segment_roll__", None)
        writer.commit()
        time.sleep(5)
        stores = restore_partitions(
            KafkaSettings(bootstrap=bootstrap).client_config(),
            TOPIC,
            range(partitions),
            _CountingCodec(),
            600,
        )
        if _CountingCodec.decoded <= accounts * 1.05:
            return time.monotonic() - started
        _CountingCodec.decoded = 0
        del stores
    return float("nan")


class _CountingCodec(StateCodec):
    """Counts the values a restore decodes: tombstones and compacted-away values cost nothing."""

    decoded = 0

    def decode(self, key: str, raw: bytes) -> object:
        _CountingCodec.decoded += 1
        return None


def plot(results: list[Restore], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [r.label for r in results]
    ax1.barh(labels, [r.seconds for r in results], color="#4c72b0")
    ax1.set_xlabel("restore time (s)")
    ax2.barh(labels, [r.peak_rss_growth_mib for r in results], color="#dd8452")
    ax2.set_xlabel("memory the restore took (peak RSS growth, MiB)")
    ax2.set_yticks([])
    fig.suptitle("Processor state restore with 1M historical payments")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restore_bench", description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--compaction-timeout-s", type=float, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    retention_ms = 35 * DAY_MS
    now = int(time.time() * 1000)
    results: list[Restore] = []
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as tmp:
        broker = KafkaBroker(Path(tmp) / "kafka", partitions=args.partitions,
                             overrides={"log.cleaner.backoff.ms": "1000"})  # fmt: skip
        with broker:
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            fut = admin.create_topics([NewTopic(TOPIC, args.partitions, 1, config=TOPIC_CONFIG)])
            fut[TOPIC].result(60)
            writer = ChangelogWriter(broker.bootstrap, args.partitions)
            started = time.monotonic()
            write_history(writer, args.accounts, args.payments, now - retention_ms - DAY_MS)
            print(f"wrote {args.accounts:,} accounts and {args.payments:,} ended payments "
                  f"in {time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
            results.append(restore("unpruned (all history)", broker.bootstrap, args.partitions))
            pruned = prune(writer, args.accounts, args.payments, now, retention_ms)
            print(
                f"pruner named {pruned:,} payments past the 35-day retention; tombstones written", flush=True
            )
            results.append(restore("pruned, before compaction", broker.bootstrap, args.partitions))
            waited = wait_for_compaction(
                writer, broker.bootstrap, args.partitions, args.accounts, args.compaction_timeout_s
            )
            print(f"log cleaner done after {waited:.0f} s", flush=True)
            results.append(restore("pruned, compacted", broker.bootstrap, args.partitions))
    (args.out / "restore.json").write_text(
        json.dumps(
            {
                "payments": args.payments,
                "accounts": args.accounts,
                "partitions": args.partitions,
                "retention_days": retention_ms // DAY_MS,
                "restores": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    plot(results, args.out / "restore.png")
    print(f"results in {args.out}/restore.json and restore.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
