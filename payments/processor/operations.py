"""Creating and refusing operations (payments, top-ups, adjustments); shared by every money command."""

from __future__ import annotations

from payments.processor.decision import Decision, bump, result
from payments.schemas.commands import AdjustBalance, AnyCommand, RequestPayment, RequestTopUp
from payments.schemas.errors import ErrorCode
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultType,
    StatusChange,
    result_type_for,
)

MoneyCommand = AdjustBalance | RequestPayment | RequestTopUp


def adjustment_fingerprint(cmd: AdjustBalance) -> str:
    # Adjustments are admin-only and rare; a readable fingerprint of the fields that matter is enough.
    return f"adjust|{cmd.amount}|{cmd.currency}|{cmd.reason}"


def fingerprint_of(cmd: MoneyCommand) -> str:
    return adjustment_fingerprint(cmd) if isinstance(cmd, AdjustBalance) else cmd.fingerprint


def new_op(
    cmd: MoneyCommand,
    acct: AccountSnapshot,
    status: OperationStatus,
    code: ErrorCode | None = None,
    **extra: object,
) -> Operation:
    kind = {
        RequestPayment: OperationKind.PAYMENT,
        RequestTopUp: OperationKind.TOP_UP,
        AdjustBalance: OperationKind.ADJUSTMENT,
    }[type(cmd)]
    op = Operation(
        op_id=cmd.command_id,
        kind=kind,
        account_id=cmd.account_id,
        principal=cmd.principal,
        amount=cmd.amount,
        currency=cmd.currency,
        payee=cmd.payee if isinstance(cmd, RequestPayment) else None,
        description=cmd.description if isinstance(cmd, RequestPayment) else None,
        reason=cmd.reason if isinstance(cmd, AdjustBalance) else None,
        payment_method=cmd.payment_method if isinstance(cmd, RequestTopUp) else None,
        fingerprint=fingerprint_of(cmd),
        status=status,
        failure_code=code,
        created_at=cmd.issued_at,
        updated_at=cmd.issued_at,
        history=(StatusChange(status=status, at=cmd.issued_at, seq=acct.version, code=code),),
    )
    return op.model_copy(update=extra) if extra else op


def refuse(
    acct: AccountSnapshot, cmd: MoneyCommand, status: OperationStatus, code: ErrorCode, detail: str
) -> Decision:
    """A final no: the operation is recorded (so retries dedupe to the same answer) and nothing moves."""
    acct = bump(acct)
    op = new_op(cmd, acct, status, code)
    return Decision(
        account=acct,
        operation=op,
        results=(result(acct, cmd, result_type_for(op), op=op, code=code, detail=detail),),
    )


def precheck(acct: AccountSnapshot, cmd: MoneyCommand) -> tuple[ErrorCode, str] | None:
    if acct.status is not AccountStatus.OPEN:
        return ErrorCode.ACCOUNT_NOT_FOUND, "the account does not exist"
    if cmd.currency != acct.currency:
        return ErrorCode.CURRENCY_MISMATCH, f"the account is in {acct.currency}, not {cmd.currency}"
    if not isinstance(cmd, AdjustBalance) and cmd.principal not in acct.members:
        # The gateway checked membership against the read model; this is the authoritative check.
        return ErrorCode.NOT_A_MEMBER, "the principal is not a member of the account"
    return None


def replayed(acct: AccountSnapshot, existing: Operation, cmd: MoneyCommand) -> Decision:
    """The operation id is known: the same payload is a no-op; another payload is recorded, never applied."""
    if existing.fingerprint == fingerprint_of(cmd):
        return Decision()
    return mismatch(acct, existing, cmd)


def mismatch(acct: AccountSnapshot, op: Operation, cmd: AnyCommand) -> Decision:
    acct = bump(acct)
    op = op.model_copy(update={"mismatched_commands": op.mismatched_commands + 1})
    res = result(acct, cmd, ResultType.IDEMPOTENCY_MISMATCH, op=op, code=ErrorCode.IDEMPOTENCY_KEY_REUSED)
    return Decision(account=acct, operation=op, results=(res,))
