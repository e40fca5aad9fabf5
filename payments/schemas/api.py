"""HTTP request and response bodies of the gateway (``/v1``).

Requests forbid unknown fields and use the strict money types, so ``12.5``, ``"125"``, ``0`` or ``"eur"``
fail validation before anything is published. Responses are plain data; the gateway serialises them with
orjson so that a stored idempotent response can be replayed byte for byte.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from payments.schemas.commands import Identifier
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import PAYOUT_CLEARING, LedgerTxKind, customer_ledger_account
from payments.schemas.money import Currency, NonNegativeAmount, PositiveAmount, SignedAmount
from payments.schemas.pan import find_card_number
from payments.schemas.psp import PaymentMethodToken

# The pydantic error type of a card number in a request body; the HTTP edge answers it as
# ``card_number_not_allowed``.
CARD_NUMBER_ERROR = "card_number_not_allowed"


def _non_zero(amount: int) -> int:
    if amount == 0:
        raise ValueError("an adjustment must not be zero")
    return amount


def _member_set(members: list[str]) -> list[str]:
    # Membership is a set: sorting and de-duplicating here makes ["bob", "alice"] and ["alice", "bob", "bob"]
    # the same validated request, hence the same idempotency fingerprint.
    return sorted(set(members))


_ACCOUNT_ID = "acct_4f1c2a9e0b7d3c5a81e6f2d4b9"
_PAYMENT_ID = "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f"
_TOP_UP_ID = "top_7c1d2e3f4a5b6c7d8e9f0a1b2c"


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_card_numbers(cls, data: Any) -> Any:
        # Every string of the body (values, keys, list items, unknown fields too) before any field is
        # validated, so a card number is refused as such and no other error can echo it.
        loc = find_card_number(data)
        if loc is not None:
            raise PydanticCustomError(
                CARD_NUMBER_ERROR,
                "a card number is not accepted here (in {field}); send a payment-method token",
                {"field": ".".join(str(p) for p in loc) or "the body"},
            )
        return data


class OpenAccountRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"currency": "EUR", "members": ["alice", "bob"], "overdraft_limit": 0}]
        }
    )

    currency: Currency = Field(description="ISO 4217 code of the account's balance", examples=["EUR"])
    members: Annotated[
        list[Identifier], Field(min_length=1, max_length=1000), AfterValidator(_member_set)
    ] = Field(
        description="user ids that may pay from and read the account (a set)", examples=[["alice", "bob"]]
    )
    overdraft_limit: NonNegativeAmount = Field(
        default=0, description="how far below zero `available` may go, integer minor units", examples=[0]
    )


class AdjustmentRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount": 100_000, "currency": "EUR", "reason": "initial funding"}]}
    )

    amount: Annotated[SignedAmount, AfterValidator(_non_zero)] = Field(
        description="signed integer minor units: positive credits the account, negative debits it",
        examples=[100_000],
    )
    currency: Currency = Field(description="must be the account's currency", examples=["EUR"])
    reason: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="why, for the ledger and the audit trail", examples=["initial funding"]
    )


class PaymentRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"amount": 1250, "currency": "EUR", "payee": "acme_books", "description": "order 42"}
            ]
        }
    )

    amount: PositiveAmount = Field(description="integer minor units, > 0", examples=[1250])
    currency: Currency = Field(description="must be the account's currency", examples=["EUR"])
    payee: Identifier = Field(description="the PSP's id of who is paid", examples=["acme_books"])
    description: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="free text kept with the payment", examples=["order 42"]
    )


class TopUpRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount": 5000, "currency": "EUR", "payment_method": "tok_ok"}]}
    )

    amount: PositiveAmount = Field(description="integer minor units, > 0", examples=[5000])
    currency: Currency = Field(description="must be the account's currency", examples=["EUR"])
    payment_method: PaymentMethodToken = Field(
        description="a PSP card token (`tok_...`); card numbers are never accepted", examples=["tok_ok"]
    )


class MemberRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": "carol"}]})

    user_id: Identifier = Field(description="the user to add", examples=["carol"])


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

    id: str = Field(description="the account id", examples=[_ACCOUNT_ID])
    currency: str = Field(description="ISO 4217 code", examples=["EUR"])
    members: list[str] = Field(
        description="user ids that may pay from it, sorted", examples=[["alice", "bob"]]
    )
    overdraft_limit: int = Field(
        description="how far below zero `available` may go, minor units", examples=[0]
    )
    posted: int = Field(
        description="the ledger balance: settled credits minus debits, minor units", examples=[100_000]
    )
    held: int = Field(
        description="set aside for payments the PSP has not answered yet, minor units", examples=[0]
    )
    available: int = Field(
        description="`posted - held`: what new payments may spend (plus the overdraft)", examples=[100_000]
    )
    version: int = Field(description="grows with every change of the account; never goes back", examples=[2])


class AccountPending(BaseModel):
    """The open command is durably accepted but the processor's result has not reached the read model yet."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9", "status": "pending"}]}
    )

    id: str = Field(
        description="the account id (derived from the Idempotency-Key when one was sent)",
        examples=[_ACCOUNT_ID],
    )
    status: Literal["pending"] = Field(
        default="pending", description="always `pending`", examples=["pending"]
    )


class OperationState(StrEnum):
    """Where a payment, top-up or adjustment stands: ``pending`` (the gateway accepted it; the processor's
    decision has not reached the read model yet), ``reserved`` (payment: funds held, PSP transfer
    requested), ``processing`` (the PSP has it), ``unknown`` (the PSP's answer is ambiguous; resolved by the
    reconciler), then one of the final ``succeeded``, ``failed`` (PSP refusal or expiry), ``declined``
    (insufficient funds) or ``rejected`` (invalid for the account)."""

    PENDING = "pending"
    RESERVED = "reserved"
    PROCESSING = "processing"
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DECLINED = "declined"
    REJECTED = "rejected"


class StatusChangeOut(BaseModel):
    """One step of an operation's history."""

    status: OperationState = Field(description="the status entered", examples=["succeeded"])
    at: int = Field(description="ms since the Unix epoch", examples=[1_767_225_601_500])
    seq: int = Field(description="the account version this change produced", examples=[4])
    code: ErrorCode | None = Field(
        default=None, description="why, for a failure, decline or rejection", examples=[None]
    )


class HoldOut(BaseModel):
    """Funds set aside for a payment until the PSP answers; ends exactly once."""

    amount: int = Field(description="minor units held", examples=[1250])
    status: Literal["open", "captured", "released", "expired"] = Field(
        description="`open` until the PSP answers; then `captured` (paid), `released` (refused) or `expired`",
        examples=["captured"],
    )


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

    id: str = Field(
        description="the payment id, derived from (caller, account, Idempotency-Key)", examples=[_PAYMENT_ID]
    )
    account_id: str = Field(description="the account paid from", examples=[_ACCOUNT_ID])
    amount: int = Field(description="integer minor units", examples=[1250])
    currency: str = Field(description="ISO 4217 code", examples=["EUR"])
    payee: str | None = Field(description="who is paid", examples=["acme_books"])
    description: str | None = Field(default=None, description="the caller's free text", examples=["order 42"])
    status: OperationState = Field(description="see `OperationState`", examples=["succeeded"])
    failure_code: ErrorCode | None = Field(
        default=None, description="why it failed, was declined or rejected", examples=[None]
    )
    psp_failure_code: str | None = Field(
        default=None, description="the PSP's own reason for a failure", examples=[None]
    )
    psp_movement_id: str | None = Field(
        default=None, description="the PSP's id of the money movement", examples=["tr_5b0c9e1d2f3a4b5c"]
    )
    hold: HoldOut | None = Field(default=None, description="the funds held for it; null before the decision")
    created_at: int | None = Field(
        default=None, description="ms since the Unix epoch; null while pending", examples=[1_767_225_600_000]
    )
    updated_at: int | None = Field(
        default=None, description="ms since the Unix epoch; null while pending", examples=[1_767_225_601_500]
    )
    history: list[StatusChangeOut] = Field(
        default=[], description="every status it went through, oldest first"
    )
    # Requests that reached the processor under this payment's id with a different payload (e.g. after
    # the gateway's idempotency record was lost): refused there and counted here, never applied.
    mismatched_requests: int = Field(
        default=0, description="requests under this id with another payload, refused", examples=[0]
    )
    # PSP outcomes that contradicted a terminal state (e.g. a late success after expiry): resolved by ops.
    discrepancies: int = Field(
        default=0, description="PSP outcomes that contradicted a final state", examples=[0]
    )


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

    id: str = Field(
        description="the top-up id, derived from (caller, account, Idempotency-Key)", examples=[_TOP_UP_ID]
    )
    account_id: str = Field(description="the account credited", examples=[_ACCOUNT_ID])
    amount: int = Field(description="integer minor units", examples=[5000])
    currency: str = Field(description="ISO 4217 code", examples=["EUR"])
    payment_method: str | None = Field(description="the PSP card token charged", examples=["tok_ok"])
    status: OperationState = Field(description="see `OperationState`", examples=["succeeded"])
    failure_code: ErrorCode | None = Field(
        default=None, description="why it failed or was rejected", examples=[None]
    )
    psp_failure_code: str | None = Field(
        default=None, description="the PSP's own reason for a failure", examples=["card_declined"]
    )
    psp_movement_id: str | None = Field(
        default=None, description="the PSP's id of the charge", examples=["ch_1a2b3c4d5e6f7a8b"]
    )
    created_at: int | None = Field(
        default=None, description="ms since the Unix epoch; null while pending", examples=[1_767_225_600_000]
    )
    updated_at: int | None = Field(
        default=None, description="ms since the Unix epoch; null while pending", examples=[1_767_225_601_200]
    )
    history: list[StatusChangeOut] = Field(
        default=[], description="every status it went through, oldest first"
    )
    mismatched_requests: int = Field(
        default=0, description="requests under this id with another payload, refused", examples=[0]
    )
    discrepancies: int = Field(
        default=0, description="PSP outcomes that contradicted a final state", examples=[0]
    )


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

    id: str = Field(
        description="the adjustment id, derived from (caller, account, Idempotency-Key)",
        examples=["adj_9a8b7c6d5e4f3a2b1c0d9e8f7a"],
    )
    account_id: str = Field(description="the account adjusted", examples=[_ACCOUNT_ID])
    amount: int = Field(description="signed integer minor units", examples=[100_000])
    currency: str = Field(description="ISO 4217 code", examples=["EUR"])
    reason: str | None = Field(description="why", examples=["initial funding"])
    status: OperationState = Field(description="see `OperationState`", examples=["succeeded"])
    failure_code: ErrorCode | None = Field(
        default=None, description="why it was declined or rejected", examples=[None]
    )
    created_at: int | None = Field(
        default=None, description="ms since the Unix epoch; null while pending", examples=[1_767_225_600_000]
    )
    updated_at: int | None = Field(
        default=None, description="ms since the Unix epoch; null while pending", examples=[1_767_225_600_000]
    )
    history: list[StatusChangeOut] = Field(
        default=[], description="every status it went through, oldest first"
    )


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

    account_id: str = Field(description="the account", examples=[_ACCOUNT_ID])
    user_id: str = Field(description="the member added or removed", examples=["carol"])
    action: Literal["add", "remove"] = Field(description="what was asked", examples=["add"])
    pending: bool = Field(description="true until the read model shows the change", examples=[True])
    version: int | None = Field(
        default=None, description="the account version that shows it; null while pending", examples=[7]
    )


class PostingOut(BaseModel):
    """One leg of a double-entry transaction: ``amount`` moves from ``debit`` to ``credit``."""

    debit: str = Field(
        description="the ledger account debited", examples=[customer_ledger_account(_ACCOUNT_ID)]
    )
    credit: str = Field(description="the ledger account credited", examples=[PAYOUT_CLEARING])
    amount: int = Field(description="minor units, > 0", examples=[1250])


_LEDGER_EXAMPLE: dict[str, Any] = {
    "tx_id": f"pay_0d6f3b8a1c2e4f5a6b7c8d9e0f:{LedgerTxKind.PAYMENT.value}",
    "seq": 4,
    "kind": LedgerTxKind.PAYMENT.value,
    "op_id": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f",
    "currency": "EUR",
    "occurred_at": 1_767_225_601_500,
    "postings": [
        {
            "debit": customer_ledger_account("acct_4f1c2a9e0b7d3c5a81e6f2d4b9"),
            "credit": PAYOUT_CLEARING,
            "amount": 1250,
        }
    ],
    "net": -1250,
}


class LedgerEntryOut(BaseModel):
    """One balanced double-entry transaction touching the account; ``net`` is its effect on this
    account's posted balance (credits minus debits of ledger account ``customer:<account id>``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LEDGER_EXAMPLE]})

    tx_id: str = Field(description="unique id of the transaction", examples=[_PAYMENT_ID + ":payment"])
    seq: int = Field(
        description="the account version of the result published with this transaction", examples=[4]
    )
    kind: str = Field(
        description="what moved the money (`payment`, `top_up`, `adjustment`, ...)", examples=["payment"]
    )
    op_id: str = Field(description="the payment, top-up or adjustment it belongs to", examples=[_PAYMENT_ID])
    currency: str = Field(description="ISO 4217 code", examples=["EUR"])
    occurred_at: int = Field(description="ms since the Unix epoch", examples=[1_767_225_601_500])
    postings: list[PostingOut] = Field(description="its legs; debits equal credits")
    net: int = Field(description="effect on this account's posted balance, minor units", examples=[-1250])


_NEXT_CURSOR_DOC = "opaque; pass as `cursor` for the next page; null on the last page"


class PaymentPage(BaseModel):
    """Payments of an account, ascending by the account version that created them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_PAYMENT_EXAMPLE], "next_cursor": "MzoxMjM0"}]}
    )

    items: list[PaymentOut] = Field(description="at most `limit` payments")
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DOC, examples=["MzoxMjM0"])


class TopUpPage(BaseModel):
    """Top-ups of an account, ascending by the account version that created them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_TOP_UP_EXAMPLE], "next_cursor": None}]}
    )

    items: list[TopUpOut] = Field(description="at most `limit` top-ups")
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DOC, examples=["MzoxMjM0"])


class LedgerPage(BaseModel):
    """Ledger transactions of an account, ascending by ``seq``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_LEDGER_EXAMPLE], "next_cursor": None}]}
    )

    items: list[LedgerEntryOut] = Field(description="at most `limit` transactions")
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DOC, examples=["MzoxMjM0"])


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

    webhook_id: str = Field(
        description="the `webhook-id` header of the delivery", examples=["msg_2b4c6d8e0f"]
    )
    status: Literal["published", "duplicate", "ignored"] = Field(
        description="what happened to it", examples=["published"]
    )
    command_id: str | None = Field(
        default=None,
        description="the command published; null unless `published`",
        examples=["whk.msg_2b4c6d8e0f"],
    )


class FieldError(BaseModel):
    """One invalid field (its value is never echoed)."""

    loc: list[str | int] = Field(
        description="where: `body`, `query`, `path` or `header`, then the field",
        examples=[["body", "amount"]],
    )
    msg: str = Field(description="what is wrong", examples=["Input should be greater than 0"])
    type: str = Field(description="pydantic's error type", examples=["greater_than"])


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``) with a stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="`urn:payments:problem:<code>`", examples=["urn:payments:problem:insufficient_funds"]
    )
    title: str = Field(description="short summary of the code", examples=["Insufficient funds"])
    status: int = Field(description="the HTTP status", examples=[402])
    detail: str = Field(
        description="what happened to this request", examples=["the payment was declined: insufficient_funds"]
    )
    code: ErrorCode = Field(
        description="stable machine-readable code; branch on this", examples=["insufficient_funds"]
    )
    instance: str | None = Field(
        default=None, description="the request path", examples=["/v1/accounts/" + _ACCOUNT_ID + "/payments"]
    )
    errors: list[FieldError] | None = Field(default=None, description="field errors of a validation_error")
    payment_id: str | None = Field(
        default=None, description="the payment a decline or rejection is about", examples=[_PAYMENT_ID]
    )
    top_up_id: str | None = Field(
        default=None, description="the top-up a failure or rejection is about", examples=[_TOP_UP_ID]
    )
    psp_failure_code: str | None = Field(
        default=None, description="the PSP's reason, for psp_declined", examples=["card_declined"]
    )


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "checks": {"redis": True, "kafka": True}}]}
    )

    status: Literal["ok", "ready", "not_ready"] = Field(
        description="`ok` (liveness), `ready` or `not_ready` (readiness)", examples=["ready"]
    )
    checks: dict[str, bool] = Field(
        default={},
        description="readiness: each dependency and whether it answered",
        examples=[{"redis": True}],
    )
