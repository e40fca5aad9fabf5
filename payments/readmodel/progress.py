"""The projector's bookkeeping of how far the read model is, per partition: pure, no Kafka, no Redis.

Redis holds the truth (``readmodel:offsets`` and ``readmodel:complete``, see ``readmodel``); this module is
the projector's in-memory copy of it for its assigned partitions and the decisions taken on it:

* where to start a partition: at its Redis mark, or at the beginning of the log when there is none (Redis
  lost it, or it was never projected). Never at the Kafka commit: after a loss that is past data Redis no
  longer has;
* what each batch expects to find in Redis (``sync_entries``): the mark this instance last read or wrote.
  Redis answers with a ``Verdict``: ok, lost (the epoch token is gone: Redis lost everything) or behind
  (some marks are older than expected: Redis came back from an older snapshot);
* when a partition is complete: once what was written reaches the end offset the partition had when its
  (re)build began. "Written" is the mark, or the offset of an end-of-partition event delivered in a batch
  that was written (the mark alone can stop short of the end: the last offsets of a transactional topic
  are commit markers, never delivered as records).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from payments.streaming.read import BEGINNING

Partition = tuple[str, int]


def partition_field(tp: Partition) -> str:
    """The partition's field in the progress hashes (Kafka topic names cannot contain ':')."""
    return f"{tp[0]}:{tp[1]}"


def start_offset(mark: int | None) -> int:
    """Where to start consuming a partition whose Redis mark is ``mark``."""
    return BEGINNING if mark is None else mark


@dataclass
class PartitionProgress:
    mark: int | None  # the Redis mark as this instance last read or wrote it; None = there is none
    complete: bool  # caught up in the current epoch (as recorded in readmodel:complete)
    target: int | None = None  # the end offset to reach before complete; None = not fetched yet
    reached: int = 0  # everything before this offset is in the read model


class VerdictKind(StrEnum):
    OK = "ok"
    LOST = "lost"
    BEHIND = "behind"


@dataclass(frozen=True)
class Verdict:
    """Redis' answer to a batch's or a check's expectations (``progress_store.SYNC_LUA``)."""

    kind: VerdictKind
    ready: bool = False  # OK only: readmodel:ready is set
    behind: dict[str, int | None] = field(default_factory=dict)  # BEHIND: field -> the mark Redis has


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_verdict(reply: Sequence[bytes | str | int]) -> Verdict:
    """``{'ok', ready}``, ``{'lost'}`` or ``{'behind', field, mark or '', ...}`` → ``Verdict``."""
    kind = VerdictKind(_text(reply[0]))
    if kind is VerdictKind.OK:
        return Verdict(kind, ready=bool(int(_text(reply[1]))))
    if kind is VerdictKind.BEHIND:
        pairs = [(_text(reply[i]), _text(reply[i + 1])) for i in range(1, len(reply) - 1, 2)]
        return Verdict(kind, behind={f: int(m) if m else None for f, m in pairs})
    return Verdict(kind)


class Progress:
    """Progress of this instance's assigned partitions."""

    def __init__(self) -> None:
        self._parts: dict[Partition, PartitionProgress] = {}

    def assign(self, tp: Partition, mark: int | None, complete: bool) -> None:
        """(Re)start tracking ``tp`` from what Redis says (assignment, or a resync after a loss)."""
        self._parts[tp] = PartitionProgress(mark=mark, complete=complete, reached=mark or 0)

    def revoke(self, tps: Iterable[Partition]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)

    def assigned(self) -> list[Partition]:
        return sorted(self._parts)

    def owns(self, tp: Partition) -> bool:
        return tp in self._parts

    def expected(self, tp: Partition) -> int | None:
        return self._parts[tp].mark

    def sync_entries(self, after: dict[Partition, int]) -> list[tuple[str, int | None, int | None]]:
        """(field, expected mark, new mark) for a batch that read up to ``after``; with ``after`` empty,
        a check of every assigned partition that writes nothing."""
        if not after:
            return [(partition_field(tp), p.mark, None) for tp, p in sorted(self._parts.items())]
        return [(partition_field(tp), self._parts[tp].mark, end) for tp, end in sorted(after.items())]

    def written(self, after: dict[Partition, int], ends: dict[Partition, int]) -> None:
        """A batch is in Redis with its marks: ``after`` = the new marks, ``ends`` = end-of-partition
        offsets delivered in it (the partition had nothing more at that offset)."""
        for tp, offset in after.items():
            if tp in self._parts:
                part = self._parts[tp]
                part.mark = offset
                part.reached = max(part.reached, offset)
        for tp, offset in ends.items():
            if tp in self._parts:
                part = self._parts[tp]
                part.reached = max(part.reached, offset)

    def needing_target(self) -> list[Partition]:
        return sorted(tp for tp, p in self._parts.items() if not p.complete and p.target is None)

    def set_targets(self, targets: dict[Partition, int]) -> None:
        for tp, end in targets.items():
            if tp in self._parts:
                self._parts[tp].target = end

    def caught_up(self) -> list[Partition]:
        """Incomplete partitions whose written progress has reached their target."""
        return sorted(
            tp
            for tp, p in self._parts.items()
            if not p.complete and p.target is not None and p.reached >= p.target
        )

    def mark_complete(self, tps: Iterable[Partition]) -> None:
        for tp in tps:
            if tp in self._parts:
                self._parts[tp].complete = True

    def incomplete(self) -> int:
        return sum(1 for p in self._parts.values() if not p.complete)

    def by_field(self, name: str) -> Partition | None:
        for tp in self._parts:
            if partition_field(tp) == name:
                return tp
        return None
