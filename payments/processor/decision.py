"""The value ``decide()`` returns and the small pure helpers every decision shares.

Each decision that changes anything bumps the account ``version`` by one and publishes exactly one result
with ``seq == version``; a ledger transaction, when there is one, carries the same ``seq`` so the pair can be
matched (invariant 12).
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.schemas.commands import AnyCommand
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import LedgerTransaction, LedgerTxKind, Posting
from payments.schemas.psp import PspRequest
from payments.schemas.state import (
    AccountSnapshot,
    Operation,
    OperationStatus,
    ResultEvent,
    ResultType,
    StatusChange,
)


@dataclass(frozen=True)
class Policy:
    """Decision parameters that are configuration, not state (built from the processor's settings)."""

    # How long a PSP operation may stay non-terminal before the reconciler may expire it (ms). Long enough
    # for the psp-caller's whole retry budget plus a reconciler lookup; the hold stays until then.
    operation_ttl_ms: int = 15 * 60 * 1000


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Decision:
    account: AccountSnapshot | None = None  # new account state to store, None = unchanged
    operation: Operation | None = None  # new operation state to store, None = unchanged
    results: tuple[ResultEvent, ...] = ()
    ledger: tuple[LedgerTransaction, ...] = ()
    psp_requests: tuple[PspRequest, ...] = ()

    @property
    def is_noop(self) -> bool:
        return self.account is None and self.operation is None


NOOP = Decision()


def bump(acct: AccountSnapshot, **changes: object) -> AccountSnapshot:
    return acct.model_copy(update={**changes, "version": acct.version + 1})


def result(
    acct: AccountSnapshot,
    cmd: AnyCommand,
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


def transition(
    op: Operation,
    acct: AccountSnapshot,
    cmd: AnyCommand,
    status: OperationStatus,
    *,
    code: ErrorCode | None = None,
    changes: dict[str, object] | None = None,
) -> Operation:
    """``op`` moved to ``status`` at the (already bumped) account version, with its history extended."""
    change = StatusChange(status=status, at=cmd.issued_at, seq=acct.version, code=code)
    return op.model_copy(
        update={
            **(changes or {}),
            "status": status,
            "failure_code": code if code is not None else op.failure_code,
            "updated_at": cmd.issued_at,
            "history": (*op.history, change),
        }
    )


def ledger_tx(
    acct: AccountSnapshot, op_id: str, kind: LedgerTxKind, currency: str, at: int, *postings: Posting
) -> LedgerTransaction:
    """A transaction whose id derives from the operation and its kind, so a replay produces the same id."""
    return LedgerTransaction(
        tx_id=f"{op_id}:{kind.value}",
        account_id=acct.account_id,
        seq=acct.version,
        op_id=op_id,
        kind=kind.value,
        currency=currency,
        occurred_at=at,
        postings=postings,
    )
