"""Commands on ``payments.commands``: the one ordered input log of each account (key = account id).

Every command carries a deterministic ``command_id`` so the processor can dedupe replays, and an
``issued_at`` timestamp (ms since the epoch, from the producer's clock) which the pure ``decide()`` uses as
"now" — it never reads a clock of its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from payments.schemas.money import Currency, NonNegativeAmount, PositiveAmount, SignedAmount

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    command_id: Identifier
    account_id: Identifier
    issued_at: int = Field(ge=0, description="producer clock, ms since the Unix epoch")


class OpenAccount(_Command):
    type: Literal["open_account"] = "open_account"
    currency: Currency
    members: tuple[Identifier, ...]
    overdraft_limit: NonNegativeAmount = 0
    principal: Identifier


class AdjustBalance(_Command):
    """Signed manual ledger adjustment (funding, corrections); ``command_id`` is the adjustment id."""

    type: Literal["adjust_balance"] = "adjust_balance"
    amount: SignedAmount
    currency: Currency
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    principal: Identifier


class RequestPayment(_Command):
    """Pay a payee from the shared balance; ``command_id`` is the payment id derived from
    (principal, idempotency key), and ``fingerprint`` binds the key to the validated request."""

    type: Literal["request_payment"] = "request_payment"
    amount: PositiveAmount
    currency: Currency
    payee: Identifier
    description: Annotated[str, Field(max_length=500)] | None = None
    principal: Identifier
    fingerprint: Annotated[str, Field(min_length=16, max_length=128)]


Command = Annotated[OpenAccount | AdjustBalance | RequestPayment, Field(discriminator="type")]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def encode_command(cmd: OpenAccount | AdjustBalance | RequestPayment) -> bytes:
    return cmd.model_dump_json().encode()


def decode_command(raw: bytes) -> OpenAccount | AdjustBalance | RequestPayment:
    return COMMAND_ADAPTER.validate_json(raw)
