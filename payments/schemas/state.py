"""Account and operation state as published on ``payments.results`` (and kept by the processor)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from payments.schemas.errors import ErrorCode


class AccountStatus(StrEnum):
    OPEN = "open"
    # Commands reached an account id that was never opened. The record exists only so that the account's
    # sequence numbers stay dense and monotone if it is opened later.
    ABSENT = "absent"


class AccountSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    status: AccountStatus
    currency: str | None = None
    members: tuple[str, ...] = ()
    overdraft_limit: int = 0
    posted: int = 0
    held: int = 0
    version: int = 0
    opened_by_command: str | None = None

    @property
    def available(self) -> int:
        return self.posted - self.held


class OperationKind(StrEnum):
    PAYMENT = "payment"
    ADJUSTMENT = "adjustment"


class OperationStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"  # a business decline (funds): final, never flips to success on retry
    REJECTED = "rejected"  # the command was invalid for the account (not a member, unknown account...)


TERMINAL_STATUSES = frozenset({OperationStatus.SUCCEEDED, OperationStatus.DECLINED, OperationStatus.REJECTED})


class StatusChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: OperationStatus
    at: int
    seq: int
    code: ErrorCode | None = None


class Operation(BaseModel):
    """A money-moving operation on one account (payment or adjustment), keyed by its deterministic id."""

    model_config = ConfigDict(frozen=True)

    op_id: str
    kind: OperationKind
    account_id: str
    principal: str
    amount: int
    currency: str
    payee: str | None = None
    description: str | None = None
    reason: str | None = None
    fingerprint: str | None = None
    status: OperationStatus
    failure_code: ErrorCode | None = None
    created_at: int
    updated_at: int
    history: tuple[StatusChange, ...] = ()
    # Later commands that reused this operation's id with a different payload; recorded, never applied.
    mismatched_commands: int = 0


class ResultType(StrEnum):
    ACCOUNT_OPENED = "account_opened"
    COMMAND_REJECTED = "command_rejected"
    ADJUSTMENT_APPLIED = "adjustment_applied"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_REJECTED = "payment_rejected"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"


class ResultEvent(BaseModel):
    """One state change, published exactly once (read_committed) in per-account order.

    ``seq`` is the account's version after this change: dense, starting at 1, so a downstream consumer
    dedupes by remembering the highest ``seq`` it applied per account. ``event_id`` is ``account:seq``.
    """

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    event_id: str
    type: ResultType
    account_id: str
    seq: int
    occurred_at: int
    command_id: str
    account: AccountSnapshot
    operation: Operation | None = None
    code: ErrorCode | None = None
    detail: str | None = None
    ledger_tx_id: str | None = None
