"""The pure core of the reference consumer: what to do with each result, given what was applied before.

No Kafka, no SQLite, no clock. ``store`` loads ``last_seq`` for a batch's accounts, calls ``plan_batch`` and
writes the plan in one transaction together with the Kafka offsets.

Contract relied on (docs/design.md §2): for ``read_committed`` consumers every state change appears on
``payments.results`` exactly once, in per-account order, with ``seq`` dense per account starting at 1.
So for an account whose highest applied ``seq`` is ``last``:

- ``seq <= last``      a duplicate (a re-delivery after a lost offset, a mirrored or replayed copy): skip;
- ``seq == last + 1``  the next change: apply;
- ``seq >  last + 1``  a gap: changes ``last + 1 .. seq - 1`` were never seen. It cannot happen to a consumer
  that read the topic from its beginning; it means retention truncated the topic before we read it, or the
  store is older than its offsets. The default policy stops; ``baseline`` accepts the first ``seq`` seen for
  an account the store has never seen (a consumer started on a retention-truncated topic), but a gap after
  an account's first applied result always stops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from payments.schemas.state import ResultEvent, ResultType


class GapPolicy(StrEnum):
    STOP = "stop"
    # Only for accounts with no stored progress: their first seen seq becomes the baseline.
    BASELINE = "baseline"


class Verdict(StrEnum):
    APPLY = "apply"
    BASELINE = "baseline"  # applied, as the first result ever seen for the account (policy BASELINE)
    DUPLICATE = "duplicate"
    GAP = "gap"


def classify(last_seq: int | None, seq: int, policy: GapPolicy = GapPolicy.STOP) -> Verdict:
    """The verdict for a result with ``seq`` on an account whose highest applied seq is ``last_seq``
    (``None``: the store has never applied a result of this account)."""
    if seq < 1:
        raise ValueError(f"seq must be >= 1, got {seq}")
    last = 0 if last_seq is None else last_seq
    if seq <= last:
        return Verdict.DUPLICATE
    if seq == last + 1:
        return Verdict.APPLY
    if last_seq is None and policy is GapPolicy.BASELINE:
        return Verdict.BASELINE
    return Verdict.GAP


@dataclass(frozen=True)
class Delivered:
    """A decoded result with where it came from."""

    partition: int
    offset: int
    event: ResultEvent


@dataclass(frozen=True)
class Gap:
    record: Delivered
    expected: int  # last_seq + 1
    got: int

    def describe(self, topic: str) -> str:
        ev = self.record.event
        return (
            f"sequence gap on account {ev.account_id}: expected seq {self.expected}, got {self.got} at "
            f"{topic}[{self.record.partition}]@{self.record.offset}; results "
            f"{self.expected}..{self.got - 1} were never seen (topic truncated by retention, or the store "
            "is older than its offsets). Stopped before it; see docs/downstream.md 'Gaps'"
        )


@dataclass
class BatchPlan:
    """What one store transaction does. ``next_offsets`` covers every record handled (applied or skipped)
    and none after a gap, so a restart resumes exactly at the record that stopped the batch."""

    applied: list[tuple[Delivered, Verdict]] = field(default_factory=list)
    duplicates: list[Delivered] = field(default_factory=list)
    last_seq: dict[str, int] = field(default_factory=dict)  # accounts whose last_seq moved
    next_offsets: dict[int, int] = field(default_factory=dict)  # partition -> offset after last handled
    gap: Gap | None = None


def plan_batch(
    records: Sequence[Delivered], last_seq: Mapping[str, int], policy: GapPolicy = GapPolicy.STOP
) -> BatchPlan:
    """Classify ``records`` in order against ``last_seq`` (the stored progress of their accounts), tracking
    the progress the batch itself makes. Stops at the first gap."""
    plan = BatchPlan()
    for rec in records:
        ev = rec.event
        current = plan.last_seq.get(ev.account_id, last_seq.get(ev.account_id))
        verdict = classify(current, ev.seq, policy)
        if verdict is Verdict.GAP:
            plan.gap = Gap(rec, expected=(current or 0) + 1, got=ev.seq)
            break
        if verdict is Verdict.DUPLICATE:
            plan.duplicates.append(rec)
        else:
            plan.applied.append((rec, verdict))
            plan.last_seq[ev.account_id] = ev.seq
        plan.next_offsets[rec.partition] = rec.offset + 1
    return plan


# -- the example side effect -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fulfillment:
    """The example business effect: a succeeded payment to a payee is fulfilled (shipped) once."""

    event_id: str
    account_id: str
    seq: int
    op_id: str
    type: str
    amount: int
    currency: str
    payee: str | None
    occurred_at: int


def fulfillment_for(event: ResultEvent) -> Fulfillment | None:
    """The fulfillment a result calls for: only ``payment_succeeded`` (the PSP paid the payee)."""
    op = event.operation
    if event.type is not ResultType.PAYMENT_SUCCEEDED or op is None:
        return None
    return Fulfillment(
        event_id=event.event_id,
        account_id=event.account_id,
        seq=event.seq,
        op_id=op.op_id,
        type=event.type.value,
        amount=op.amount,
        currency=op.currency,
        payee=op.payee,
        occurred_at=event.occurred_at,
    )
