"""The sweeper: which open operations it looks up when, and which command or request each answer produces.

The PSP client and the producer are small async fakes that record calls (the sweeper only awaits
``lookup`` and ``send``); the clock is a number the test moves. No broker, no network.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import cast

import pytest

from payments.pspclient.money import build_call
from payments.reconciler.policy import Lookup, LookupKind, ReconcilePolicy
from payments.reconciler.psp_lookup import PspReadClient
from payments.reconciler.sweeper import Handoff, Sweeper, SweeperDeps, redrive_request
from payments.reconciler.tracking import TrackedOp, tracked_from
from payments.schemas.commands import ExpireOperation, RecordPspOutcome, decode_command
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus, PspRequest, PspRequestKind
from payments.schemas.state import OperationKind, OperationStatus
from payments.settings import TopicNames
from payments.streaming.producer import AsyncProducer
from tests.reconciler.support import ACC, funded_world, payment, psp_outcome, top_up, tracked

TOPICS = TopicNames()
POLICY = ReconcilePolicy()  # check 30 s, unknown 1 s, backoff 1 s..60 s, grace 30 s
DEADLINE = 600_000
EXPIRY = DEADLINE + POLICY.expire_grace_ms
NOT_FOUND = Lookup(LookupKind.NOT_FOUND)


class FakePsp:
    """Answers lookups from a table (NOT_FOUND by default); ``hold()`` makes lookups wait."""

    def __init__(self) -> None:
        self.answers: dict[str, Lookup] = {}
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def lookup(self, key: str) -> Lookup:
        self.calls.append(key)
        await self.gate.wait()
        return self.answers.get(key, NOT_FOUND)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = False

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail:
            raise RuntimeError("delivery timed out")
        self.sent.append((topic, key, value))


class Rig:
    def __init__(self, *, max_concurrent: int = 32, now: int = 0) -> None:
        self.now = now
        self.psp = FakePsp()
        self.producer = FakeProducer()
        self.handoff = Handoff()
        self.sweeper = Sweeper(
            self.handoff,
            SweeperDeps(
                client=cast(PspReadClient, self.psp),
                producer=cast(AsyncProducer, self.producer),
                topics=TOPICS,
                policy=POLICY,
                now_ms=lambda: self.now,
                rng=random.Random(7),
                max_concurrent=max_concurrent,
            ),
        )

    def publish(self, *ops: TrackedOp) -> None:
        """What the tracker's punctuator hands over: the owned partitions' open operations."""
        self.handoff({0: {op.op_id: op for op in ops}})

    async def tick(self, at: int | None = None) -> None:
        """One tick at ``at``, then wait for every lookup it started."""
        if at is not None:
            self.now = at
        self.sweeper.tick()
        await self.drain()

    async def drain(self) -> None:
        await asyncio.gather(*list(self.sweeper._tasks))


# ---- Handoff -----------------------------------------------------------------------------------------------------


def test_the_handoff_keeps_only_tracked_ops_of_the_latest_view() -> None:
    handoff = Handoff()
    a, b, c = tracked("pay_a"), tracked("pay_b"), tracked("pay_c")
    handoff({0: {"pay_a": a, "junk": "not an op", "acct": {"posted": 1}}, 5: {"pay_b": b}})
    assert handoff.latest() == {"pay_a": a, "pay_b": b}
    handoff({5: {"pay_c": c}})  # partition 0 was revoked: its ops are gone
    assert handoff.latest() == {"pay_c": c}
    handoff({})
    assert handoff.latest() == {}


def test_the_handoff_is_a_copy_not_the_runtimes_store() -> None:
    handoff = Handoff()
    part: dict[str, object] = {"pay_a": tracked("pay_a")}
    handoff({0: part})
    part["pay_b"] = tracked("pay_b")  # the runtime keeps writing its store after the punctuation
    del part["pay_a"]
    assert list(handoff.latest()) == ["pay_a"]


# ---- scheduling --------------------------------------------------------------------------------------------------


async def test_only_due_ops_are_looked_up() -> None:
    rig = Rig()
    unknown = tracked("pay_u", status=OperationStatus.UNKNOWN, since=0)  # first check at 1 s
    reserved = tracked("pay_r", status=OperationStatus.RESERVED, since=0)  # first check at 30 s
    rig.publish(unknown, reserved)
    await rig.tick(at=999)
    assert rig.psp.calls == []
    await rig.tick(at=1_000)
    assert rig.psp.calls == ["pay_u"]
    await rig.tick(at=1_500)  # pay_u backed off (>= 1 s), pay_r not due
    assert rig.psp.calls == ["pay_u"]
    await rig.tick(at=29_999)
    assert rig.psp.calls.count("pay_r") == 0
    await rig.tick(at=30_000)
    assert rig.psp.calls.count("pay_r") == 1


async def test_at_most_max_concurrent_lookups_run_and_the_oldest_go_first() -> None:
    rig = Rig(max_concurrent=2)
    ops = [tracked(f"pay_{i}", status=OperationStatus.UNKNOWN, since=100 * (5 - i)) for i in range(5)]
    rig.publish(*ops)
    rig.psp.gate.clear()
    rig.now = 10_000
    rig.sweeper.tick()
    await asyncio.sleep(0)
    assert rig.psp.calls == ["pay_4", "pay_3"]  # the earliest due first
    rig.sweeper.tick()  # both slots busy: nothing more starts, nothing starts twice
    await asyncio.sleep(0)
    assert rig.psp.calls == ["pay_4", "pay_3"]
    rig.psp.gate.set()
    await rig.drain()
    await rig.tick()  # same time: the two checked ones backed off, the next two start
    assert rig.psp.calls == ["pay_4", "pay_3", "pay_2", "pay_1"]
    await rig.tick()
    assert rig.psp.calls == ["pay_4", "pay_3", "pay_2", "pay_1", "pay_0"]
    await rig.tick()
    assert len(rig.psp.calls) == 5


async def test_ops_that_leave_the_handoff_are_unscheduled() -> None:
    rig = Rig()
    op = tracked("pay_1", status=OperationStatus.UNKNOWN, since=0, deadline_at=DEADLINE)
    rig.publish(op)
    await rig.tick(at=1_000)
    assert rig.psp.calls == ["pay_1"]  # not found: re-driven, next look after >= 1 s of backoff
    rig.publish()  # terminal now, or its partition moved away
    await rig.tick(at=1_500)
    await rig.tick(at=EXPIRY + 1)
    assert rig.psp.calls == ["pay_1"]
    # Back again (the partition came back): scheduled afresh from its status, not from the old backoff.
    rig.now = 1_500
    rig.publish(op)
    await rig.tick()
    assert rig.psp.calls == ["pay_1", "pay_1"]


async def test_a_newer_status_brings_the_next_check_forward() -> None:
    rig = Rig()
    reserved = tracked("pay_1", status=OperationStatus.RESERVED, since=0, seq=3)
    rig.publish(reserved)
    t = 30_000
    for _ in range(6):  # AskLater each time; the backoff grows to its 60 s cap
        await rig.tick(at=t)
        t += 60_000
    assert rig.psp.calls == ["pay_1"] * 6
    unknown = reserved.model_copy(update={"status": OperationStatus.UNKNOWN, "seq": 4, "since": t - 59_000})
    rig.publish(unknown)
    await rig.tick(at=t - 59_000 + 999)
    assert len(rig.psp.calls) == 6
    await rig.tick(at=t - 59_000 + 1_000)  # unknown_check_after, not the 30..60 s backoff
    assert len(rig.psp.calls) == 7


async def test_a_newer_status_during_a_lookup_still_brings_the_next_check_forward() -> None:
    rig = Rig()
    reserved = tracked("pay_1", status=OperationStatus.RESERVED, since=0, seq=3)
    rig.publish(reserved)
    t = 30_000
    for _ in range(6):
        await rig.tick(at=t)
        t += 60_000
    rig.psp.gate.clear()
    rig.now = t
    rig.sweeper.tick()  # the 7th lookup, still for the reserved op, hangs at the PSP
    await asyncio.sleep(0)
    assert len(rig.psp.calls) == 7
    rig.publish(reserved.model_copy(update={"status": OperationStatus.UNKNOWN, "seq": 4, "since": t}))
    rig.sweeper.tick()  # the psp-caller gave up meanwhile
    rig.psp.gate.set()
    await rig.drain()
    await rig.tick(at=t + POLICY.unknown_check_after_ms)
    assert len(rig.psp.calls) == 8


# ---- what answers produce ----------------------------------------------------------------------------------------


async def test_a_found_answer_records_the_outcome_on_the_commands_topic() -> None:
    rig = Rig()
    op = tracked("pay_1", status=OperationStatus.UNKNOWN, since=0, account_id="acc_42")
    rig.psp.answers["pay_1"] = Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_7", amount=1250)
    rig.publish(op)
    await rig.tick(at=1_234)
    [(topic, key, value)] = rig.producer.sent
    assert (topic, key) == (TOPICS.commands, b"acc_42")
    cmd = decode_command(value)
    assert isinstance(cmd, RecordPspOutcome)
    assert (cmd.account_id, cmd.op_id, cmd.status, cmd.source) == (
        "acc_42", "pay_1", PspOutcomeStatus.SUCCEEDED, PspOutcomeSource.RECONCILER,
    )  # fmt: skip
    assert (cmd.psp_movement_id, cmd.amount, cmd.psp_failure_code, cmd.issued_at) == (
        "mv_7",
        1250,
        None,
        1_234,
    )


async def test_a_found_failure_records_a_failed_outcome_with_its_code() -> None:
    rig = Rig()
    rig.psp.answers["top_1"] = Lookup(
        LookupKind.FOUND, succeeded=False, movement_id="mv_8", amount=None, failure_code="card_declined"
    )
    rig.publish(tracked("top_1", kind=OperationKind.TOP_UP, status=OperationStatus.PROCESSING, since=0))
    await rig.tick(at=30_000)
    [(topic, key, value)] = rig.producer.sent
    cmd = decode_command(value)
    assert (topic, key) == (TOPICS.commands, ACC.encode())
    assert isinstance(cmd, RecordPspOutcome)
    assert (cmd.status, cmd.psp_movement_id, cmd.psp_failure_code, cmd.amount) == (
        PspOutcomeStatus.FAILED, "mv_8", "card_declined", None,
    )  # fmt: skip


@pytest.mark.parametrize(
    "status", [OperationStatus.RESERVED, OperationStatus.PROCESSING, OperationStatus.UNKNOWN]
)
async def test_no_psp_record_past_the_deadline_expires_the_op(status: OperationStatus) -> None:
    rig = Rig()
    rig.publish(tracked("pay_1", status=status, since=0, deadline_at=DEADLINE, account_id="acc_9"))
    await rig.tick(at=EXPIRY)
    [(topic, key, value)] = rig.producer.sent
    assert (topic, key) == (TOPICS.commands, b"acc_9")
    cmd = decode_command(value)
    assert isinstance(cmd, ExpireOperation)
    assert (cmd.op_id, cmd.account_id, cmd.issued_at) == ("pay_1", "acc_9", EXPIRY)
    assert cmd.issued_at >= DEADLINE  # the processor ignores an expiry issued before the deadline


async def test_a_reserved_op_not_found_before_the_deadline_is_only_looked_at_again() -> None:
    rig = Rig()
    rig.publish(tracked("pay_1", status=OperationStatus.RESERVED, since=0, deadline_at=DEADLINE))
    await rig.tick(at=30_000)
    assert rig.psp.calls == ["pay_1"]
    assert rig.producer.sent == []


async def test_no_answer_sends_nothing_even_past_the_deadline() -> None:
    rig = Rig()
    rig.psp.answers["pay_1"] = Lookup(LookupKind.UNAVAILABLE, detail="503")
    rig.publish(tracked("pay_1", status=OperationStatus.UNKNOWN, since=0, deadline_at=DEADLINE))
    await rig.tick(at=EXPIRY + 1)
    await rig.tick(at=EXPIRY + 10 * 60_000)
    assert rig.psp.calls == ["pay_1", "pay_1"]
    assert rig.producer.sent == []


@pytest.mark.parametrize("kind", [OperationKind.PAYMENT, OperationKind.TOP_UP])
async def test_an_unknown_op_not_found_is_redriven_as_the_very_same_psp_call(kind: OperationKind) -> None:
    world = funded_world()
    cmd = (
        payment("pay_1", amount=1250, at=1_000)
        if kind is OperationKind.PAYMENT
        else top_up("top_1", at=1_000)
    )
    [original] = world.apply(cmd).psp_requests
    unknown = world.apply(psp_outcome(cmd.command_id, PspOutcomeStatus.UNKNOWN, at=90_000)).results[0]
    op = tracked_from(unknown)
    assert op is not None
    assert op.status is OperationStatus.UNKNOWN

    rig = Rig()
    rig.publish(op)
    await rig.tick(at=91_000)
    [(topic, key, value)] = rig.producer.sent
    assert (topic, key) == (TOPICS.psp_requests, ACC.encode())
    redriven = PspRequest.model_validate_json(value)
    assert build_call(redriven) == build_call(original)  # same path, body and Idempotency-Key
    assert (redriven.kind, redriven.deadline_at) == (original.kind, original.deadline_at)
    # The next look is after a backoff, not at once (no redrive storm).
    await rig.tick()
    assert len(rig.producer.sent) == 1


async def test_a_failed_send_is_retried_after_a_backoff_without_stopping_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    rig.psp.answers["pay_1"] = Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_1", amount=1250)
    rig.psp.answers["pay_2"] = Lookup(LookupKind.FOUND, succeeded=True, movement_id="mv_2", amount=1250)
    rig.publish(tracked("pay_1", since=0), tracked("pay_2", since=0))
    rig.producer.fail = True
    with caplog.at_level(logging.ERROR, logger="payments.reconciler.sweeper"):
        await rig.tick(at=1_000)
    assert sorted(rig.psp.calls) == ["pay_1", "pay_2"]
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 2
    rig.producer.fail = False
    await rig.tick()  # not busy-looping on the failure
    assert len(rig.psp.calls) == 2
    await rig.tick(at=3_000)  # after the first backoff (1..2 s)
    assert sorted(key for key in rig.psp.calls) == ["pay_1", "pay_1", "pay_2", "pay_2"]
    sent = [decode_command(v) for _, _, v in rig.producer.sent]
    assert sorted(c.op_id for c in sent if isinstance(c, RecordPspOutcome)) == ["pay_1", "pay_2"]


# ---- redrive_request --------------------------------------------------------------------------------------------


def test_a_redrive_maps_payments_to_transfers_and_top_ups_to_charges() -> None:
    pay = redrive_request(tracked("pay_1", kind=OperationKind.PAYMENT), 5)
    top = redrive_request(tracked("top_1", kind=OperationKind.TOP_UP), 5)
    assert (pay.kind, pay.payee, pay.payment_method) == (PspRequestKind.TRANSFER, "payee_1", None)
    assert (top.kind, top.payee, top.payment_method) == (PspRequestKind.CHARGE, None, "tok_ok")
    assert build_call(pay).path == "/v1/transfers"
    assert build_call(top).path == "/v1/charges"
    assert build_call(pay).headers == {"Idempotency-Key": "pay_1"}


def test_a_redrive_keeps_the_ops_deadline() -> None:
    req = redrive_request(tracked("pay_1", deadline_at=DEADLINE, seq=9), 123)
    assert (req.deadline_at, req.issued_at, req.seq) == (DEADLINE, 123, 9)
    assert redrive_request(tracked("pay_1", deadline_at=None), 123).deadline_at == 123
