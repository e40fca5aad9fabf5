"""Settlement matching, three ways: the PSP's report ↔ our ledger ↔ our results. Pure.

Timing matters because the three sources are read at different moments. The job fetches the PSP report
first and reads our topics afterwards, so:

* every PSP movement made for one of our operations has its intent on ``payments.results`` already (the
  processor publishes the intent in the same transaction as the PSP request): a movement under a key with
  no intent is an orphan, whatever its age;
* a PSP success may not have reached our ledger yet: while its operation is open it is *pending*, and
  once the operation has ended it is only judged when older than ``judge_before_ms`` (a grace for an
  outcome still on its way);
* one of our postings may be for a PSP success made after the report was generated: postings are only
  judged when older than ``judge_before_ms`` too.

Refunds are not matched (no flow of ours issues them yet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from payments.schemas.ledger import LedgerTxKind
from payments.schemas.psp_movement import PspMovement
from payments.schemas.settlement import DiscrepancyKind
from payments.schemas.state import OperationKind

# The operation kinds that move money at the PSP (their ledger kinds carry the same names).
PSP_OP_KINDS = frozenset({OperationKind.PAYMENT, OperationKind.TOP_UP})


@dataclass(frozen=True)
class OurOp:
    op_id: str
    account_id: str
    kind: str  # payment | top_up
    status: str
    terminal: bool
    amount: int
    currency: str


@dataclass(frozen=True)
class OurPosting:
    tx_id: str
    op_id: str
    account_id: str
    kind: LedgerTxKind  # one of PSP_POSTING_KINDS
    amount: int
    occurred_at: int  # ms


@dataclass(frozen=True)
class Finding:
    kind: DiscrepancyKind
    subject: str  # the op id, or the PSP movement id for an orphan
    detail: str
    op_id: str | None = None
    account_id: str | None = None
    psp_movement_id: str | None = None
    psp_amount: int | None = None
    ledger_amount: int | None = None
    currency: str | None = None

    @property
    def discrepancy_id(self) -> str:
        return f"{self.kind.value}:{self.subject}"


@dataclass
class MatchReport:
    movements: int = 0
    matched: int = 0
    pending: int = 0
    findings: list[Finding] = field(default_factory=list)


def match(
    ops: Mapping[str, OurOp],
    postings: Mapping[str, Sequence[OurPosting]],
    report: Sequence[PspMovement],
    *,
    judge_before_ms: int,
) -> MatchReport:
    out = MatchReport(movements=len(report))
    money = [m for m in report if m.moves_our_money]
    per_key = Counter(m.idempotency_key for m in money if m.idempotency_key is not None)
    for key, n in sorted(per_key.items()):
        if n > 1:
            op = ops.get(key)
            out.findings.append(
                Finding(
                    DiscrepancyKind.DUPLICATE_MOVEMENT, key, f"{n} PSP movements under one key",
                    op_id=key if op else None, account_id=op.account_id if op else None,
                )
            )  # fmt: skip
    succeeded: dict[str, PspMovement] = {}
    for m in money:
        if not m.succeeded:
            continue
        if m.idempotency_key is None or m.idempotency_key not in ops:
            out.findings.append(_orphan(m))
            continue
        succeeded.setdefault(m.idempotency_key, m)
    for key, m in succeeded.items():
        _match_success(ops[key], m, postings.get(key, ()), judge_before_ms, out)
    _postings_without_success(ops, postings, succeeded, judge_before_ms, out)
    _results_against_ledger(ops, postings, judge_before_ms, out)
    return out


def _orphan(m: PspMovement) -> Finding:
    return Finding(
        DiscrepancyKind.ORPHAN_MOVEMENT,
        m.id,
        f"PSP {m.kind} of {m.amount} {m.currency} that no operation of ours asked for",
        psp_movement_id=m.id,
        psp_amount=m.amount,
        currency=m.currency,
    )


def _match_success(
    op: OurOp, m: PspMovement, posts: Sequence[OurPosting], judge_before_ms: int, out: MatchReport
) -> None:
    if not posts:
        if not op.terminal or m.created_at_ms >= judge_before_ms:
            out.pending += 1  # the outcome is on its way (psp-caller, webhook or reconciler)
            return
        detail = f"the PSP {m.kind} succeeded but the operation ended {op.status} without posting it"
        out.findings.append(_about(op, m, DiscrepancyKind.MISSING_ON_OUR_SIDE, detail))
        return
    posted = posts[0]
    if posted.kind == LedgerTxKind.LATE_PSP_SUCCESS:
        detail = (
            f"the PSP succeeded after the operation ended {op.status}; posted to suspense for an operator"
        )
        out.findings.append(_about(op, m, DiscrepancyKind.SUSPENSE_POSTING, detail, posted.amount))
    elif posted.amount != m.amount or m.currency != op.currency:
        detail = f"our ledger posted {posted.amount} {op.currency}, the PSP moved {m.amount} {m.currency}"
        out.findings.append(_about(op, m, DiscrepancyKind.AMOUNT_MISMATCH, detail, posted.amount))
    else:
        out.matched += 1


def _about(
    op: OurOp, m: PspMovement, kind: DiscrepancyKind, detail: str, ledger_amount: int | None = None
) -> Finding:
    return Finding(
        kind,
        op.op_id,
        detail,
        op_id=op.op_id,
        account_id=op.account_id,
        psp_movement_id=m.id,
        psp_amount=m.amount,
        ledger_amount=ledger_amount,
        currency=m.currency,
    )


def _postings_without_success(
    ops: Mapping[str, OurOp],
    postings: Mapping[str, Sequence[OurPosting]],
    succeeded: Mapping[str, PspMovement],
    judge_before_ms: int,
    out: MatchReport,
) -> None:
    for op_id, posts in sorted(postings.items()):
        if op_id in succeeded or not posts or posts[0].occurred_at >= judge_before_ms:
            continue
        op = ops.get(op_id)
        if op is None:
            continue  # a posting without a published operation: reported once, by _results_against_ledger
        out.findings.append(
            Finding(
                DiscrepancyKind.MISSING_AT_PSP, op_id,
                "our ledger posted a PSP success the PSP's report does not show",
                op_id=op_id, account_id=posts[0].account_id, ledger_amount=posts[0].amount,
                currency=op.currency,
            )
        )  # fmt: skip


def _results_against_ledger(
    ops: Mapping[str, OurOp],
    postings: Mapping[str, Sequence[OurPosting]],
    judge_before_ms: int,
    out: MatchReport,
) -> None:
    # The job takes the results topic's end offsets before the ledger's, and the processor writes a
    # result and its ledger transaction in one Kafka transaction: the ledger read may include a few
    # transactions whose results it has not read yet. Only postings older than the grace are judged.
    for op_id, op in sorted(ops.items()):
        posts = postings.get(op_id, ())
        regular = [p for p in posts if p.kind != LedgerTxKind.LATE_PSP_SUCCESS]
        problem = None
        if len(posts) > 1:
            problem = f"{len(posts)} PSP postings for one operation"
        elif op.status == "succeeded" and not regular:
            problem = "the operation succeeded without its ledger posting"
        elif regular and op.status != "succeeded" and regular[0].occurred_at < judge_before_ms:
            problem = f"a PSP posting for an operation that is {op.status}"
        if problem is not None:
            out.findings.append(
                Finding(
                    DiscrepancyKind.RESULT_LEDGER_MISMATCH, op_id, problem,
                    op_id=op_id, account_id=op.account_id, currency=op.currency,
                )
            )  # fmt: skip
    for op_id, posts in sorted(postings.items()):
        if op_id not in ops and posts and posts[0].occurred_at < judge_before_ms:
            out.findings.append(
                Finding(
                    DiscrepancyKind.RESULT_LEDGER_MISMATCH, op_id,
                    "a PSP posting for an operation never published on results",
                    op_id=op_id, account_id=posts[0].account_id,
                )
            )  # fmt: skip
