"""The account state machine: ``decide(account, operation, command, policy) -> Decision``. Pure.

No Kafka, Redis, clock or randomness here: "now" is the command's ``issued_at`` and every id is derived
from the command, so replaying the same command log always yields byte-identical outputs. Account-level
commands (open, members, adjustments) are decided here; the PSP flow (payments, top-ups, PSP outcomes,
expiry) is in ``psp_flow``.
"""

from __future__ import annotations

from payments.processor import psp_flow
from payments.processor.decision import DEFAULT_POLICY, NOOP, Decision, Policy, bump, ledger_tx, result
from payments.processor.operations import new_op, precheck, refuse, replayed
from payments.schemas.commands import (
    AddMember,
    AdjustBalance,
    AnyCommand,
    ExpireOperation,
    OpenAccount,
    RecordPspOutcome,
    RemoveMember,
    RequestPayment,
    RequestTopUp,
)
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import FUNDING, LedgerTxKind, Posting, customer_ledger_account
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationStatus,
    ResultType,
)

__all__ = ["DEFAULT_POLICY", "Decision", "Policy", "decide", "operation_key"]


def operation_key(cmd: AnyCommand) -> str | None:
    """The id of the operation a command is about (the dedupe key), or None for account-level commands."""
    if isinstance(cmd, OpenAccount | AddMember | RemoveMember):
        return None
    if isinstance(cmd, RecordPspOutcome | ExpireOperation):
        return cmd.op_id
    return cmd.command_id


def decide(
    account: AccountSnapshot | None,
    operation: Operation | None,
    cmd: AnyCommand,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    acct = account or AccountSnapshot(account_id=cmd.account_id, status=AccountStatus.ABSENT)
    if operation is not None and operation.account_id != cmd.account_id:
        # Operations are stored per partition by id alone, so a command keyed by another account can be
        # handed this one: it must never move that account's money nor show it this operation.
        return _foreign(acct, cmd)
    match cmd:
        case OpenAccount():
            return _open(acct, cmd)
        case AddMember() | RemoveMember():
            return _membership(acct, cmd)
        case AdjustBalance():
            return _adjust(acct, operation, cmd)
        case RequestPayment():
            return psp_flow.pay(acct, operation, cmd, policy)
        case RequestTopUp():
            return psp_flow.top_up(acct, operation, cmd, policy)
        case RecordPspOutcome():
            return psp_flow.outcome(acct, operation, cmd)
        case ExpireOperation():
            return psp_flow.expire(acct, operation, cmd)


def _foreign(acct: AccountSnapshot, cmd: AnyCommand) -> Decision:
    if isinstance(cmd, RecordPspOutcome | ExpireOperation):
        return NOOP  # mis-routed news; the operation's own account never heard it, the reconciler will
    acct = bump(acct)
    detail = "the operation id is already used by another account"
    res = result(acct, cmd, ResultType.COMMAND_REJECTED, code=ErrorCode.IDEMPOTENCY_KEY_REUSED, detail=detail)
    return Decision(account=acct, results=(res,))


def _open(acct: AccountSnapshot, cmd: OpenAccount) -> Decision:
    if acct.status is AccountStatus.OPEN:
        if acct.opened_by_command == cmd.command_id:
            return NOOP  # a redelivered or retried open: already applied
        acct = bump(acct)
        return Decision(
            account=acct,
            results=(result(acct, cmd, ResultType.COMMAND_REJECTED, code=ErrorCode.ACCOUNT_EXISTS),),
        )
    acct = bump(
        acct,
        status=AccountStatus.OPEN,
        currency=cmd.currency,
        members=tuple(sorted(set(cmd.members))),
        overdraft_limit=cmd.overdraft_limit,
        opened_by_command=cmd.command_id,
    )
    return Decision(account=acct, results=(result(acct, cmd, ResultType.ACCOUNT_OPENED),))


def _membership(acct: AccountSnapshot, cmd: AddMember | RemoveMember) -> Decision:
    if acct.status is not AccountStatus.OPEN:
        acct = bump(acct)
        res = result(
            acct, cmd, ResultType.COMMAND_REJECTED, code=ErrorCode.ACCOUNT_NOT_FOUND, detail="no such account"
        )
        return Decision(account=acct, results=(res,))
    members = set(acct.members)
    adding = isinstance(cmd, AddMember)
    if (cmd.user_id in members) == adding:
        return NOOP  # already so: membership changes are idempotent by nature
    members = members | {cmd.user_id} if adding else members - {cmd.user_id}
    acct = bump(acct, members=tuple(sorted(members)))
    kind = ResultType.MEMBER_ADDED if adding else ResultType.MEMBER_REMOVED
    return Decision(account=acct, results=(result(acct, cmd, kind, detail=cmd.user_id),))


def _adjust(acct: AccountSnapshot, existing: Operation | None, cmd: AdjustBalance) -> Decision:
    if existing is not None:
        return replayed(acct, existing, cmd)
    problem = precheck(acct, cmd)
    if problem is None and cmd.amount == 0:
        problem = ErrorCode.VALIDATION_ERROR, "an adjustment must not be zero"
    if problem is not None:
        return refuse(acct, cmd, OperationStatus.REJECTED, *problem)
    if acct.available + cmd.amount < -acct.overdraft_limit:
        return refuse(
            acct, cmd, OperationStatus.DECLINED, ErrorCode.INSUFFICIENT_FUNDS, "adjustment exceeds available"
        )
    acct = bump(acct, posted=acct.posted + cmd.amount)
    customer = customer_ledger_account(acct.account_id)
    debit, credit = (FUNDING, customer) if cmd.amount > 0 else (customer, FUNDING)
    tx = ledger_tx(
        acct,
        cmd.command_id,
        LedgerTxKind.ADJUSTMENT,
        cmd.currency,
        cmd.issued_at,
        Posting(debit=debit, credit=credit, amount=abs(cmd.amount)),
    )
    op = new_op(cmd, acct, OperationStatus.SUCCEEDED)
    res = result(acct, cmd, ResultType.ADJUSTMENT_APPLIED, op=op, tx=tx)
    return Decision(account=acct, operation=op, results=(res,), ledger=(tx,))
