"""Ordered offset commits: only the contiguous prefix of completed offsets is ever committable."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from payments.streaming.ordered import OffsetBook, PartitionOffsets


def test_nothing_dispatched_nothing_committable() -> None:
    t = PartitionOffsets()
    assert t.position() is None
    assert t.committable() is None


def test_in_order_completion_advances_one_past_each() -> None:
    t = PartitionOffsets()
    tickets = [t.dispatch(o) for o in range(5, 8)]
    assert t.committable() is None  # nothing finished yet
    t.complete(tickets[0])
    assert t.committable() == 6
    t.complete(tickets[1])
    t.complete(tickets[2])
    assert t.committable() == 8
    assert t.in_flight == 0


def test_out_of_order_completion_waits_for_the_oldest() -> None:
    t = PartitionOffsets()
    a, b, c, d = (t.dispatch(o) for o in (0, 1, 2, 3))
    t.complete(d)
    t.complete(b)
    assert t.committable() is None  # 0 still running: committing past it would lose it
    t.complete(a)
    assert t.committable() == 2  # 0 and 1 done; 2 is the first record a successor must see
    t.complete(c)
    assert t.committable() == 4


def test_gaps_from_transaction_markers_do_not_block() -> None:
    # read_committed never delivers control records, so dispatched offsets skip numbers.
    t = PartitionOffsets()
    a, b = t.dispatch(10), t.dispatch(13)
    t.complete(a)
    assert t.committable() == 13
    t.complete(b)
    assert t.committable() == 14


def test_committed_positions_are_not_offered_again() -> None:
    t = PartitionOffsets()
    a = t.dispatch(0)
    t.dispatch(1)
    t.complete(a)
    assert t.committable() == 1
    t.committed(1)
    assert t.committable() is None
    assert t.position() == 1


def test_duplicate_and_foreign_completions_are_ignored() -> None:
    t = PartitionOffsets()
    a, b = t.dispatch(0), t.dispatch(1)
    t.complete(a)
    t.complete(a)
    assert t.in_flight == 1
    assert t.committable() == 1
    t.complete(b)
    assert t.committable() == 2


def test_offset_moving_back_starts_a_new_epoch_and_old_tickets_are_inert() -> None:
    t = PartitionOffsets()
    old = [t.dispatch(o) for o in (20, 21, 22)]
    t.complete(old[0])
    t.committed(21)
    new = t.dispatch(15)  # the consumer was seeked back: 15.. will be delivered again
    for ticket in old:
        t.complete(ticket)  # handlers of the old epoch finishing late
    assert t.committable() is None
    t.complete(new)
    assert t.committable() == 16  # a regression of the committed offset is safe: it only replays


def test_reset_forgets_everything() -> None:
    t = PartitionOffsets()
    a = t.dispatch(3)
    t.reset()
    t.complete(a)
    assert t.position() is None
    assert t.in_flight == 0


def test_book_drops_revoked_partitions_and_their_late_completions() -> None:
    book: OffsetBook[tuple[str, int]] = OffsetBook()
    book.assign([("t", 0), ("t", 1)])
    t0 = book.tracker(("t", 0))
    t1 = book.tracker(("t", 1))
    assert t0 is not None
    assert t1 is not None
    a, b = t0.dispatch(0), t1.dispatch(7)
    t1.complete(b)
    assert book.committable() == {("t", 1): 8}
    assert book.in_flight == 1
    book.drop([("t", 0)])
    t0.complete(a)  # its handler finished after the revocation
    assert ("t", 0) not in book
    assert book.committable() == {("t", 1): 8}
    book.assign([("t", 0)])  # assigned again: a fresh tracker, nothing carried over
    assert book.committable() == {("t", 1): 8}
    book.committed({("t", 1): 8, ("t", 9): 1})  # unknown partitions are ignored
    assert book.committable() == {}
    assert book.committable([("t", 1), ("t", 5)]) == {}


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_position_is_always_one_past_the_completed_prefix(n: int, seed: int) -> None:
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(3 * n), n))  # increasing, with gaps
    t = PartitionOffsets()
    tickets = [t.dispatch(o) for o in offsets]
    done: set[int] = set()
    for i in rng.sample(range(n), n):
        t.complete(tickets[i])
        done.add(i)
        prefix = 0
        while prefix < n and prefix in done:
            prefix += 1
        expected = None if prefix == 0 else (offsets[prefix] if prefix < n else offsets[-1] + 1)
        assert t.position() == expected
        # Never past an unfinished record.
        if expected is not None:
            assert all(i in done for i, o in enumerate(offsets) if o < expected)


def test_a_position_on_its_way_is_not_sent_again_until_it_fails() -> None:
    t = PartitionOffsets()
    t.complete(t.dispatch(5))
    assert t.committable() == 6
    t.sent(6)  # an asynchronous commit is on its way
    assert t.committable() is None
    assert t.committable(resend=True) == 6  # a synchronous commit (revocation) sends it again
    t.commit_failed(6)
    assert t.committable() == 6
    t.sent(6)
    t.complete(t.dispatch(7))
    assert t.committable() == 8  # progress since: the newer position goes
    t.sent(8)
    t.committed(6)  # the older commit confirmed late
    assert t.committable() is None
    t.committed(8)
    assert t.committable() is None
    t.commit_failed(8)  # a stale failure report after the confirmation changes nothing
    assert t.committable() is None


def test_book_tracks_asynchronous_commits_per_partition() -> None:
    book: OffsetBook[str] = OffsetBook()
    book.assign(["a", "b"])
    for p in ("a", "b"):
        tracker = book.tracker(p)
        assert tracker is not None
        tracker.complete(tracker.dispatch(0))
    book.sent({"a": 1, "b": 1})
    assert book.committable() == {}
    book.commit_failed({"b": 1})
    book.committed({"a": 1})
    assert book.committable() == {"b": 1}
    book.drop(["b"])
    book.sent({"b": 1})  # reports for a partition no longer owned are ignored
    assert book.committable() == {}
