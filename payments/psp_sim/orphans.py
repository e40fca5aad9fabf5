"""Building injected (orphan) movements, pure.

An orphan is stored under its key together with the fingerprint of the request that *would* have made it,
so lookups by key find it and a later identical request replays it instead of moving money again.
"""

from __future__ import annotations

from datetime import datetime

from payments.psp_sim.models import (
    ChargeRequest,
    InjectRequest,
    MoneyRequest,
    Movement,
    RefundRequest,
    TransferRequest,
)
from payments.psp_sim.outcomes import CARD_TOKENS


def equivalent_request(inject: InjectRequest) -> MoneyRequest:
    """The API request that would have produced this movement."""
    if inject.kind == "charge":
        default_token = "tok_ok" if inject.status == "succeeded" else "tok_declined"
        return ChargeRequest(
            amount=inject.amount,
            currency=inject.currency,
            payment_method=inject.payment_method or default_token,
            reference=inject.reference,
            metadata=inject.metadata,
        )
    if inject.kind == "transfer":
        return TransferRequest(
            amount=inject.amount,
            currency=inject.currency,
            payee=inject.payee or "payee_orphan",
            reference=inject.reference,
            metadata=inject.metadata,
        )
    assert inject.charge_id is not None  # InjectRequest's validator guarantees it
    return RefundRequest(
        charge_id=inject.charge_id, amount=inject.amount, reference=inject.reference, metadata=inject.metadata
    )


def _failure_code(inject: InjectRequest, equivalent: MoneyRequest) -> str | None:
    if inject.status == "succeeded":
        return None
    if inject.failure_code is not None:
        return inject.failure_code
    if isinstance(equivalent, ChargeRequest):
        known = CARD_TOKENS.get(equivalent.payment_method)
        if known is not None and known.failure_code is not None:
            return known.failure_code
        return "card_declined"
    return "processing_error"


def orphan_movement(
    inject: InjectRequest, equivalent: MoneyRequest, *, movement_id: str, key: str, created_at: datetime
) -> Movement:
    return Movement(
        id=movement_id,
        kind=inject.kind,
        status=inject.status,
        failure_code=_failure_code(inject, equivalent),
        amount=inject.amount,
        currency=inject.currency,
        idempotency_key=key,
        created_at=created_at,
        reference=inject.reference,
        metadata=dict(inject.metadata),
        payment_method=equivalent.payment_method if isinstance(equivalent, ChargeRequest) else None,
        payee=equivalent.payee if isinstance(equivalent, TransferRequest) else None,
        charge_id=equivalent.charge_id if isinstance(equivalent, RefundRequest) else None,
    )
