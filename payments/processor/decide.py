"""The account state machine: ``decide(account, operation, command) -> Decision``. Pure.

No Kafka, Redis, clock or randomness here: "now" is the command's ``issued_at`` and every id is derived
from the command, so replaying the same command log always yields byte-identical outputs.

Each decision that changes anything bumps the account ``version`` by one and publishes exactly one result
with ``seq == version``; a ledger transaction, when there is one, carries the same ``seq`` so the pair can be
matched (invariant 12).
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import (
    FUNDING,
    PAYOUT_CLEARING,
    LedgerTransaction,
    Posting,
    customer_ledger_account,
)
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultEvent,
    ResultType,
    StatusChange,
)

Command = OpenAccount | AdjustBalance | RequestPayment


@dataclass(frozen=True)
class Decision:
    account: AccountSnapshot | None = None  # new account state to store, None = unchanged
    operation: Operation | None = None  # new operation state to store, None = unchanged
    results: tuple[ResultEvent, ...] = ()
    ledger: tuple[LedgerTransaction, ...] = ()

    @property
    def is_noop(self) -> bool:
        return self.account is None and self.operation is None


NOOP = Decision()


def operation_key(cmd: Command) -> str | None:
    """The id of the operation a command is about (the dedupe key), or None for account-level commands."""
    return None if isinstance(cmd, OpenAccount) else cmd.command_id


def adjustment_fingerprint(cmd: AdjustBalance) -> str:
    # Adjustments are admin-only and rare; a readable fingerprint of the fields that matter is enough.
    return f"adjust|{cmd.amount}|{cmd.currency}|{cmd.reason}"


def decide(account: AccountSnapshot | None, operation: Operation | None, cmd: Command) -> Decision:
    acct = account or AccountSnapshot(account_id=cmd.account_id, status=AccountStatus.ABSENT)
    if isinstance(cmd, OpenAccount):
        return _open(acct, cmd)
    if isinstance(cmd, AdjustBalance):
        return _adjust(acct, operation, cmd)
    return _pay(acct, operation, cmd)


def _result(
    acct: AccountSnapshot,
    cmd: Command,
    kind: ResultType,
    *,
    op: Operation | None = None,
    code: ErrorCode | None = None,
    detail: str | None = None,
    tx: LedgerTransaction | None = None,
) -> ResultEvent:
    return ResultEvent(
        event_id=f"{acct.account_id}:{acct.version}",
        type=kind,
        account_id=acct.account_id,
        seq=acct.version,
        occurred_at=cmd.issued_at,
        command_id=cmd.command_id,
        account=acct,
        operation=op,
        code=code,
        detail=detail,
        ledger_tx_id=tx.tx_id if tx else None,
    )


def _bump(acct: AccountSnapshot, **changes: object) -> AccountSnapshot:
    return acct.model_copy(update={**changes, "version": acct.version + 1})


def _open(acct: AccountSnapshot, cmd: OpenAccount) -> Decision:
    if acct.status is AccountStatus.OPEN:
        if acct.opened_by_command == cmd.command_id:
            return NOOP  # a redelivered or retried open: already applied
        acct = _bump(acct)
        return Decision(
            account=acct,
            results=(_result(acct, cmd, ResultType.COMMAND_REJECTED, code=ErrorCode.ACCOUNT_EXISTS),),
        )
    acct = _bump(
        acct,
        status=AccountStatus.OPEN,
        currency=cmd.currency,
        members=tuple(sorted(set(cmd.members))),
        overdraft_limit=cmd.overdraft_limit,
        opened_by_command=cmd.command_id,
    )
    return Decision(account=acct, results=(_result(acct, cmd, ResultType.ACCOUNT_OPENED),))


def _mismatch(acct: AccountSnapshot, op: Operation, cmd: Command) -> Decision:
    """Same operation id, different payload: never applied, but recorded on the operation and published."""
    acct = _bump(acct)
    op = op.model_copy(update={"mismatched_commands": op.mismatched_commands + 1})
    result = _result(acct, cmd, ResultType.IDEMPOTENCY_MISMATCH, op=op, code=ErrorCode.IDEMPOTENCY_KEY_REUSED)
    return Decision(account=acct, operation=op, results=(result,))


def _new_op(
    cmd: AdjustBalance | RequestPayment,
    acct: AccountSnapshot,
    status: OperationStatus,
    code: ErrorCode | None,
) -> Operation:
    is_payment = isinstance(cmd, RequestPayment)
    return Operation(
        op_id=cmd.command_id,
        kind=OperationKind.PAYMENT if is_payment else OperationKind.ADJUSTMENT,
        account_id=cmd.account_id,
        principal=cmd.principal,
        amount=cmd.amount,
        currency=cmd.currency,
        payee=cmd.payee if isinstance(cmd, RequestPayment) else None,
        description=cmd.description if isinstance(cmd, RequestPayment) else None,
        reason=cmd.reason if isinstance(cmd, AdjustBalance) else None,
        fingerprint=cmd.fingerprint if isinstance(cmd, RequestPayment) else adjustment_fingerprint(cmd),
        status=status,
        failure_code=code,
        created_at=cmd.issued_at,
        updated_at=cmd.issued_at,
        history=(StatusChange(status=status, at=cmd.issued_at, seq=acct.version, code=code),),
    )


def _refuse(
    acct: AccountSnapshot,
    cmd: AdjustBalance | RequestPayment,
    status: OperationStatus,
    code: ErrorCode,
    detail: str,
) -> Decision:
    acct = _bump(acct)
    op = _new_op(cmd, acct, status, code)
    if isinstance(cmd, RequestPayment):
        kind = (
            ResultType.PAYMENT_DECLINED if status is OperationStatus.DECLINED else ResultType.PAYMENT_REJECTED
        )
    else:
        kind = ResultType.COMMAND_REJECTED
    return Decision(
        account=acct, operation=op, results=(_result(acct, cmd, kind, op=op, code=code, detail=detail),)
    )


def _precheck(acct: AccountSnapshot, cmd: AdjustBalance | RequestPayment) -> tuple[ErrorCode, str] | None:
    if acct.status is not AccountStatus.OPEN:
        return ErrorCode.ACCOUNT_NOT_FOUND, "the account does not exist"
    if cmd.currency != acct.currency:
        return ErrorCode.CURRENCY_MISMATCH, f"the account is in {acct.currency}, not {cmd.currency}"
    return None


def _adjust(acct: AccountSnapshot, existing: Operation | None, cmd: AdjustBalance) -> Decision:
    if existing is not None:
        return NOOP if existing.fingerprint == adjustment_fingerprint(cmd) else _mismatch(acct, existing, cmd)
    problem = _precheck(acct, cmd)
    if problem is None and cmd.amount == 0:
        problem = ErrorCode.VALIDATION_ERROR, "an adjustment must not be zero"
    if problem is not None:
        return _refuse(acct, cmd, OperationStatus.REJECTED, *problem)
    if acct.available + cmd.amount < -acct.overdraft_limit:
        return _refuse(
            acct, cmd, OperationStatus.DECLINED, ErrorCode.INSUFFICIENT_FUNDS, "adjustment exceeds available"
        )
    acct = _bump(acct, posted=acct.posted + cmd.amount)
    customer = customer_ledger_account(acct.account_id)
    debit, credit = (FUNDING, customer) if cmd.amount > 0 else (customer, FUNDING)
    tx = _tx(acct, cmd, "adjustment", Posting(debit=debit, credit=credit, amount=abs(cmd.amount)))
    op = _new_op(cmd, acct, OperationStatus.SUCCEEDED, None)
    result = _result(acct, cmd, ResultType.ADJUSTMENT_APPLIED, op=op, tx=tx)
    return Decision(account=acct, operation=op, results=(result,), ledger=(tx,))


def _pay(acct: AccountSnapshot, existing: Operation | None, cmd: RequestPayment) -> Decision:
    if existing is not None:
        # The second line of idempotency defence: whatever slipped past the gateway's Redis dedupe.
        return NOOP if existing.fingerprint == cmd.fingerprint else _mismatch(acct, existing, cmd)
    problem = _precheck(acct, cmd)
    if problem is None and cmd.principal not in acct.members:
        # The gateway checked membership against the read model; this is the authoritative check.
        problem = ErrorCode.NOT_A_MEMBER, "the principal is not a member of the account"
    if problem is not None:
        return _refuse(acct, cmd, OperationStatus.REJECTED, *problem)
    if acct.available - cmd.amount < -acct.overdraft_limit:
        return _refuse(
            acct, cmd, OperationStatus.DECLINED, ErrorCode.INSUFFICIENT_FUNDS, "not enough available funds"
        )
    acct = _bump(acct, posted=acct.posted - cmd.amount)
    posting = Posting(
        debit=customer_ledger_account(acct.account_id), credit=PAYOUT_CLEARING, amount=cmd.amount
    )
    tx = _tx(acct, cmd, "payment", posting)
    op = _new_op(cmd, acct, OperationStatus.SUCCEEDED, None)
    return Decision(
        account=acct,
        operation=op,
        results=(_result(acct, cmd, ResultType.PAYMENT_SUCCEEDED, op=op, tx=tx),),
        ledger=(tx,),
    )


def _tx(
    acct: AccountSnapshot, cmd: AdjustBalance | RequestPayment, kind: str, *postings: Posting
) -> LedgerTransaction:
    return LedgerTransaction(
        tx_id=f"{cmd.command_id}:{kind}",
        account_id=acct.account_id,
        seq=acct.version,
        op_id=cmd.command_id,
        kind=kind,
        currency=cmd.currency,
        occurred_at=cmd.issued_at,
        postings=postings,
    )
