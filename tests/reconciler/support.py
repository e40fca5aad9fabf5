"""Builders for the reconciler's unit tests: real processor decisions, no I/O.

Operations and results are produced by the processor's own ``decide()``, so the tracker and the re-drive are
tested against what the processor really publishes, not against hand-written look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from payments.processor.decide import Decision, Policy, decide, operation_key
from payments.reconciler.tracking import TrackedOp
from payments.schemas.commands import (
    AdjustBalance,
    AnyCommand,
    OpenAccount,
    RecordPspOutcome,
    RequestPayment,
    RequestTopUp,
)
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus
from payments.schemas.state import AccountSnapshot, Operation, OperationKind, OperationStatus

ACC = "acc_1"
TTL_MS = 600_000  # the processor's operation deadline in these tests: issued_at + 10 min
POLICY = Policy(operation_ttl_ms=TTL_MS)
FINGERPRINT = "f" * 16


@dataclass
class World:
    """One account's processor state, advanced with decide() exactly as the processor would."""

    account: AccountSnapshot | None = None
    ops: dict[str, Operation] = field(default_factory=dict)

    def apply(self, cmd: AnyCommand) -> Decision:
        key = operation_key(cmd)
        decision = decide(self.account, self.ops.get(key) if key else None, cmd, POLICY)
        if decision.account is not None:
            self.account = decision.account
        if decision.operation is not None:
            self.ops[decision.operation.op_id] = decision.operation
        return decision


def funded_world(balance: int = 100_000) -> World:
    world = World()
    world.apply(
        OpenAccount(
            command_id="open_1",
            account_id=ACC,
            issued_at=1,
            currency="EUR",
            members=("alice",),
            principal="admin",
        )
    )
    world.apply(
        AdjustBalance(
            command_id="adj_1",
            account_id=ACC,
            issued_at=2,
            amount=balance,
            currency="EUR",
            reason="funding",
            principal="admin",
        )
    )
    return world


def payment(
    op_id: str = "pay_1", amount: int = 1250, at: int = 1_000, payee: str = "payee_1"
) -> RequestPayment:
    return RequestPayment(
        command_id=op_id,
        account_id=ACC,
        issued_at=at,
        amount=amount,
        currency="EUR",
        payee=payee,
        principal="alice",
        fingerprint=FINGERPRINT,
    )


def top_up(op_id: str = "top_1", amount: int = 5_000, at: int = 1_000, card: str = "tok_ok") -> RequestTopUp:
    return RequestTopUp(
        command_id=op_id,
        account_id=ACC,
        issued_at=at,
        amount=amount,
        currency="EUR",
        payment_method=card,
        principal="alice",
        fingerprint=FINGERPRINT,
    )


def psp_outcome(
    op_id: str,
    status: PspOutcomeStatus,
    at: int,
    *,
    movement_id: str | None = None,
    amount: int | None = None,
) -> RecordPspOutcome:
    return RecordPspOutcome(
        command_id=f"out:{at}:{op_id}",
        account_id=ACC,
        issued_at=at,
        op_id=op_id,
        status=status,
        source=PspOutcomeSource.PSP_CALLER,
        psp_movement_id=movement_id,
        amount=amount,
    )


def tracked(
    op_id: str = "pay_1",
    *,
    status: OperationStatus = OperationStatus.UNKNOWN,
    kind: OperationKind = OperationKind.PAYMENT,
    since: int = 0,
    seq: int = 3,
    deadline_at: int | None = 600_000,
    amount: int = 1250,
    account_id: str = ACC,
) -> TrackedOp:
    """A tracked operation as the tracker stores it (payments carry a payee, top-ups a card token)."""
    return TrackedOp(
        op_id=op_id,
        account_id=account_id,
        kind=kind,
        status=status,
        amount=amount,
        currency="EUR",
        payee="payee_1" if kind is OperationKind.PAYMENT else None,
        payment_method="tok_ok" if kind is OperationKind.TOP_UP else None,
        deadline_at=deadline_at,
        since=since,
        seq=seq,
    )
