"""The tracker: which payments and top-ups are open, kept as keyed state fed by ``payments.results``."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from payments.reconciler.tracking import TrackedCodec, TrackedOp, TrackerTransformer, tracked_from
from payments.schemas.commands import AdjustBalance, OpenAccount
from payments.schemas.psp import PspOutcomeStatus
from payments.schemas.state import OperationKind, OperationStatus, ResultEvent, ResultType
from payments.streaming.store import BatchState, PartitionStore, StateAccess
from payments.streaming.types import InputRecord
from tests.reconciler.support import ACC, TTL_MS, World, funded_world, payment, psp_outcome, top_up

PARTITION = 3


class Tracker:
    """The transformer on a real partition store, one batch at a time, as the runtime drives it."""

    def __init__(self) -> None:
        self.store = PartitionStore(PARTITION)
        self.transform = TrackerTransformer()
        self.offset = 0
        self.new_batch()

    def new_batch(self) -> None:
        self.batch = BatchState()
        self.state: StateAccess = self.batch.access(self.store)

    def feed(self, value: bytes | None) -> None:
        record = InputRecord(PARTITION, self.offset, ACC.encode(), value, 0)
        self.offset += 1
        assert self.transform(self.state, record) == ()  # the tracker never produces records

    def feed_event(self, event: ResultEvent) -> None:
        self.feed(event.model_dump_json().encode())

    def dirty(self) -> list[tuple[int, str, object | None]]:
        return list(self.batch.dirty())


def test_a_reserved_payment_is_tracked_with_what_a_redrive_needs() -> None:
    world = funded_world()
    event = world.apply(payment("pay_1", amount=1250, at=1_000, payee="payee_9")).results[0]
    assert event.type is ResultType.PAYMENT_RESERVED
    assert tracked_from(event) == TrackedOp(
        op_id="pay_1",
        account_id=ACC,
        kind=OperationKind.PAYMENT,
        status=OperationStatus.RESERVED,
        amount=1250,
        currency="EUR",
        payee="payee_9",
        payment_method=None,
        deadline_at=1_000 + TTL_MS,
        since=1_000,
        seq=event.seq,
    )


def test_since_is_when_the_op_entered_its_status_and_seq_that_results() -> None:
    world = funded_world()
    world.apply(top_up("top_1", amount=5_000, at=1_000, card="tok_abc"))
    event = world.apply(psp_outcome("top_1", PspOutcomeStatus.UNKNOWN, at=7_500)).results[0]
    assert event.type is ResultType.TOP_UP_UNKNOWN
    op = tracked_from(event)
    assert op is not None
    assert (op.status, op.since, op.seq) == (OperationStatus.UNKNOWN, 7_500, event.seq)
    assert event.operation is not None
    assert event.operation.created_at == 1_000
    assert (op.kind, op.payment_method, op.payee, op.amount) == (OperationKind.TOP_UP, "tok_abc", None, 5_000)
    assert op.seq == 4  # open, fund, top-up, unknown


def test_terminal_results_and_adjustments_track_nothing() -> None:
    world = funded_world()
    world.apply(payment("pay_1"))
    succeeded = world.apply(psp_outcome("pay_1", PspOutcomeStatus.SUCCEEDED, at=2_000, movement_id="mv_1"))
    assert succeeded.results[0].type is ResultType.PAYMENT_SUCCEEDED
    assert tracked_from(succeeded.results[0]) is None
    declined = funded_world().apply(payment("pay_x", amount=10**9)).results[0]  # terminal from the start
    assert declined.type is ResultType.PAYMENT_DECLINED
    assert tracked_from(declined) is None


def test_the_tracker_puts_open_ops_and_deletes_them_when_they_end() -> None:
    world = funded_world()
    tracker = Tracker()
    reserved = world.apply(payment("pay_1", at=1_000)).results[0]
    tracker.feed_event(reserved)
    expected = tracked_from(reserved)
    assert tracker.store.data == {"pay_1": expected}
    # The runtime writes exactly this to the changelog for the batch.
    assert tracker.dirty() == [(PARTITION, "pay_1", expected)]

    tracker.new_batch()
    unknown = world.apply(psp_outcome("pay_1", PspOutcomeStatus.UNKNOWN, at=3_000)).results[0]
    tracker.feed_event(unknown)
    entry = tracker.store.data["pay_1"]
    assert isinstance(entry, TrackedOp)
    assert (entry.status, entry.since, entry.seq) == (OperationStatus.UNKNOWN, 3_000, unknown.seq)

    tracker.new_batch()
    failed = world.apply(psp_outcome("pay_1", PspOutcomeStatus.FAILED, at=4_000, movement_id="mv_1")).results[
        0
    ]
    assert failed.type is ResultType.PAYMENT_FAILED
    tracker.feed_event(failed)
    assert tracker.store.data == {}
    assert tracker.dirty() == [(PARTITION, "pay_1", None)]  # a tombstone for the compacted changelog


def test_a_terminal_result_for_an_untracked_op_writes_nothing() -> None:
    world = funded_world()
    tracker = Tracker()
    world.apply(payment("pay_1"))
    tracker.feed_event(world.apply(psp_outcome("pay_1", PspOutcomeStatus.SUCCEEDED, at=2_000)).results[0])
    assert tracker.store.data == {}
    assert tracker.dirty() == []  # no needless tombstone


def test_a_batch_with_open_and_ended_ops_leaves_only_the_open_ones() -> None:
    world = funded_world()
    tracker = Tracker()
    for event in (
        world.apply(payment("pay_1", at=1_000)).results[0],
        world.apply(top_up("top_1", at=1_100)).results[0],
        world.apply(payment("pay_2", at=1_200)).results[0],
        world.apply(psp_outcome("pay_1", PspOutcomeStatus.SUCCEEDED, at=1_300)).results[0],
    ):
        tracker.feed_event(event)
    assert sorted(tracker.store.data) == ["pay_2", "top_1"]
    assert {(p, k, v is None) for p, k, v in tracker.dirty()} == {
        (PARTITION, "pay_1", True),
        (PARTITION, "top_1", False),
        (PARTITION, "pay_2", False),
    }
    tracker.batch.rollback()  # an aborted transaction forgets the whole batch
    assert tracker.store.data == {}


def test_results_without_operation_or_for_adjustments_are_ignored() -> None:
    world = World()
    tracker = Tracker()
    opened = world.apply(
        OpenAccount(
            command_id="o", account_id=ACC, issued_at=1, currency="EUR", members=("alice",), principal="a"
        )
    ).results[0]
    assert opened.operation is None
    adjusted = world.apply(
        AdjustBalance(
            command_id="adj_9",
            account_id=ACC,
            issued_at=2,
            amount=10,
            currency="EUR",
            reason="r",
            principal="a",
        )
    ).results[0]
    assert adjusted.operation is not None
    assert adjusted.operation.kind is OperationKind.ADJUSTMENT
    # Even an adjustment claiming to be non-terminal is not a PSP operation.
    odd = adjusted.model_copy(
        update={"operation": adjusted.operation.model_copy(update={"status": OperationStatus.PROCESSING})}
    )
    assert tracked_from(odd) is None
    tracker.feed_event(opened)
    tracker.feed_event(adjusted)
    tracker.feed_event(odd)
    assert tracker.store.data == {}
    assert tracker.dirty() == []


@pytest.mark.parametrize(
    "value",
    [b"not json", b"\xff\xfe\x00", b"{}", b'{"v": 2, "event_id": "x"}', b"[]"],
)
def test_an_unreadable_result_is_skipped_without_raising(
    value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = Tracker()
    world = funded_world()
    with caplog.at_level(logging.ERROR, logger="payments.reconciler.tracking"):
        tracker.feed(value)
    assert tracker.store.data == {}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"skipping unreadable result at partition={PARTITION} offset=0"]  # never the payload
    # and the next readable result is still applied
    tracker.feed_event(world.apply(payment("pay_1")).results[0])
    assert list(tracker.store.data) == ["pay_1"]


def test_a_tombstone_on_results_is_ignored() -> None:
    tracker = Tracker()
    tracker.feed(None)
    assert tracker.store.data == {}
    assert tracker.dirty() == []


def test_the_codec_round_trips_tracked_ops() -> None:
    world = funded_world()
    codec = TrackedCodec()
    for event in (world.apply(payment("pay_1")).results[0], world.apply(top_up("top_1")).results[0]):
        op = tracked_from(event)
        assert op is not None
        raw = codec.encode(op.op_id, op)
        assert isinstance(raw, bytes)
        assert codec.decode(op.op_id, raw) == op


def test_the_codec_refuses_what_is_not_a_tracked_op() -> None:
    codec = TrackedCodec()
    with pytest.raises(TypeError, match="pay_1"):
        codec.encode("pay_1", {"op_id": "pay_1"})
    with pytest.raises(ValidationError):
        codec.decode("pay_1", b'{"op_id": "pay_1"}')
