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
    TOP_UP = "top_up"
    ADJUSTMENT = "adjustment"


class OperationStatus(StrEnum):
    # ``received`` is the gateway's 202 before the processor has decided; it never appears in state.
    RESERVED = "reserved"  # payment: funds held, PSP transfer requested
    PROCESSING = "processing"  # the PSP has it (top-up charge requested, or a payment being retried)
    UNKNOWN = "unknown"  # the PSP call timed out or was ambiguous: the hold stays until resolved
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the PSP refused it, or it expired with no PSP record: the hold was released
    DECLINED = "declined"  # a business decline (funds): final, never flips to success on retry
    REJECTED = "rejected"  # the command was invalid for the account (not a member, unknown account...)


TERMINAL_STATUSES = frozenset(
    {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.DECLINED, OperationStatus.REJECTED}
)


class HoldStatus(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"  # posted as a debit: the PSP paid the payee
    RELEASED = "released"  # the PSP refused the transfer
    EXPIRED = "expired"  # the deadline passed with no PSP record


class Hold(BaseModel):
    """Funds set aside for one payment (TigerBeetle's pending transfer): ends exactly once."""

    model_config = ConfigDict(frozen=True)

    amount: int
    status: HoldStatus = HoldStatus.OPEN


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
    payment_method: str | None = None  # top-ups: the PSP card token (a token, never card data)
    status: OperationStatus
    failure_code: ErrorCode | None = None
    psp_failure_code: str | None = None
    psp_movement_id: str | None = None
    hold: Hold | None = None  # payments that got past the funds check
    deadline_at: int | None = None  # PSP operations: the reconciler may expire it after this (ms)
    created_at: int
    updated_at: int
    history: tuple[StatusChange, ...] = ()
    # Later commands that reused this operation's id with a different payload; recorded, never applied.
    mismatched_commands: int = 0
    # PSP outcomes that contradicted a terminal state (e.g. a success after we expired it); recorded.
    discrepancies: int = 0
    # A PSP success arrived after the operation had ended otherwise; it was posted to suspense, once.
    late_success: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ResultType(StrEnum):
    ACCOUNT_OPENED = "account_opened"
    COMMAND_REJECTED = "command_rejected"
    ADJUSTMENT_APPLIED = "adjustment_applied"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    PAYMENT_RESERVED = "payment_reserved"
    PAYMENT_PROCESSING = "payment_processing"
    PAYMENT_UNKNOWN = "payment_unknown"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_REJECTED = "payment_rejected"
    TOP_UP_PROCESSING = "top_up_processing"
    TOP_UP_UNKNOWN = "top_up_unknown"
    TOP_UP_SUCCEEDED = "top_up_succeeded"
    TOP_UP_FAILED = "top_up_failed"
    TOP_UP_REJECTED = "top_up_rejected"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
    PSP_DISCREPANCY = "psp_discrepancy"


_OPERATION_RESULT: dict[tuple[OperationKind, OperationStatus], ResultType] = {
    (OperationKind.PAYMENT, OperationStatus.RESERVED): ResultType.PAYMENT_RESERVED,
    (OperationKind.PAYMENT, OperationStatus.PROCESSING): ResultType.PAYMENT_PROCESSING,
    (OperationKind.PAYMENT, OperationStatus.UNKNOWN): ResultType.PAYMENT_UNKNOWN,
    (OperationKind.PAYMENT, OperationStatus.SUCCEEDED): ResultType.PAYMENT_SUCCEEDED,
    (OperationKind.PAYMENT, OperationStatus.FAILED): ResultType.PAYMENT_FAILED,
    (OperationKind.PAYMENT, OperationStatus.DECLINED): ResultType.PAYMENT_DECLINED,
    (OperationKind.PAYMENT, OperationStatus.REJECTED): ResultType.PAYMENT_REJECTED,
    (OperationKind.TOP_UP, OperationStatus.PROCESSING): ResultType.TOP_UP_PROCESSING,
    (OperationKind.TOP_UP, OperationStatus.UNKNOWN): ResultType.TOP_UP_UNKNOWN,
    (OperationKind.TOP_UP, OperationStatus.SUCCEEDED): ResultType.TOP_UP_SUCCEEDED,
    (OperationKind.TOP_UP, OperationStatus.FAILED): ResultType.TOP_UP_FAILED,
    (OperationKind.TOP_UP, OperationStatus.REJECTED): ResultType.TOP_UP_REJECTED,
    (OperationKind.ADJUSTMENT, OperationStatus.SUCCEEDED): ResultType.ADJUSTMENT_APPLIED,
    (OperationKind.ADJUSTMENT, OperationStatus.DECLINED): ResultType.COMMAND_REJECTED,
    (OperationKind.ADJUSTMENT, OperationStatus.REJECTED): ResultType.COMMAND_REJECTED,
}


def result_type_for(op: Operation) -> ResultType:
    """The result type announcing that ``op`` entered its current status."""
    return _OPERATION_RESULT[(op.kind, op.status)]


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
