"""Plausible ``ResultEvent`` histories for the reference consumer's tests: dense seqs per account, balances
that follow the operations, a mix of payments (reserved → succeeded/failed) and top-ups."""

from __future__ import annotations

import random
from collections.abc import Sequence

from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultEvent,
    ResultType,
)

_T0_MS = 1_800_000_000_000


def _event(
    acct: AccountSnapshot, kind: ResultType, op: Operation | None, *, command_id: str | None = None
) -> ResultEvent:
    return ResultEvent(
        event_id=f"{acct.account_id}:{acct.version}",
        type=kind,
        account_id=acct.account_id,
        seq=acct.version,
        occurred_at=_T0_MS + acct.version,
        command_id=command_id or f"cmd-{acct.account_id}-{acct.version}",
        account=acct,
        operation=op,
    )


def _op(
    acct: AccountSnapshot, n: int, kind: OperationKind, amount: int, status: OperationStatus
) -> Operation:
    return Operation(
        op_id=f"op-{acct.account_id}-{n}",
        kind=kind,
        account_id=acct.account_id,
        principal="alice",
        amount=amount,
        currency="EUR",
        payee="payee-1" if kind is OperationKind.PAYMENT else None,
        status=status,
        created_at=_T0_MS,
        updated_at=_T0_MS,
    )


def history(account_id: str, n: int, rng: random.Random) -> list[ResultEvent]:
    """Exactly ``n`` results of one account with seqs 1..n (account opened first)."""
    acct = AccountSnapshot(
        account_id=account_id,
        status=AccountStatus.OPEN,
        currency="EUR",
        members=("alice", "bob"),
        posted=1_000_000,
        version=1,
    )
    out = [_event(acct, ResultType.ACCOUNT_OPENED, None)]
    pending: Operation | None = None
    ops = 0
    while len(out) < n:
        bump = {"version": acct.version + 1}
        if pending is not None:
            ok = rng.random() < 0.7
            status = OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED
            posted = acct.posted - pending.amount if ok else acct.posted
            acct = acct.model_copy(update={**bump, "held": acct.held - pending.amount, "posted": posted})
            done = pending.model_copy(update={"status": status})
            kind = ResultType.PAYMENT_SUCCEEDED if ok else ResultType.PAYMENT_FAILED
            out.append(_event(acct, kind, done))
            pending = None
        elif rng.random() < 0.2:
            ops += 1
            amount = rng.randint(1_000, 5_000)
            acct = acct.model_copy(update={**bump, "posted": acct.posted + amount})
            top_up = _op(acct, ops, OperationKind.TOP_UP, amount, OperationStatus.SUCCEEDED)
            out.append(_event(acct, ResultType.TOP_UP_SUCCEEDED, top_up))
        else:
            ops += 1
            amount = rng.randint(100, 2_000)
            acct = acct.model_copy(update={**bump, "held": acct.held + amount})
            pending = _op(acct, ops, OperationKind.PAYMENT, amount, OperationStatus.RESERVED)
            out.append(_event(acct, ResultType.PAYMENT_RESERVED, pending))
    return out


def interleave(histories: Sequence[Sequence[ResultEvent]], rng: random.Random) -> list[ResultEvent]:
    """All events in a random order that keeps each account's own order (as the processor publishes)."""
    queues = [list(reversed(h)) for h in histories if h]
    out: list[ResultEvent] = []
    while queues:
        i = rng.randrange(len(queues))
        out.append(queues[i].pop())
        if not queues[i]:
            queues.pop(i)
    return out


def phantom(event: ResultEvent) -> ResultEvent:
    """A bogus twin of ``event`` (same account and seq, different command) for aborted transactions."""
    return event.model_copy(
        update={"command_id": f"aborted-{event.event_id}", "type": ResultType.PAYMENT_SUCCEEDED}
    )


def encode(event: ResultEvent) -> bytes:
    return event.model_dump_json().encode()
