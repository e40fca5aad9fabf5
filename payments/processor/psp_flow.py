"""Payments and top-ups through the PSP: hold → PSP request → outcome → post or release. Pure.

A payment places a hold (``held`` grows, ``available`` shrinks) and asks the psp-caller for a transfer in the
same decision; a top-up asks for a card charge and credits nothing until the PSP confirms. Outcomes (from the
psp-caller, webhooks or the reconciler, in any order and any number of times) are applied monotonically:

* non-terminal (``reserved``/``processing``/``unknown``) + ``succeeded`` → post the ledger transaction and
  capture the hold; + ``failed`` → release the hold; + ``unknown`` → keep the hold, mark ``unknown``;
* a terminal operation never moves again. A PSP success that arrives after we ended the operation otherwise
  (expired, or a contradicting earlier failure) is money the PSP really moved: it is posted once to
  ``suspense`` and published as a discrepancy, so every PSP success has exactly one ledger posting
  (invariant 3) and an operator can resolve it. A failure contradicting a success is recorded, not applied.
"""

from __future__ import annotations

from payments.processor.decision import NOOP, Decision, Policy, bump, ledger_tx, result, transition
from payments.processor.operations import new_op, precheck, refuse, replayed
from payments.schemas.commands import ExpireOperation, RecordPspOutcome, RequestPayment, RequestTopUp
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import (
    CHARGE_CLEARING,
    PAYOUT_CLEARING,
    SUSPENSE,
    LedgerTxKind,
    Posting,
    customer_ledger_account,
)
from payments.schemas.psp import PspOutcomeStatus, PspRequest, PspRequestKind
from payments.schemas.state import (
    AccountSnapshot,
    Hold,
    HoldStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultType,
    result_type_for,
)

_PSP_KINDS = (OperationKind.PAYMENT, OperationKind.TOP_UP)


def pay(acct: AccountSnapshot, existing: Operation | None, cmd: RequestPayment, policy: Policy) -> Decision:
    if existing is not None:
        # The second line of idempotency defence: whatever slipped past the gateway's Redis dedupe.
        return replayed(acct, existing, cmd)
    problem = precheck(acct, cmd)
    if problem is not None:
        return refuse(acct, cmd, OperationStatus.REJECTED, *problem)
    if acct.available - cmd.amount < -acct.overdraft_limit:
        # Declines by funds never reach the PSP.
        return refuse(
            acct, cmd, OperationStatus.DECLINED, ErrorCode.INSUFFICIENT_FUNDS, "not enough available funds"
        )
    acct = bump(acct, held=acct.held + cmd.amount)
    deadline = cmd.issued_at + policy.operation_ttl_ms
    op = new_op(cmd, acct, OperationStatus.RESERVED, hold=Hold(amount=cmd.amount), deadline_at=deadline)
    request = PspRequest(
        op_id=op.op_id,
        account_id=acct.account_id,
        kind=PspRequestKind.TRANSFER,
        amount=cmd.amount,
        currency=cmd.currency,
        payee=cmd.payee,
        issued_at=cmd.issued_at,
        deadline_at=deadline,
        seq=acct.version,
    )
    res = result(acct, cmd, ResultType.PAYMENT_RESERVED, op=op)
    return Decision(account=acct, operation=op, results=(res,), psp_requests=(request,))


def top_up(acct: AccountSnapshot, existing: Operation | None, cmd: RequestTopUp, policy: Policy) -> Decision:
    if existing is not None:
        return replayed(acct, existing, cmd)
    problem = precheck(acct, cmd)
    if problem is not None:
        return refuse(acct, cmd, OperationStatus.REJECTED, *problem)
    # No balance changes until the PSP confirms the charge; the version still moves because a result
    # (``top_up_processing``) is published.
    acct = bump(acct)
    deadline = cmd.issued_at + policy.operation_ttl_ms
    op = new_op(cmd, acct, OperationStatus.PROCESSING, deadline_at=deadline)
    request = PspRequest(
        op_id=op.op_id,
        account_id=acct.account_id,
        kind=PspRequestKind.CHARGE,
        amount=cmd.amount,
        currency=cmd.currency,
        payment_method=cmd.payment_method,
        issued_at=cmd.issued_at,
        deadline_at=deadline,
        seq=acct.version,
    )
    res = result(acct, cmd, ResultType.TOP_UP_PROCESSING, op=op)
    return Decision(account=acct, operation=op, results=(res,), psp_requests=(request,))


def outcome(acct: AccountSnapshot, op: Operation | None, cmd: RecordPspOutcome) -> Decision:
    if op is None or op.kind not in _PSP_KINDS:
        # Not an operation of ours on this account: the settlement reconciliation reports such movements.
        return NOOP
    if op.is_terminal:
        return _after_terminal(acct, op, cmd)
    match cmd.status:
        case PspOutcomeStatus.SUCCEEDED:
            return _succeed(acct, op, cmd)
        case PspOutcomeStatus.FAILED:
            return _end_without_money(
                acct, op, cmd, ErrorCode.PSP_DECLINED, HoldStatus.RELEASED, cmd.psp_failure_code
            )
        case PspOutcomeStatus.UNKNOWN:
            if op.status is OperationStatus.UNKNOWN:
                return NOOP
            return _move(acct, op, cmd, OperationStatus.UNKNOWN)
        case PspOutcomeStatus.PROCESSING:
            # Only news while the operation is merely reserved; never a step back from unknown.
            if op.status is not OperationStatus.RESERVED:
                return NOOP
            return _move(acct, op, cmd, OperationStatus.PROCESSING)


def expire(acct: AccountSnapshot, op: Operation | None, cmd: ExpireOperation) -> Decision:
    """The reconciler found no PSP record past the deadline: fail the operation and release its hold.

    The PSP idempotency key stays bound to this operation, so a late PSP execution is caught by
    ``_after_terminal`` as a discrepancy instead of creating money.
    """
    if op is None or op.kind not in _PSP_KINDS or op.is_terminal:
        return NOOP
    if op.deadline_at is None or cmd.issued_at < op.deadline_at:
        return NOOP  # too early: the command's clock says the deadline has not passed
    return _end_without_money(acct, op, cmd, ErrorCode.OPERATION_EXPIRED, HoldStatus.EXPIRED, None)


def _move(acct: AccountSnapshot, op: Operation, cmd: RecordPspOutcome, status: OperationStatus) -> Decision:
    acct = bump(acct)
    op = transition(
        op, acct, cmd, status, changes={"psp_movement_id": cmd.psp_movement_id or op.psp_movement_id}
    )
    return Decision(account=acct, operation=op, results=(result(acct, cmd, result_type_for(op), op=op),))


def _succeed(acct: AccountSnapshot, op: Operation, cmd: RecordPspOutcome) -> Decision:
    customer = customer_ledger_account(acct.account_id)
    changes: dict[str, object] = {"psp_movement_id": cmd.psp_movement_id}
    if op.kind is OperationKind.PAYMENT:
        # A non-terminal payment always has an open hold (placed by ``pay``, ended only with the status).
        assert op.hold is not None
        assert op.hold.status is HoldStatus.OPEN
        acct = bump(acct, posted=acct.posted - op.amount, held=acct.held - op.hold.amount)
        changes["hold"] = op.hold.model_copy(update={"status": HoldStatus.CAPTURED})
        posting = Posting(debit=customer, credit=PAYOUT_CLEARING, amount=op.amount)
    else:
        acct = bump(acct, posted=acct.posted + op.amount)
        posting = Posting(debit=CHARGE_CLEARING, credit=customer, amount=op.amount)
    if cmd.amount is not None and cmd.amount != op.amount:
        changes["discrepancies"] = op.discrepancies + 1
    tx = ledger_tx(acct, op.op_id, LedgerTxKind(op.kind.value), op.currency, cmd.issued_at, posting)
    op = transition(op, acct, cmd, OperationStatus.SUCCEEDED, changes=changes)
    res = result(acct, cmd, result_type_for(op), op=op, tx=tx)
    return Decision(account=acct, operation=op, results=(res,), ledger=(tx,))


def _end_without_money(
    acct: AccountSnapshot,
    op: Operation,
    cmd: RecordPspOutcome | ExpireOperation,
    code: ErrorCode,
    hold_end: HoldStatus,
    psp_failure_code: str | None,
) -> Decision:
    changes: dict[str, object] = {"psp_failure_code": psp_failure_code}
    if isinstance(cmd, RecordPspOutcome) and cmd.psp_movement_id:
        changes["psp_movement_id"] = cmd.psp_movement_id
    if op.hold is not None and op.hold.status is HoldStatus.OPEN:
        acct = bump(acct, held=acct.held - op.hold.amount)
        changes["hold"] = op.hold.model_copy(update={"status": hold_end})
    else:
        acct = bump(acct)
    op = transition(op, acct, cmd, OperationStatus.FAILED, code=code, changes=changes)
    return Decision(
        account=acct, operation=op, results=(result(acct, cmd, result_type_for(op), op=op, code=code),)
    )


def _after_terminal(acct: AccountSnapshot, op: Operation, cmd: RecordPspOutcome) -> Decision:
    status = cmd.status
    if status in (PspOutcomeStatus.UNKNOWN, PspOutcomeStatus.PROCESSING):
        return NOOP  # stale news about an operation that has ended
    if op.status is OperationStatus.SUCCEEDED:
        if status is PspOutcomeStatus.SUCCEEDED:
            return NOOP  # the usual duplicate: psp-caller and webhook both report the success
        return _discrepancy(acct, op, cmd, "the PSP reported a failure after a success; the success stands")
    if status is PspOutcomeStatus.FAILED or op.late_success:
        return NOOP
    # A PSP success for an operation that ended without money (expired, or an earlier contradicting
    # failure): the money really moved, so post it once to suspense.
    amount = cmd.amount or op.amount
    if op.kind is OperationKind.PAYMENT:  # paid out to the payee, from no customer balance
        posting = Posting(debit=SUSPENSE, credit=PAYOUT_CLEARING, amount=amount)
    else:  # collected from the card, credited to no customer balance
        posting = Posting(debit=CHARGE_CLEARING, credit=SUSPENSE, amount=amount)
    return _discrepancy(
        acct, op, cmd, "the PSP reported a success after the operation ended; posted to suspense",
        posting=posting, late_success=True, psp_movement_id=cmd.psp_movement_id,
    )  # fmt: skip


def _discrepancy(
    acct: AccountSnapshot,
    op: Operation,
    cmd: RecordPspOutcome,
    detail: str,
    *,
    posting: Posting | None = None,
    **changes: object,
) -> Decision:
    """Recorded on the operation and published; with ``posting``, its one ledger transaction too."""
    acct = bump(acct)
    tx = None
    if posting is not None:
        tx = ledger_tx(acct, op.op_id, LedgerTxKind.LATE_PSP_SUCCESS, op.currency, cmd.issued_at, posting)
    op = op.model_copy(update={**changes, "discrepancies": op.discrepancies + 1, "updated_at": cmd.issued_at})
    res = result(
        acct, cmd, ResultType.PSP_DISCREPANCY, op=op, code=ErrorCode.PSP_DISCREPANCY, detail=detail, tx=tx
    )
    return Decision(account=acct, operation=op, results=(res,), ledger=(tx,) if tx else ())
