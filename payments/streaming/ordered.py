"""Ordered offset commits for a consumer whose records finish out of order (docs/design.md §5, psp-caller).

Records of one partition are dispatched in offset order but complete in any order. The only offset that is
safe to commit is the one after the *contiguous prefix* of completed records: committing past a record
still in flight would lose it if the process died before it finished.

"Contiguous" is in terms of the offsets actually dispatched, not of integers: with ``read_committed``,
transaction markers and aborted records occupy offsets that are never delivered, so offset 12 may follow 10.

Pure bookkeeping: no Kafka, no clock. A partition is any hashable key; the worker uses (topic, partition).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True)
class Ticket:
    """Proof that one offset was dispatched in one epoch of one partition's tracker.

    Completing a ticket of an older epoch (the tracker was reset since) changes nothing, so a handler that
    outlives a reset can never move the commit position of records it did not process.
    """

    epoch: int
    offset: int


class PartitionOffsets:
    """Dispatched and completed offsets of one partition, and the position that is safe to commit."""

    def __init__(self) -> None:
        self._epoch = 0
        self._pending: deque[int] = deque()  # dispatched, in dispatch (= offset) order, completed or not
        self._done: set[int] = set()  # completed offsets still in _pending behind an unfinished one
        self._start: int | None = None  # the first offset dispatched in this epoch
        self._next: int | None = None  # 1 + the last dispatched offset
        self._committed: int | None = None  # the last position handed out by committable() and confirmed
        self._sent: int | None = None  # a position sent in an asynchronous commit, not yet confirmed

    @property
    def in_flight(self) -> int:
        return len(self._pending) - len(self._done)

    def dispatch(self, offset: int) -> Ticket:
        """Record that ``offset`` was handed to a handler.

        An offset at or below one already dispatched means the consumer's position moved back (a seek or
        an offset reset): the tracker starts a new epoch from there and forgets the old one, whose records
        will be delivered again.
        """
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if self._next is not None and offset < self._next:
            self.reset()
        if self._start is None:
            self._start = offset
        self._pending.append(offset)
        self._next = offset + 1
        return Ticket(self._epoch, offset)

    def complete(self, ticket: Ticket) -> None:
        """Record that the handler of ``ticket`` finished. Stale or unknown tickets are ignored."""
        if ticket.epoch != self._epoch or not self._pending:
            return
        if ticket.offset < self._pending[0] or ticket.offset >= (self._next or 0):
            return
        self._done.add(ticket.offset)
        # Advance over the completed prefix. Amortised O(1): each offset is popped once.
        while self._pending and self._pending[0] in self._done:
            self._done.discard(self._pending.popleft())

    def position(self) -> int | None:
        """1 + the last offset of the contiguous completed prefix, or None if nothing completed yet.

        With nothing in flight this is 1 + the last dispatched offset; otherwise it is the oldest offset
        still in flight (the first record a successor must see again).
        """
        if self._next is None:
            return None
        pos = self._pending[0] if self._pending else self._next
        # Still at the epoch's first offset: nothing completed, so there is no progress to commit.
        return None if pos == self._start else pos

    def committable(self, *, resend: bool = False) -> int | None:
        """The position if it differs from the last confirmed commit and (unless ``resend``) from a commit
        still on its way, else None (nothing new to commit)."""
        pos = self.position()
        if pos is None or pos == self._committed or (pos == self._sent and not resend):
            return None
        return pos

    def sent(self, position: int) -> None:
        """``position`` went out in an asynchronous commit: do not send it again while it is on its way."""
        self._sent = position

    def committed(self, position: int) -> None:
        """Confirm that ``position`` was committed to the broker."""
        self._committed = position
        if self._sent == position:
            self._sent = None

    def commit_failed(self, position: int) -> None:
        """The commit of ``position`` failed: it is committable again."""
        if self._sent == position:
            self._sent = None

    def reset(self) -> None:
        """Forget everything in flight: a new epoch starts with the next dispatch."""
        self._epoch += 1
        self._pending.clear()
        self._done.clear()
        self._start = None
        self._next = None
        self._committed = None
        self._sent = None


class OffsetBook(Generic[P]):
    """One :class:`PartitionOffsets` per owned partition. Partitions not owned are silently ignored."""

    def __init__(self) -> None:
        self._parts: dict[P, PartitionOffsets] = {}

    def __contains__(self, partition: P) -> bool:
        return partition in self._parts

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self._parts.values())

    def assign(self, partitions: Iterable[P]) -> None:
        """Start tracking ``partitions`` afresh (a partition assigned again starts a new tracker)."""
        for p in partitions:
            self._parts[p] = PartitionOffsets()

    def drop(self, partitions: Iterable[P]) -> None:
        """Stop tracking ``partitions`` (revoked or lost). Their outstanding tickets become inert."""
        for p in partitions:
            self._parts.pop(p, None)

    def tracker(self, partition: P) -> PartitionOffsets | None:
        return self._parts.get(partition)

    def committable(self, partitions: Iterable[P] | None = None, *, resend: bool = False) -> dict[P, int]:
        """Positions that moved since their last confirmed commit, for ``partitions`` (default: all).
        Positions of asynchronous commits still on their way are left out unless ``resend``."""
        keys = self._parts.keys() if partitions is None else partitions
        out: dict[P, int] = {}
        for p in keys:
            tracker = self._parts.get(p)
            pos = None if tracker is None else tracker.committable(resend=resend)
            if pos is not None:
                out[p] = pos
        return out

    def sent(self, positions: dict[P, int]) -> None:
        for p, pos in positions.items():
            tracker = self._parts.get(p)
            if tracker is not None:
                tracker.sent(pos)

    def committed(self, positions: dict[P, int]) -> None:
        for p, pos in positions.items():
            tracker = self._parts.get(p)
            if tracker is not None:
                tracker.committed(pos)

    def commit_failed(self, positions: dict[P, int]) -> None:
        for p, pos in positions.items():
            tracker = self._parts.get(p)
            if tracker is not None:
                tracker.commit_failed(pos)
