"""The PSP's record of one money movement, as its own log (``GET /_sim/audit``) and its settlement report
(``GET /v1/settlement-report``) show it: the one model the audit and the reconciler parse those into.

The PSP's rows carry more than this (metadata, payee, payment method...): unknown fields are ignored, so the
PSP may add fields without breaking us; a missing or mistyped field we rely on is a malformed report.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

# Integer minor units; strict, so that 12.5, 12.0, "12" or true are a malformed row, never rounded.
MovementAmount = Annotated[int, Field(strict=True, gt=0)]


def _iso_only(value: object) -> object:
    # pydantic would read a number as Unix seconds: on the PSP's wire a time is an ISO-8601 string.
    if isinstance(value, int | float):
        raise ValueError("a time must be an ISO-8601 string, not a number")
    return value


# With its UTC offset: a naive time would be read in this machine's zone.
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


class PspMovementKind(StrEnum):
    CHARGE = "charge"  # money collected from a card (our top-ups)
    TRANSFER = "transfer"  # money paid out to a payee (our payments)
    REFUND = "refund"  # money given back on a charge (no flow of ours issues them yet)


class PspMovementStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PspMovement(BaseModel):
    """One PSP money movement. ``idempotency_key`` is our operation id for the movements we asked for."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    kind: PspMovementKind
    idempotency_key: str | None = None
    amount: MovementAmount
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    status: PspMovementStatus
    created_at: IsoTime
    failure_code: str | None = None

    @property
    def created_at_ms(self) -> int:
        """``created_at`` in ms since the Unix epoch."""
        return _ms(self.created_at)

    @property
    def succeeded(self) -> bool:
        return self.status is PspMovementStatus.SUCCEEDED

    @property
    def moves_our_money(self) -> bool:
        """A charge or transfer (what our operations ask for); refunds are not matched yet."""
        return self.kind is not PspMovementKind.REFUND


class PspMovementLog(BaseModel):
    """``GET /_sim/audit``: every movement the PSP made, in the order it made them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    movements: tuple[PspMovement, ...]


class PspSettlementReport(BaseModel):
    """``GET /v1/settlement-report``: the movements created in ``[since, until)``, and when it was made."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    since: IsoTime | None = None
    until: IsoTime | None = None
    generated_at: IsoTime
    count: int | None = Field(default=None, ge=0)
    movements: tuple[PspMovement, ...]

    @property
    def generated_at_ms(self) -> int:
        return _ms(self.generated_at)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
