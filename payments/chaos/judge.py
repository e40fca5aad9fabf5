"""Judging one run from the evidence: what clients were told, what readers saw, the topics' operations
and the PSP's own log. Pure.

The topic-level invariants (1, 2, 3, 6, 7, 9, 10, 11, 12 of docs/design.md §3) come from ``payments.audit``;
this module adds what only the clients can show: invariant 4 (idempotent replays), 5 (a final decline
never flips), 2 and 10 as the HTTP API showed them, 8 (refunds) against the PSP's log, and three client
checks: an acknowledged operation is never lost, no operation exists that no client asked for (a
time-out may leave one, never two), and no valid request gets a wrong definitive refusal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from payments.audit.checks import STATE_AGREEMENT, PspMovement
from payments.audit.violations import Violation
from payments.chaos.model import Attempt, OpKind, Plan, PlannedOp, Read, Told
from payments.schemas.ids import derive_payment_id, derive_top_up_id
from payments.schemas.psp_movement import PspMovementKind
from payments.schemas.state import Operation, OperationKind, OperationStatus

# Checks beyond docs/design.md §3's numbered invariants, reported by name.
ACK_LOST = "acknowledged_not_lost"
PHANTOM = "no_phantom_or_double"
WRONG_ANSWER = "no_wrong_refusal"
CHANGELOG = "changelog_agrees"
CHECKS: tuple[str, ...] = (*(f"inv{n}" for n in range(1, 13)), ACK_LOST, PHANTOM, WRONG_ANSWER, CHANGELOG)


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    detail: str


def from_audit(violations: Sequence[Violation]) -> list[Finding]:
    return [
        Finding(CHANGELOG if v.invariant == STATE_AGREEMENT else f"inv{v.invariant}", v.subject, v.detail)
        for v in violations
    ]


def expected_op_id(op: PlannedOp, account_ids: Sequence[str]) -> str:
    derive = derive_payment_id if op.kind is OpKind.PAYMENT else derive_top_up_id
    return derive(op.member, account_ids[op.account], op.key)


def judge(
    plan: Plan,
    account_ids: Sequence[str],
    attempts: Sequence[Attempt],
    reads: Sequence[Read],
    ops: Mapping[str, Operation],
    movements: Sequence[PspMovement],
    redis_losses: int = 0,
) -> list[Finding]:
    """``ops``: the last state of every operation on ``payments.results`` (read_committed);
    ``redis_losses``: how many times Redis lost its data during the run (restarts, FLUSHALLs)."""
    findings: list[Finding] = []
    by_op: dict[int, list[Attempt]] = defaultdict(list)
    for a in sorted(attempts, key=lambda a: a.sent_s):
        by_op[a.op_index].append(a)
    expected = {op.index: expected_op_id(op, account_ids) for op in plan.ops}
    for op in plan.ops:
        tried = by_op.get(op.index, [])
        findings += _client_view(op, expected[op.index], tried, ops.get(expected[op.index]), redis_losses)
    findings += _phantoms(set(expected.values()), ops)
    findings += _reads(reads)
    findings += _refunds(movements)
    return findings


def _client_view(
    op: PlannedOp, op_id: str, tried: Sequence[Attempt], final: Operation | None, redis_losses: int
) -> list[Finding]:
    out: list[Finding] = []
    same = [a for a in tried if not a.conflict_probe]
    acked = [a for a in same if a.told in (Told.ACCEPTED, Told.SUCCEEDED, Told.DECLINED)]
    for a in tried:
        if a.op_id is not None and a.op_id != op_id:
            out.append(
                Finding(PHANTOM, op_id, f"an answer named operation {a.op_id} for key {op.key[:12]}...")
            )
        if a.told is Told.REJECTED and not (a.conflict_probe and a.status == 422):
            out.append(Finding(WRONG_ANSWER, op_id, f"valid request refused: {a.status} {a.code}"))
    if acked and final is None:
        out.append(
            Finding(
                ACK_LOST, op_id, f"told {acked[0].told.value} at t+{acked[0].sent_s:.1f}s, not in the topics"
            )
        )
    # Invariant 4: a replay repeats an original answer byte for byte (after Redis lost the key's record
    # a retry gets a fresh original, so "an" original, not "the first").
    # The stored original a replay repeats may be one the client never saw (its attempt timed out after
    # the gateway stored the answer), and each time Redis lost its data a retry may store a fresh one:
    # so at most that many distinct replays may match no original the client saw.
    # Only a final answer (201, 202, 402) is stored for replay; a 409 "in flight" or a 503 is not.
    originals = {(a.status, a.body) for a in acked if not a.replayed}
    unseen = {(a.status, a.body) for a in same if a.replayed} - originals
    if len(unseen) > redis_losses + (0 if originals else 1):
        out.append(Finding("inv4", op_id, f"{len(unseen)} different replays match no original answer"))
    if final is not None and final.amount != op.amount:
        out.append(Finding("inv4", op_id, f"operation amount {final.amount}, the client asked {op.amount}"))
    # Another payload under the key: 422 normally. In degraded mode (Redis lost the key's record and the
    # read model does not show the operation yet) the gateway may accept it for the same operation id;
    # the processor must then refuse the other payload, which the amount check above verifies.
    for a in tried:
        if a.conflict_probe and a.status in (201, 202, 402) and a.op_id != op_id:
            out.append(
                Finding("inv4", op_id, f"other payload under the key answered {a.status} for {a.op_id}")
            )
    # Invariant 5: a final decline never turns into a success.
    declined = [a for a in same if a.told is Told.DECLINED]
    if declined:
        later = [a for a in same if a.told is Told.SUCCEEDED and a.sent_s > declined[0].sent_s]
        if later or (final is not None and final.status is OperationStatus.SUCCEEDED):
            out.append(Finding("inv5", op_id, "declined (402), later succeeded"))
    return out


def _phantoms(asked: set[str], ops: Mapping[str, Operation]) -> list[Finding]:
    money = (OperationKind.PAYMENT, OperationKind.TOP_UP)
    return [
        Finding(PHANTOM, op_id, f"{op.kind.value} of {op.amount} that no client asked for")
        for op_id, op in ops.items()
        if op.kind in money and op_id not in asked
    ]


def _reads(reads: Sequence[Read]) -> list[Finding]:
    out: list[Finding] = []
    last: dict[str, Read] = {}
    for r in sorted(reads, key=lambda r: r.at_s):
        if r.available < -r.overdraft_limit:
            out.append(
                Finding("inv2", r.account_id, f"GET showed available {r.available} at t+{r.at_s:.1f}s")
            )
        prev = last.get(r.account_id)
        if prev is not None and r.version < prev.version:
            out.append(
                Finding(
                    "inv10", r.account_id, f"GET showed v{r.version} after v{prev.version} (t+{r.at_s:.1f}s)"
                )
            )
        last[r.account_id] = r
    return out


def _refunds(movements: Sequence[PspMovement]) -> list[Finding]:
    """Invariant 8. The API has no refund operation, so no refund may exist at the PSP at all; were one
    to appear, it could only exceed what was captured for it (nothing)."""
    return [
        Finding("inv8", m.id, f"PSP refund of {m.amount} without any refund intent of ours")
        for m in movements
        if m.kind == PspMovementKind.REFUND
    ]
