"""Messages between the processor and the psp-caller.

``payments.psp-requests`` (key = account id) carries one :class:`PspRequest` per money movement the processor
decided to make. Its ``op_id`` is the PSP idempotency key on every attempt, so however often the at-least-once
psp-caller re-sends it, the PSP moves money at most once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from payments.schemas.money import Currency, PositiveAmount

PaymentMethodToken = Annotated[
    str, Field(pattern=r"^tok_[A-Za-z0-9_]{1,64}$", description="a PSP card token; never a card number")
]


class PspRequestKind(StrEnum):
    TRANSFER = "transfer"  # payment: pay a payee out of the shared balance
    CHARGE = "charge"  # top-up: charge a member's card token


class PspRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    op_id: str = Field(description="the payment or top-up id; the PSP idempotency key")
    account_id: str
    kind: PspRequestKind
    amount: PositiveAmount
    currency: Currency
    payee: str | None = None
    payment_method: PaymentMethodToken | None = None
    issued_at: int = Field(ge=0, description="when the processor decided it, ms since the epoch")
    deadline_at: int = Field(ge=0, description="past this the reconciler may expire the operation, ms")
    seq: int = Field(description="the account seq of the result published in the same transaction")


class PspOutcomeStatus(StrEnum):
    PROCESSING = "processing"  # the PSP has it but no final answer yet (slow path, or a `pending` webhook)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # time-out or ambiguous error: the PSP may or may not have moved the money


class PspOutcomeSource(StrEnum):
    PSP_CALLER = "psp_caller"
    WEBHOOK = "webhook"
    RECONCILER = "reconciler"
