"""The external store of the reference consumer: one SQLite file holding the side effects, the per-account
progress and the Kafka offsets, all written in one transaction per batch.

Tables:

- ``consumer_progress(account_id, last_seq, duplicates_skipped)``: the highest ``seq`` applied per account
  (the dedupe key) and how many re-deliveries were skipped (an audit aid);
- ``kafka_offsets(topic, kafka_partition, next_offset)``: where to resume, stored with the effects so that
  the two can never disagree; the consumer seeks here on every assignment;
- ``applied_results``: a journal with one row per application and deliberately no unique key. It stands
  for a side effect that is not idempotent by itself (an e-mail, a counter): a double application shows;
- ``fulfillments(event_id PRIMARY KEY, op_id, ...)``: the example business effect, one per succeeded
  payment;
- ``account_view``: the latest account snapshot plus running totals (non-idempotent increments).

``BEGIN IMMEDIATE`` takes SQLite's write lock before ``last_seq`` is read, so even two instances sharing the
file (a zombie after a rebalance) cannot both apply the same ``seq``. On Postgres the same needs
``SELECT ... FOR UPDATE`` on the progress rows (docs/downstream.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from payments.fulfillment.apply import BatchPlan, Delivered, GapPolicy, fulfillment_for, plan_batch
from payments.fulfillment.errors import FulfillmentError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consumer_progress (
    account_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL CHECK (last_seq >= 1),
    duplicates_skipped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS kafka_offsets (
    topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);
CREATE TABLE IF NOT EXISTS applied_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    command_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS applied_results_account ON applied_results (account_id, seq);
CREATE TABLE IF NOT EXISTS fulfillments (
    event_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    op_id TEXT NOT NULL,
    type TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    payee TEXT,
    occurred_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fulfillments_op ON fulfillments (op_id);
CREATE TABLE IF NOT EXISTS account_view (
    account_id TEXT PRIMARY KEY,
    currency TEXT,
    posted INTEGER NOT NULL,
    held INTEGER NOT NULL,
    available INTEGER NOT NULL,
    version INTEGER NOT NULL,
    results_applied INTEGER NOT NULL,
    fulfilled_count INTEGER NOT NULL,
    fulfilled_amount INTEGER NOT NULL
);
"""

# SQLite's default limit on bound parameters is 32766 since 3.32; stay far below it per query.
_IN_CHUNK = 500


class FulfillmentStore:
    """One connection, used from the consumer's thread only (rebalance callbacks run on it too)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        # isolation_level=None: no implicit transactions; every write happens inside our explicit
        # BEGIN IMMEDIATE ... COMMIT.
        self._db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers (reports, tests) never block the writer
        # FULL: a committed batch survives power loss too. (NORMAL would still be consistent, since a lost
        # tail rolls back effects and offsets together and is simply re-applied.)
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise FulfillmentError(f"store schema {version} is newer than this consumer ({SCHEMA_VERSION})")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE: take the write lock now, before reading last_seq (no read-then-upgrade race).
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------------------

    def stored_offsets(self, topic: str) -> dict[int, int]:
        """partition -> next offset to read, for every partition of ``topic`` this store has handled."""
        rows = self._db.execute(
            "SELECT kafka_partition, next_offset FROM kafka_offsets WHERE topic = ?", (topic,)
        ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def _last_seqs(self, accounts: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in range(0, len(accounts), _IN_CHUNK):
            chunk = accounts[i : i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT account_id, last_seq FROM consumer_progress WHERE account_id IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )
            out.update({str(a): int(s) for a, s in rows})
        return out

    # -- the batch -------------------------------------------------------------------------------------

    def apply_batch(
        self, topic: str, records: Sequence[Delivered], policy: GapPolicy = GapPolicy.STOP
    ) -> BatchPlan:
        """Plan and write ``records`` atomically: effects, progress and offsets commit together or not at
        all. Records after a gap are left untouched (their offsets are not advanced); the caller stops."""
        with self._transaction():
            accounts = sorted({r.event.account_id for r in records})
            plan = plan_batch(records, self._last_seqs(accounts), policy)
            self._write(topic, plan)
        return plan

    def _write(self, topic: str, plan: BatchPlan) -> None:
        db = self._db
        db.executemany(
            "INSERT INTO applied_results (event_id, account_id, seq, type, command_id, verdict, "
            "kafka_partition, kafka_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.event.event_id,
                    r.event.account_id,
                    r.event.seq,
                    r.event.type.value,
                    r.event.command_id,
                    verdict.value,
                    r.partition,
                    r.offset,
                )
                for r, verdict in plan.applied
            ],
        )
        fulfillments = [f for f in (fulfillment_for(r.event) for r, _ in plan.applied) if f is not None]
        db.executemany(
            "INSERT INTO fulfillments (event_id, account_id, seq, op_id, type, amount, currency, payee, "
            "occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f.event_id,
                    f.account_id,
                    f.seq,
                    f.op_id,
                    f.type,
                    f.amount,
                    f.currency,
                    f.payee,
                    f.occurred_at,
                )
                for f in fulfillments
            ],
        )
        fulfilled = {f.event_id: f.amount for f in fulfillments}
        db.executemany(
            "INSERT INTO account_view (account_id, currency, posted, held, available, version, "
            "results_applied, fulfilled_count, fulfilled_amount) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET currency = excluded.currency, "
            "posted = excluded.posted, held = excluded.held, available = excluded.available, "
            "version = excluded.version, results_applied = results_applied + 1, "
            "fulfilled_count = fulfilled_count + excluded.fulfilled_count, "
            "fulfilled_amount = fulfilled_amount + excluded.fulfilled_amount",
            [
                (
                    r.event.account_id,
                    r.event.account.currency,
                    r.event.account.posted,
                    r.event.account.held,
                    r.event.account.available,
                    r.event.seq,
                    1 if r.event.event_id in fulfilled else 0,
                    fulfilled.get(r.event.event_id, 0),
                )
                for r, _ in plan.applied
            ],
        )
        db.executemany(
            "INSERT INTO consumer_progress (account_id, last_seq) VALUES (?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET last_seq = excluded.last_seq",
            sorted(plan.last_seq.items()),
        )
        skipped: dict[str, int] = {}
        for r in plan.duplicates:
            skipped[r.event.account_id] = skipped.get(r.event.account_id, 0) + 1
        # A duplicate always has a progress row: its seq is <= a last_seq that was stored or set above.
        db.executemany(
            "UPDATE consumer_progress SET duplicates_skipped = duplicates_skipped + ? WHERE account_id = ?",
            [(n, account) for account, n in sorted(skipped.items())],
        )
        # MAX: a zombie instance (revoked, still finishing a batch) must not move a newer position back.
        # Any stored offset is safe to resume from: every record before it was handled in a committed batch.
        db.executemany(
            "INSERT INTO kafka_offsets (topic, kafka_partition, next_offset) VALUES (?, ?, ?) "
            "ON CONFLICT (topic, kafka_partition) DO UPDATE SET "
            "next_offset = MAX(next_offset, excluded.next_offset)",
            [(topic, p, o) for p, o in sorted(plan.next_offsets.items())],
        )
