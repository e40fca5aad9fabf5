"""The SQLite store of the reference consumer, on real SQLite files (no Kafka)."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from payments.fulfillment.apply import Delivered, GapPolicy
from payments.fulfillment.errors import FulfillmentError
from payments.fulfillment.store import FulfillmentStore
from payments.schemas.state import ResultEvent, ResultType
from tests.fulfillment.results import history

TOPIC = "results"


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def _stream(events: list[ResultEvent], partition: int = 0, first_offset: int = 0) -> list[Delivered]:
    return [Delivered(partition, first_offset + i, e) for i, e in enumerate(events)]


def test_batches_apply_each_result_once_and_store_offsets(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    events = history("a", 40, random.Random(1))
    recs = _stream(events)
    store = FulfillmentStore(path)
    store.apply_batch(TOPIC, recs[:25])
    store.apply_batch(TOPIC, recs[10:])  # overlaps the first batch: 15 re-deliveries
    store.close()

    store = FulfillmentStore(path)  # reopened: everything persisted
    assert store.stored_offsets(TOPIC) == {0: 40}
    assert store.stored_offsets("other") == {}
    store.close()
    assert _rows(path, "SELECT last_seq, duplicates_skipped FROM consumer_progress") == [(40, 15)]
    assert _rows(path, "SELECT seq FROM applied_results ORDER BY id") == [(s,) for s in range(1, 41)]
    succeeded = [e for e in events if e.type is ResultType.PAYMENT_SUCCEEDED]
    assert _rows(path, "SELECT event_id FROM fulfillments ORDER BY seq") == [(e.event_id,) for e in succeeded]
    last = events[-1].account
    amount = sum(e.operation.amount for e in succeeded if e.operation)
    assert _rows(
        path,
        "SELECT posted, held, available, version, results_applied, fulfilled_count, fulfilled_amount "
        "FROM account_view",
    ) == [(last.posted, last.held, last.available, 40, 40, len(succeeded), amount)]


def test_a_gap_commits_the_prefix_and_points_the_offset_at_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    a, b = history("a", 6, random.Random(2)), history("b", 2, random.Random(3))
    recs = [
        Delivered(0, 100, a[0]),
        Delivered(0, 101, a[1]),
        Delivered(1, 7, b[0]),
        Delivered(0, 102, a[4]),  # seq 5 after 2
        Delivered(1, 8, b[1]),  # after the gap: not handled
    ]
    with_gap = FulfillmentStore(path)
    plan = with_gap.apply_batch(TOPIC, recs)
    assert plan.gap is not None
    assert (plan.gap.expected, plan.gap.got) == (3, 5)
    assert with_gap.stored_offsets(TOPIC) == {0: 102, 1: 8}
    # Restarting (even with the baseline policy: the account is known) stops at the same record.
    again = with_gap.apply_batch(TOPIC, recs[3:], GapPolicy.BASELINE)
    assert again.gap is not None
    assert again.applied == []
    with_gap.close()
    assert _rows(path, "SELECT account_id, last_seq FROM consumer_progress ORDER BY 1") == [
        ("a", 2),
        ("b", 1),
    ]


def test_baseline_policy_starts_an_unseen_account_at_its_first_seq(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    events = history("a", 10, random.Random(4))
    store = FulfillmentStore(path)
    assert store.apply_batch(TOPIC, _stream(events[6:], first_offset=6)).gap is not None  # stop (default)
    plan = store.apply_batch(TOPIC, _stream(events[6:], first_offset=6), GapPolicy.BASELINE)
    store.close()
    assert plan.gap is None
    assert _rows(path, "SELECT seq, verdict FROM applied_results ORDER BY id") == [
        (7, "baseline"),
        (8, "apply"),
        (9, "apply"),
        (10, "apply"),
    ]


def test_offsets_never_move_back(tmp_path: Path) -> None:
    """A zombie (revoked, finishing an old batch) writes an older position: the newer one stays."""
    events = history("a", 10, random.Random(5))
    store = FulfillmentStore(tmp_path / "f.sqlite3")
    store.apply_batch(TOPIC, _stream(events))
    store.apply_batch(TOPIC, _stream(events[:3]))  # all duplicates, older offsets
    assert store.stored_offsets(TOPIC) == {0: 10}
    store.close()


def test_a_failed_write_rolls_back_effects_and_offsets_together(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    events = history("a", 5, random.Random(6))
    assert any(e.type is ResultType.PAYMENT_SUCCEEDED for e in events[2:])  # the row that will conflict
    store = FulfillmentStore(path)
    store.apply_batch(TOPIC, _stream(events[:2]))
    # A conflicting fulfillment row makes the batch's insert fail half-way through the transaction.
    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO fulfillments VALUES (?, 'a', 0, 'x', 't', 0, 'EUR', NULL, 0)",
            [(e.event_id,) for e in events[2:]],
        )
    with pytest.raises(sqlite3.IntegrityError):
        store.apply_batch(TOPIC, _stream(events[2:], first_offset=2))
    assert store.stored_offsets(TOPIC) == {0: 2}
    store.close()
    assert _rows(path, "SELECT last_seq FROM consumer_progress") == [(2,)]
    assert _rows(path, "SELECT COUNT(*) FROM applied_results") == [(2,)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(FulfillmentError, match="newer than this consumer"):
        FulfillmentStore(path)
