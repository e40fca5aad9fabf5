"""Commands on ``payments.commands``: the one ordered input log of each account (key = account id).

Every command carries a deterministic ``command_id`` so the processor can dedupe replays, and an
``issued_at`` timestamp (ms since the epoch, from the producer's clock) which the pure ``decide()`` uses as
"now" — it never reads a clock of its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from payments.schemas.money import Currency, NonNegativeAmount, PositiveAmount, SignedAmount
from payments.schemas.psp import PaymentMethodToken, PspOutcomeSource, PspOutcomeStatus

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
    (principal, account, idempotency key), and ``fingerprint`` binds the key to the validated request."""

    type: Literal["request_payment"] = "request_payment"
    amount: PositiveAmount
    currency: Currency
    payee: Identifier
    description: Annotated[str, Field(max_length=500)] | None = None
    principal: Identifier
    fingerprint: Annotated[str, Field(min_length=16, max_length=128)]


class RequestTopUp(_Command):
    """Charge a member's card token at the PSP and credit the account once the PSP confirms;
    ``command_id`` is the top-up id derived from (principal, account, idempotency key)."""

    type: Literal["request_top_up"] = "request_top_up"
    amount: PositiveAmount
    currency: Currency
    payment_method: PaymentMethodToken
    principal: Identifier
    fingerprint: Annotated[str, Field(min_length=16, max_length=128)]


class AddMember(_Command):
    """Admin: let ``user_id`` pay from and read the account. Adding a member twice changes nothing."""

    type: Literal["add_member"] = "add_member"
    user_id: Identifier
    principal: Identifier


class RemoveMember(_Command):
    """Admin: remove ``user_id``. Its payments already decided are unaffected; new ones are rejected."""

    type: Literal["remove_member"] = "remove_member"
    user_id: Identifier
    principal: Identifier


class RecordPspOutcome(_Command):
    """What the PSP did with operation ``op_id``, from the psp-caller, a webhook or the reconciler.

    Applied monotonically: once an operation is terminal, nothing moves it back; a contradicting outcome
    is recorded as a discrepancy. ``command_id`` only needs to be unique enough to trace; dedupe is by state.
    """

    type: Literal["psp_outcome"] = "psp_outcome"
    op_id: Identifier
    status: PspOutcomeStatus
    source: PspOutcomeSource
    psp_movement_id: Annotated[str, Field(max_length=255)] | None = None
    psp_failure_code: Annotated[str, Field(max_length=64)] | None = None
    amount: PositiveAmount | None = Field(default=None, description="the amount the PSP reports, if any")


class ExpireOperation(_Command):
    """From the reconciler: ``op_id`` is past its deadline and the PSP has no record of it, so fail it
    and release its hold. Ignored unless ``issued_at`` is at or after the operation's deadline."""

    type: Literal["expire_operation"] = "expire_operation"
    op_id: Identifier


AnyCommand = (
    OpenAccount
    | AdjustBalance
    | RequestPayment
    | RequestTopUp
    | AddMember
    | RemoveMember
    | RecordPspOutcome
    | ExpireOperation
)
Command = Annotated[AnyCommand, Field(discriminator="type")]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def encode_command(cmd: AnyCommand) -> bytes:
    return cmd.model_dump_json().encode()


def decode_command(raw: bytes) -> AnyCommand:
    return COMMAND_ADAPTER.validate_json(raw)
