"""When to ask the PSP about an open operation, and what to do with its answer. Pure: no clock, no I/O.

The reconciler never moves money itself and never sends a request under a new key:

* the PSP has a final movement under the op id → feed that outcome back as a command (monotone in the
  processor, so a duplicate of what the psp-caller or a webhook already said changes nothing);
* the PSP has no record of an ``unknown`` operation (the psp-caller gave up on it) and its deadline has
  not passed → *re-drive*: publish the same :class:`PspRequest` again, so the psp-caller calls
  the PSP with the same key and the same body (a replay at the PSP if an earlier call did commit after
  all). A ``reserved`` or ``processing`` operation is still the psp-caller's (it commits a request only
  once its outcome is out), so it is only looked at again: re-driving a backlog would only lengthen it;
* the PSP has no record past ``deadline + grace`` → expire the operation: the processor fails it and
  releases the hold. The key stays bound to it, so a PSP execution that still happens is posted to
  suspense and reported as a discrepancy, never credited twice or lost;
* the PSP cannot answer (outage, 5xx, time-out) → ask again later. Nothing expires on a non-answer.

``grace`` must exceed the psp-caller's per-call time-out: the caller starts no attempt after the deadline,
so once ``deadline + grace`` has passed no call of ours can still commit at an honest PSP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from payments.reconciler.tracking import TrackedOp
from payments.schemas.psp import PspOutcomeStatus
from payments.schemas.state import OperationStatus


@dataclass(frozen=True)
class ReconcilePolicy:
    # A reserved/processing operation the psp-caller has not resolved after this long is looked up (ms).
    check_after_ms: int = 30_000
    # The psp-caller gave up (unknown): look it up soon, the PSP often knows by now (ms).
    unknown_check_after_ms: int = 1_000
    # Between lookups of one operation: exponential from base to cap, with jitter (ms).
    backoff_base_ms: int = 1_000
    backoff_cap_ms: int = 60_000
    # After the deadline, how long "no record" must persist before the operation is expired (ms).
    expire_grace_ms: int = 30_000


class LookupKind(StrEnum):
    FOUND = "found"  # a final movement exists under the key
    NOT_FOUND = "not_found"  # the PSP says nothing is committed under the key (yet)
    UNAVAILABLE = "unavailable"  # no trustworthy answer: outage, 429/5xx, time-out, unreadable body


@dataclass(frozen=True)
class Lookup:
    kind: LookupKind
    succeeded: bool = False  # FOUND only: the movement's status
    movement_id: str | None = None
    amount: int | None = None
    failure_code: str | None = None
    detail: str = ""  # log-safe: a status code or error class, never a body


@dataclass(frozen=True)
class RecordOutcome:
    status: PspOutcomeStatus
    movement_id: str | None
    amount: int | None
    failure_code: str | None


@dataclass(frozen=True)
class Redrive:
    pass


@dataclass(frozen=True)
class Expire:
    pass


@dataclass(frozen=True)
class AskLater:
    pass


Action = RecordOutcome | Redrive | Expire | AskLater


def resolve(op: TrackedOp, lookup: Lookup, now_ms: int, policy: ReconcilePolicy) -> Action:
    if lookup.kind is LookupKind.FOUND:
        return RecordOutcome(
            status=PspOutcomeStatus.SUCCEEDED if lookup.succeeded else PspOutcomeStatus.FAILED,
            movement_id=lookup.movement_id,
            amount=lookup.amount,
            failure_code=lookup.failure_code,
        )
    if lookup.kind is LookupKind.NOT_FOUND:
        if op.deadline_at is not None and now_ms >= op.deadline_at + policy.expire_grace_ms:
            return Expire()
        # Past the deadline the psp-caller starts no attempt, so a re-drive could only cost a request.
        before_deadline = op.deadline_at is None or now_ms < op.deadline_at
        return Redrive() if op.status is OperationStatus.UNKNOWN and before_deadline else AskLater()
    return AskLater()


def first_check_at(op: TrackedOp, policy: ReconcilePolicy) -> int:
    """When an operation that entered its status at ``op.since`` is first looked up (ms)."""
    wait = policy.unknown_check_after_ms if op.status is OperationStatus.UNKNOWN else policy.check_after_ms
    return op.since + wait


def next_check_at(op: TrackedOp, checks: int, now_ms: int, jitter: float, policy: ReconcilePolicy) -> int:
    """When to look again after ``checks`` lookups (ms). ``jitter`` in [0, 1) spreads a crowd of
    operations that failed together; an operation past its deadline is always looked at once it can
    expire, however long the backoff has grown."""
    backoff = min(policy.backoff_cap_ms, policy.backoff_base_ms * 2 ** min(checks, 30))
    at = now_ms + int(backoff * (0.5 + 0.5 * jitter))  # "equal jitter": never less than half the backoff
    if op.deadline_at is not None:
        expiry = op.deadline_at + policy.expire_grace_ms
        if now_ms < expiry:
            at = min(at, expiry)
    return at
