"""The pure core of the reference consumer: classify, plan_batch, fulfillment_for, decode. No I/O."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.fulfillment.apply import (
    Delivered,
    GapPolicy,
    Verdict,
    classify,
    fulfillment_for,
    plan_batch,
)
from payments.fulfillment.consumer import decode
from payments.fulfillment.errors import UndecodableResult
from payments.schemas.state import ResultType
from payments.streaming.read import Record
from tests.fulfillment.results import encode, history


@pytest.mark.parametrize(
    ("last", "seq", "policy", "verdict"),
    [
        (None, 1, GapPolicy.STOP, Verdict.APPLY),
        (None, 2, GapPolicy.STOP, Verdict.GAP),
        (None, 7, GapPolicy.BASELINE, Verdict.BASELINE),
        (None, 1, GapPolicy.BASELINE, Verdict.APPLY),
        (4, 5, GapPolicy.STOP, Verdict.APPLY),
        (4, 4, GapPolicy.STOP, Verdict.DUPLICATE),
        (4, 1, GapPolicy.STOP, Verdict.DUPLICATE),
        (4, 6, GapPolicy.STOP, Verdict.GAP),
        # baseline is only for accounts never seen: a gap after the first applied result always stops
        (4, 6, GapPolicy.BASELINE, Verdict.GAP),
    ],
)
def test_classify(last: int | None, seq: int, policy: GapPolicy, verdict: Verdict) -> None:
    assert classify(last, seq, policy) is verdict


def test_classify_rejects_non_positive_seq() -> None:
    with pytest.raises(ValueError, match="seq must be >= 1"):
        classify(None, 0)


def test_plan_batch_tracks_progress_within_the_batch_and_skips_duplicates() -> None:
    rng = random.Random(1)
    a, b = history("a", 4, rng), history("b", 3, rng)
    recs = [
        Delivered(0, 10, a[2]),  # stored last_seq of a is 2: seq 3 applies
        Delivered(1, 20, b[0]),
        Delivered(0, 11, a[1]),  # duplicate of an earlier result
        Delivered(0, 12, a[3]),
        Delivered(1, 21, b[1]),
        Delivered(0, 13, a[3]),  # duplicate of a result applied earlier in this batch
    ]
    plan = plan_batch(recs, {"a": 2})
    assert [(r.event.event_id, v) for r, v in plan.applied] == [
        ("a:3", Verdict.APPLY),
        ("b:1", Verdict.APPLY),
        ("a:4", Verdict.APPLY),
        ("b:2", Verdict.APPLY),
    ]
    assert [r.offset for r in plan.duplicates] == [11, 13]
    assert plan.last_seq == {"a": 4, "b": 2}
    assert plan.next_offsets == {0: 14, 1: 22}
    assert plan.gap is None


def test_plan_batch_stops_at_the_first_gap_and_leaves_later_records_unhandled() -> None:
    rng = random.Random(2)
    a, b = history("a", 5, rng), history("b", 3, rng)
    recs = [
        Delivered(0, 0, a[0]),
        Delivered(1, 0, b[0]),
        Delivered(0, 1, a[2]),  # seq 3 after 1: gap
        Delivered(1, 1, b[1]),  # after the gap in the batch: not handled
    ]
    plan = plan_batch(recs, {})
    assert [r.event.event_id for r, _ in plan.applied] == ["a:1", "b:1"]
    assert plan.next_offsets == {0: 1, 1: 1}  # partition 0 resumes at the gap record itself
    assert plan.gap is not None
    assert (plan.gap.expected, plan.gap.got, plan.gap.record.offset) == (2, 3, 1)
    text = plan.gap.describe("results")
    assert "account a: expected seq 2, got 3 at results[0]@1" in text


def test_plan_batch_baseline_accepts_an_unseen_account_once() -> None:
    rng = random.Random(3)
    a = history("a", 9, rng)
    plan = plan_batch(
        [Delivered(0, 0, a[6]), Delivered(0, 1, a[7]), Delivered(0, 2, a[5])], {}, GapPolicy.BASELINE
    )
    assert [(r.event.seq, v) for r, v in plan.applied] == [(7, Verdict.BASELINE), (8, Verdict.APPLY)]
    assert [r.event.seq for r in plan.duplicates] == [6]
    assert plan.last_seq == {"a": 8}


@given(
    n=st.integers(min_value=1, max_value=30),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
    redeliveries=st.lists(st.tuples(st.integers(min_value=0, max_value=60), st.integers(0, 60)), max_size=8),
)
def test_any_redelivery_pattern_applies_each_seq_exactly_once(
    n: int, cuts: list[int], redeliveries: list[tuple[int, int]]
) -> None:
    """The stream is the history in order, with earlier stretches re-delivered at arbitrary points (a
    consumer rewound after a crash or rebalance), cut into batches anywhere: every seq applies once."""
    events = history("a", n, random.Random(n))
    stream = list(events)
    for at, back in redeliveries:
        pos = min(at, len(stream))
        seen = max((e.seq for e in stream[:pos]), default=0)  # everything up to here was delivered
        stream[pos:pos] = events[max(0, seen - back) : seen]
    recs = [Delivered(0, i, e) for i, e in enumerate(stream)]
    bounds = sorted({0, len(recs), *(min(c, len(recs)) for c in cuts)})
    stored: dict[str, int] = {}
    applied: list[int] = []
    for lo, hi in itertools.pairwise(bounds):
        plan = plan_batch(recs[lo:hi], stored)
        assert plan.gap is None
        applied += [r.event.seq for r, _ in plan.applied]
        stored.update(plan.last_seq)
    assert applied == list(range(1, n + 1))


def test_fulfillment_only_for_succeeded_payments() -> None:
    events = history("acct-1", 80, random.Random(4))
    fulfilled = [f for f in map(fulfillment_for, events) if f is not None]
    succeeded = [e for e in events if e.type is ResultType.PAYMENT_SUCCEEDED]
    assert fulfilled
    assert len(fulfilled) == len(succeeded)
    f, e = fulfilled[0], succeeded[0]
    assert e.operation is not None
    assert (f.event_id, f.seq, f.op_id, f.amount, f.currency, f.payee) == (
        e.event_id,
        e.seq,
        e.operation.op_id,
        e.operation.amount,
        "EUR",
        "payee-1",
    )


def test_decode_accepts_a_result_keyed_by_its_account() -> None:
    event = history("acct-1", 1, random.Random(5))[0]
    msg = Record(topic="results", partition=3, offset=42, key=b"acct-1", value=encode(event))
    assert decode("results", msg) == Delivered(3, 42, event)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (b"acct-1", b"{not json", r"undecodable result at results\[3\]@42"),
        (b"acct-1", b'{"v": 2}', "undecodable result"),
        (b"acct-1", None, "tombstone"),
        (b"acct-2", "event", "keyed by another account"),
    ],
)
def test_decode_rejects_what_it_cannot_apply(key: bytes, value: bytes | str | None, match: str) -> None:
    raw = encode(history("acct-1", 1, random.Random(6))[0]) if value == "event" else value
    assert not isinstance(raw, str)
    msg = Record(topic="results", partition=3, offset=42, key=key, value=raw)
    with pytest.raises(UndecodableResult, match=match):
        decode("results", msg)
