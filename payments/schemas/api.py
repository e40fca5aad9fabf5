"""HTTP request and response bodies of the gateway (``/v1``).

Requests forbid unknown fields and use the strict money types, so ``12.5``, ``"125"``, ``0`` or ``"eur"``
fail validation before anything is published. Responses are plain data; the gateway serialises them with
orjson so that a stored idempotent response can be replayed byte for byte.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from payments.schemas.commands import Identifier
from payments.schemas.errors import ErrorCode
from payments.schemas.money import Currency, NonNegativeAmount, PositiveAmount, SignedAmount
from payments.schemas.psp import PaymentMethodToken


def _non_zero(amount: int) -> int:
    if amount == 0:
        raise ValueError("an adjustment must not be zero")
    return amount


def _member_set(members: list[str]) -> list[str]:
    # Membership is a set: sorting and de-duplicating here makes ["bob", "alice"] and ["alice", "bob", "bob"]
    # the same validated request, hence the same idempotency fingerprint.
    return sorted(set(members))


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpenAccountRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"currency": "EUR", "members": ["alice", "bob"], "overdraft_limit": 0}]
        }
    )

    currency: Currency
    members: Annotated[list[Identifier], Field(min_length=1, max_length=1000), AfterValidator(_member_set)]
    overdraft_limit: NonNegativeAmount = 0


class AdjustmentRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount": 100_000, "currency": "EUR", "reason": "initial funding"}]}
    )

    amount: Annotated[SignedAmount, AfterValidator(_non_zero)] = Field(
        description="signed integer minor units: positive credits the account, negative debits it"
    )
    currency: Currency
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class PaymentRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"amount": 1250, "currency": "EUR", "payee": "acme_books", "description": "order 42"}
            ]
        }
    )

    amount: PositiveAmount = Field(description="integer minor units, > 0")
    currency: Currency
    payee: Identifier
    description: Annotated[str, Field(max_length=500)] | None = None


class TopUpRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount": 5000, "currency": "EUR", "payment_method": "tok_ok"}]}
    )

    amount: PositiveAmount = Field(description="integer minor units, > 0")
    currency: Currency
    payment_method: PaymentMethodToken = Field(
        description="a PSP card token (`tok_...`); card numbers are never accepted"
    )


class MemberRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": "carol"}]})

    user_id: Identifier


class AccountOut(BaseModel):
    """An account as the read model last saw it; ``version`` grows with every change (never regresses)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
                    "currency": "EUR",
                    "members": ["alice", "bob"],
                    "overdraft_limit": 0,
                    "posted": 100_000,
                    "held": 0,
                    "available": 100_000,
                    "version": 2,
                }
            ]
        }
    )

    id: str
    currency: str
    members: list[str]
    overdraft_limit: int
    posted: int
    held: int
    available: int
    version: int


class AccountPending(BaseModel):
    """The open command is durably accepted but the processor's result has not reached the read model yet."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9", "status": "pending"}]}
    )

    id: str
    status: Literal["pending"] = "pending"


class StatusChangeOut(BaseModel):
    status: str
    at: int = Field(description="ms since the Unix epoch")
    seq: int = Field(description="the account version this change produced")
    code: ErrorCode | None = None


class HoldOut(BaseModel):
    """Funds set aside for a payment until the PSP answers; ends exactly once."""

    amount: int
    status: Literal["open", "captured", "released", "expired"]


_PAYMENT_EXAMPLE: dict[str, Any] = {
    "id": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f",
    "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
    "amount": 1250,
    "currency": "EUR",
    "payee": "acme_books",
    "description": "order 42",
    "status": "succeeded",
    "failure_code": None,
    "psp_failure_code": None,
    "psp_movement_id": "tr_5b0c9e1d2f3a4b5c",
    "hold": {"amount": 1250, "status": "captured"},
    "created_at": 1_767_225_600_000,
    "updated_at": 1_767_225_601_500,
    "history": [
        {"status": "reserved", "at": 1_767_225_600_000, "seq": 3, "code": None},
        {"status": "succeeded", "at": 1_767_225_601_500, "seq": 4, "code": None},
    ],
    "mismatched_requests": 0,
    "discrepancies": 0,
}


class PaymentOut(BaseModel):
    """A payment. ``status``: ``pending`` until the processor's decision reaches the read model, then
    ``reserved`` (funds held, PSP transfer requested) → ``processing``/``unknown`` → ``succeeded`` or
    ``failed``; or at once ``declined`` (funds) or ``rejected``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _PAYMENT_EXAMPLE,
                {
                    **_PAYMENT_EXAMPLE,
                    "status": "pending",
                    "psp_movement_id": None,
                    "hold": None,
                    "created_at": None,
                    "updated_at": None,
                    "history": [],
                },
                {
                    **_PAYMENT_EXAMPLE,
                    "status": "failed",
                    "failure_code": "psp_declined",
                    "psp_failure_code": "payee_account_closed",
                    "hold": {"amount": 1250, "status": "released"},
                    "history": [
                        {"status": "reserved", "at": 1_767_225_600_000, "seq": 3, "code": None},
                        {"status": "failed", "at": 1_767_225_601_500, "seq": 4, "code": "psp_declined"},
                    ],
                },
            ]
        }
    )

    id: str
    account_id: str
    amount: int
    currency: str
    payee: str | None
    description: str | None = None
    status: str
    failure_code: ErrorCode | None = None
    psp_failure_code: str | None = Field(default=None, description="the PSP's own reason for a failure")
    psp_movement_id: str | None = Field(default=None, description="the PSP's id of the money movement")
    hold: HoldOut | None = None
    created_at: int | None = None
    updated_at: int | None = None
    history: list[StatusChangeOut] = []
    # Requests that reached the processor under this payment's id with a different payload (e.g. after
    # the gateway's idempotency record was lost): refused there and counted here, never applied.
    mismatched_requests: int = 0
    # PSP outcomes that contradicted a terminal state (e.g. a late success after expiry): resolved by ops.
    discrepancies: int = 0


_TOP_UP_EXAMPLE: dict[str, Any] = {
    "id": "top_7c1d2e3f4a5b6c7d8e9f0a1b2c",
    "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
    "amount": 5000,
    "currency": "EUR",
    "payment_method": "tok_ok",
    "status": "succeeded",
    "failure_code": None,
    "psp_failure_code": None,
    "psp_movement_id": "ch_1a2b3c4d5e6f7a8b",
    "created_at": 1_767_225_600_000,
    "updated_at": 1_767_225_601_200,
    "history": [
        {"status": "processing", "at": 1_767_225_600_000, "seq": 5, "code": None},
        {"status": "succeeded", "at": 1_767_225_601_200, "seq": 6, "code": None},
    ],
    "mismatched_requests": 0,
    "discrepancies": 0,
}


class TopUpOut(BaseModel):
    """A top-up (card charge crediting the account). ``status``: ``pending`` until the processor's decision
    reaches the read model, then ``processing`` → ``succeeded`` | ``failed`` (``unknown`` while the PSP's
    answer is ambiguous); or at once ``rejected``. No hold: nothing is credited before the PSP confirms."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _TOP_UP_EXAMPLE,
                {
                    **_TOP_UP_EXAMPLE,
                    "status": "failed",
                    "failure_code": "psp_declined",
                    "psp_failure_code": "card_declined",
                    "psp_movement_id": None,
                    "history": [
                        {"status": "processing", "at": 1_767_225_600_000, "seq": 5, "code": None},
                        {"status": "failed", "at": 1_767_225_601_200, "seq": 6, "code": "psp_declined"},
                    ],
                },
            ]
        }
    )

    id: str
    account_id: str
    amount: int
    currency: str
    payment_method: str | None
    status: str
    failure_code: ErrorCode | None = None
    psp_failure_code: str | None = Field(default=None, description="the PSP's own reason for a failure")
    psp_movement_id: str | None = Field(default=None, description="the PSP's id of the charge")
    created_at: int | None = None
    updated_at: int | None = None
    history: list[StatusChangeOut] = []
    mismatched_requests: int = 0
    discrepancies: int = 0


class AdjustmentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "adj_9a8b7c6d5e4f3a2b1c0d9e8f7a",
                    "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
                    "amount": 100_000,
                    "currency": "EUR",
                    "reason": "initial funding",
                    "status": "succeeded",
                    "failure_code": None,
                    "created_at": 1_767_225_600_000,
                    "updated_at": 1_767_225_600_000,
                    "history": [{"status": "succeeded", "at": 1_767_225_600_000, "seq": 2, "code": None}],
                }
            ]
        }
    )

    id: str
    account_id: str
    amount: int
    currency: str
    reason: str | None
    status: str
    failure_code: ErrorCode | None = None
    created_at: int | None = None
    updated_at: int | None = None
    history: list[StatusChangeOut] = []


class MemberChangeOut(BaseModel):
    """A membership change: ``pending`` until the read model shows it (``version`` is then the account
    version that shows it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
                    "user_id": "carol",
                    "action": "add",
                    "pending": True,
                    "version": None,
                },
                {
                    "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
                    "user_id": "carol",
                    "action": "remove",
                    "pending": False,
                    "version": 7,
                },
            ]
        }
    )

    account_id: str
    user_id: str
    action: Literal["add", "remove"]
    pending: bool
    version: int | None = None


class PostingOut(BaseModel):
    debit: str
    credit: str
    amount: int


_LEDGER_EXAMPLE: dict[str, Any] = {
    "tx_id": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f:payment",
    "seq": 4,
    "kind": "payment",
    "op_id": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f",
    "currency": "EUR",
    "occurred_at": 1_767_225_601_500,
    "postings": [
        {
            "debit": "customer:acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
            "credit": "clearing:psp-payouts",
            "amount": 1250,
        }
    ],
    "net": -1250,
}


class LedgerEntryOut(BaseModel):
    """One balanced double-entry transaction touching the account; ``net`` is its effect on this
    account's posted balance (credits minus debits of ledger account ``customer:<account id>``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LEDGER_EXAMPLE]})

    tx_id: str
    seq: int = Field(description="the account version of the result published with this transaction")
    kind: str
    op_id: str
    currency: str
    occurred_at: int = Field(description="ms since the Unix epoch")
    postings: list[PostingOut]
    net: int


_NEXT_CURSOR_DOC = "opaque; pass as `cursor` for the next page; null on the last page"


class PaymentPage(BaseModel):
    """Payments of an account, ascending by the account version that created them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_PAYMENT_EXAMPLE], "next_cursor": "MzoxMjM0"}]}
    )

    items: list[PaymentOut]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DOC)


class TopUpPage(BaseModel):
    """Top-ups of an account, ascending by the account version that created them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_TOP_UP_EXAMPLE], "next_cursor": None}]}
    )

    items: list[TopUpOut]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DOC)


class LedgerPage(BaseModel):
    """Ledger transactions of an account, ascending by ``seq``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_LEDGER_EXAMPLE], "next_cursor": None}]}
    )

    items: list[LedgerEntryOut]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DOC)


class WebhookAck(BaseModel):
    """The gateway's answer to a PSP webhook: ``published`` into the command log, ``duplicate`` (this
    ``webhook-id`` was published before) or ``ignored`` (not an event about one of our operations)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"webhook_id": "msg_2b4c6d8e0f", "status": "published", "command_id": "whk.msg_2b4c6d8e0f"},
                {"webhook_id": "msg_2b4c6d8e0f", "status": "duplicate", "command_id": None},
                {"webhook_id": "msg_9f8e7d6c5b", "status": "ignored", "command_id": None},
            ]
        }
    )

    webhook_id: str
    status: Literal["published", "duplicate", "ignored"]
    command_id: str | None = None


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``) with a stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: ErrorCode
    instance: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="field errors of a validation_error")
    payment_id: str | None = Field(default=None, description="the payment a decline or rejection is about")
    top_up_id: str | None = Field(default=None, description="the top-up a failure or rejection is about")
    psp_failure_code: str | None = Field(default=None, description="the PSP's reason, for psp_declined")


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "checks": {"redis": True, "kafka": True}}]}
    )

    status: str
    checks: dict[str, bool] = {}
