"""Request and response bodies of the simulator's HTTP API.

Amounts are integer minor units (strict: ``12.5``, ``12.0`` and ``"12"`` are rejected, never rounded);
currencies are ISO 4217 alphabetic codes. Requests forbid unknown fields so that a typo in a caller's body
fails loudly instead of being ignored by the fingerprint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Amount = Annotated[int, Field(strict=True, gt=0, le=10**15)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = str | int | bool
# Same limits as common PSPs: metadata is for correlation ids (account_id, payment_id), not payloads.
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=50)]
PaymentMethod = Annotated[str, StringConstraints(pattern=r"^tok_[A-Za-z0-9_]{1,64}$")]

MovementKind = Literal["charge", "transfer", "refund"]
MovementStatus = Literal["succeeded", "failed"]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChargeRequest(_Request):
    amount: Amount
    currency: Currency
    payment_method: PaymentMethod
    reference: Reference | None = None
    metadata: Metadata = Field(default_factory=dict)


class TransferRequest(_Request):
    amount: Amount
    currency: Currency
    payee: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    reference: Reference | None = None
    metadata: Metadata = Field(default_factory=dict)


class RefundRequest(_Request):
    charge_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    amount: Amount
    reference: Reference | None = None
    metadata: Metadata = Field(default_factory=dict)


MoneyRequest = ChargeRequest | TransferRequest | RefundRequest


class Movement(BaseModel):
    """One money movement as the PSP records it; the body of every money response, lookup and audit row."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: MovementKind
    status: MovementStatus
    failure_code: str | None = None
    amount: int
    currency: str
    idempotency_key: str
    created_at: datetime
    reference: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    payment_method: str | None = None
    payee: str | None = None
    charge_id: str | None = None


class InjectRequest(_Request):
    """An orphan movement: money the PSP moved without a matching request from us (discrepancy tests).

    With ``idempotency_key`` the movement is stored under that key as if the equivalent request had been
    made, so lookups find it and a later identical request replays it.
    """

    kind: MovementKind = "charge"
    amount: Amount
    currency: Currency
    status: MovementStatus = "succeeded"
    failure_code: str | None = None
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    payment_method: PaymentMethod | None = None
    payee: str | None = None
    charge_id: str | None = None
    reference: Reference | None = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: datetime | None = None
    send_webhook: bool = True

    @model_validator(mode="after")
    def _refund_names_charge(self) -> Self:
        if self.kind == "refund" and self.charge_id is None:
            raise ValueError("an injected refund needs charge_id")
        return self


class WebhookEvent(BaseModel):
    """Standard Webhooks payload: ``type``, ``timestamp`` and ``data``, plus the event ``id``."""

    id: str
    type: str
    timestamp: datetime
    data: Movement


class AuditReport(BaseModel):
    movements: list[Movement]


class SettlementReport(BaseModel):
    since: datetime | None
    until: datetime | None
    generated_at: datetime
    count: int
    movements: list[Movement]


class WebhookEndpointConfig(_Request):
    """``PUT /_sim/webhooks``: where events go. ``url`` null stops delivery."""

    url: str | None
    secret: str | None = None


class DeliveryRecord(BaseModel):
    webhook_id: str
    type: str
    attempt: int
    status_code: int | None
    error: str | None
    at: datetime


class WebhookStatus(BaseModel):
    url: str | None
    pending: int
    deliveries: list[DeliveryRecord]


class Problem(BaseModel):
    """RFC 9457 problem body with the stable ``code`` clients switch on."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
