"""The projector's per-partition progress bookkeeping: pure, no broker, no Redis."""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING

from payments.readmodel.progress import (
    Progress,
    Verdict,
    VerdictKind,
    parse_verdict,
    partition_field,
    start_offset,
)

R0 = ("payments.results", 0)
R1 = ("payments.results", 1)
L0 = ("payments.ledger", 0)


def test_a_partition_starts_at_its_mark_or_at_the_beginning() -> None:
    assert start_offset(42) == 42
    assert start_offset(0) == 0
    assert start_offset(None) == OFFSET_BEGINNING  # never the Kafka commit: it may be past lost data
    assert partition_field(R1) == "payments.results:1"


def test_verdicts_parse_from_the_lua_reply() -> None:
    assert parse_verdict([b"ok", 1]) == Verdict(VerdictKind.OK, ready=True)
    assert parse_verdict([b"ok", 0]) == Verdict(VerdictKind.OK, ready=False)
    assert parse_verdict([b"lost"]) == Verdict(VerdictKind.LOST)
    behind = parse_verdict([b"behind", b"payments.results:0", b"7", b"payments.ledger:0", b""])
    assert behind.kind is VerdictKind.BEHIND
    assert behind.behind == {"payments.results:0": 7, "payments.ledger:0": None}


def test_a_batch_expects_the_marks_last_read_or_written() -> None:
    p = Progress()
    p.assign(R0, 10, complete=True)
    p.assign(R1, None, complete=False)
    assert p.sync_entries({R0: 15, R1: 3}) == [
        ("payments.results:0", 10, 15),
        ("payments.results:1", None, 3),
    ]
    p.written({R0: 15, R1: 3}, {})
    assert (p.expected(R0), p.expected(R1)) == (15, 3)
    # an idle check: every assigned partition, nothing written
    assert p.sync_entries({}) == [("payments.results:0", 15, None), ("payments.results:1", 3, None)]


def test_complete_once_written_progress_reaches_the_target() -> None:
    p = Progress()
    p.assign(R0, None, complete=False)
    p.assign(R1, None, complete=False)
    p.assign(L0, 5, complete=True)
    assert p.needing_target() == [R0, R1]
    assert p.caught_up() == []  # no target yet: never complete by default
    p.set_targets({R0: 0, R1: 100})
    assert p.needing_target() == []
    assert p.caught_up() == [R0]  # an empty partition is complete at once
    p.mark_complete([R0])
    p.written({R1: 99}, {})
    assert p.caught_up() == []  # 99 < 100: the last offset is a transaction marker, never a record
    p.written({}, {R1: 100})  # ...so the end-of-partition event delivered in a written batch counts
    assert p.caught_up() == [R1]
    p.mark_complete([R1])
    assert p.incomplete() == 0


def test_a_resync_forgets_progress_and_revoked_partitions_are_dropped() -> None:
    p = Progress()
    p.assign(R0, None, complete=False)
    p.set_targets({R0: 50})
    p.written({R0: 50}, {})
    p.assign(R0, None, complete=False)  # Redis lost it: back to what Redis says
    assert p.expected(R0) is None
    assert p.caught_up() == []
    assert p.needing_target() == [R0]  # a new rebuild, a new target
    p.revoke([R0])
    assert not p.owns(R0)
    assert p.assigned() == []
    p.written({R0: 60}, {R0: 60})  # a late batch of a revoked partition changes nothing
    assert p.incomplete() == 0


def test_fields_map_back_to_partitions() -> None:
    p = Progress()
    p.assign(L0, 1, complete=True)
    assert p.by_field("payments.ledger:0") == L0
    assert p.by_field("payments.ledger:1") is None
