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


_PAYMENT_EXAMPLE: dict[str, Any] = {
    "id": "pay_0d6f3b8a1c2e4f5a6b7c8d9e0f",
    "account_id": "acct_4f1c2a9e0b7d3c5a81e6f2d4b9",
    "amount": 1250,
    "currency": "EUR",
    "payee": "acme_books",
    "description": "order 42",
    "status": "succeeded",
    "failure_code": None,
    "created_at": 1_767_225_600_000,
    "updated_at": 1_767_225_600_000,
    "history": [{"status": "succeeded", "at": 1_767_225_600_000, "seq": 3, "code": None}],
}


class PaymentOut(BaseModel):
    """A payment. ``status`` is ``pending`` until the processor's decision reaches the read model."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _PAYMENT_EXAMPLE,
                {
                    **_PAYMENT_EXAMPLE,
                    "status": "pending",
                    "created_at": None,
                    "updated_at": None,
                    "history": [],
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
    created_at: int | None = None
    updated_at: int | None = None
    history: list[StatusChangeOut] = []
    # Requests that reached the processor under this payment's id with a different payload (e.g. after
    # the gateway's idempotency record was lost): refused there and counted here, never applied.
    mismatched_requests: int = 0


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


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "checks": {"redis": True, "kafka": True}}]}
    )

    status: str
    checks: dict[str, bool] = {}
