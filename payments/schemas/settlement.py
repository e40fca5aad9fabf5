"""Records on ``payments.discrepancies``: settlement mismatches and the settlement runs that found them.

The topic is compacted and keyed by a deterministic id, so a mismatch seen by many runs is one record:
a :class:`Discrepancy` is keyed by ``discrepancy_id`` (``<kind>:<subject>``), a :class:`SettlementRun` by
``run:<run_id>``. Clean runs are recorded too, so "no discrepancy" is evidence, not silence.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class DiscrepancyKind(StrEnum):
    # A PSP money movement that no operation of ours asked for (no intent under its idempotency key).
    ORPHAN_MOVEMENT = "orphan_movement"
    # The PSP moved money for an operation of ours that ended without posting it (no ledger posting).
    MISSING_ON_OUR_SIDE = "missing_on_our_side"
    # We posted a PSP success that the PSP's report does not show as succeeded.
    MISSING_AT_PSP = "missing_at_psp"
    # Both sides agree the money moved, but not on how much.
    AMOUNT_MISMATCH = "amount_mismatch"
    # More than one PSP movement under one idempotency key.
    DUPLICATE_MOVEMENT = "duplicate_movement"
    # The PSP succeeded after the operation had ended; the processor posted it to suspense for an operator.
    SUSPENSE_POSTING = "suspense_posting"
    # Our results and our ledger disagree (a succeeded operation without its posting, or the reverse).
    RESULT_LEDGER_MISMATCH = "result_ledger_mismatch"


class Discrepancy(BaseModel):
    """One mismatch between the PSP's settlement report, our ledger and our results."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    type: Literal["discrepancy"] = "discrepancy"
    discrepancy_id: str = Field(description="deterministic: '<kind>:<op id or PSP movement id>'")
    kind: DiscrepancyKind
    op_id: str | None = Field(default=None, description="our operation id (the PSP idempotency key)")
    account_id: str | None = None
    psp_movement_id: str | None = None
    psp_amount: int | None = Field(default=None, description="what the PSP moved, minor units")
    ledger_amount: int | None = Field(default=None, description="what our ledger posted, minor units")
    currency: str | None = None
    detail: str
    run_id: str = Field(description="the settlement run that found it first")
    detected_at: int = Field(description="ms since the Unix epoch")


class SettlementRun(BaseModel):
    """One settlement run, clean or not."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    type: Literal["settlement_run"] = "settlement_run"
    run_id: str
    started_at: int = Field(description="ms since the Unix epoch")
    finished_at: int = Field(description="ms since the Unix epoch")
    movements: int = Field(description="PSP movements in the report")
    matched: int = Field(description="PSP successes matched to exactly one posting of the same amount")
    pending: int = Field(description="PSP successes whose operation is not terminal yet (not judged)")
    new_discrepancies: int
    known_discrepancies: int = Field(description="mismatches still present that earlier runs reported")
    clean: bool


SettlementRecord = Annotated[Discrepancy | SettlementRun, Field(discriminator="type")]
SETTLEMENT_ADAPTER: TypeAdapter[Discrepancy | SettlementRun] = TypeAdapter(SettlementRecord)


def run_key(run_id: str) -> str:
    return f"run:{run_id}"
