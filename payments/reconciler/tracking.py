"""Which PSP operations are still open: the reconciler's keyed state, fed by ``payments.results``.

The tracker runs on the exactly-once runtime with ``payments.results`` as input and its own compacted
changelog: one record per non-terminal payment or top-up (key = op id), deleted when the operation reaches a
terminal state. A restart restores the open set from the changelog instead of re-reading all results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from payments.schemas.state import OperationKind, OperationStatus, ResultEvent
from payments.streaming.store import StateAccess
from payments.streaming.types import InputRecord, Output

log = logging.getLogger(__name__)

PSP_KINDS = frozenset({OperationKind.PAYMENT, OperationKind.TOP_UP})


class TrackedOp(BaseModel):
    """What the reconciler needs to resolve one open operation, and to re-drive it with the same body."""

    model_config = ConfigDict(frozen=True)

    op_id: str
    account_id: str
    kind: OperationKind
    status: OperationStatus
    amount: int
    currency: str
    payee: str | None = None
    payment_method: str | None = None
    deadline_at: int | None = None
    since: int  # when it entered ``status`` (the deciding command's clock, ms)
    seq: int  # the account seq of that result


def tracked_from(event: ResultEvent) -> TrackedOp | None:
    """The open operation ``event`` describes, or None if it describes none (or a terminal one)."""
    op = event.operation
    if op is None or op.kind not in PSP_KINDS or op.is_terminal:
        return None
    return TrackedOp(
        op_id=op.op_id,
        account_id=op.account_id,
        kind=op.kind,
        status=op.status,
        amount=op.amount,
        currency=op.currency,
        payee=op.payee,
        payment_method=op.payment_method,
        deadline_at=op.deadline_at,
        since=op.updated_at,
        seq=event.seq,
    )


class TrackerTransformer:
    """Results in, open-operation state out; produces no records of its own."""

    def __call__(self, state: StateAccess, record: InputRecord) -> Sequence[Output]:
        if record.value is None:
            return ()
        try:
            event = ResultEvent.model_validate_json(record.value)
        except ValidationError:
            # A result this version cannot read: skipping it can only delay a resolution (the next result
            # of that operation replaces the entry), never move money. Logged without the payload.
            log.error("skipping unreadable result at partition=%d offset=%d", record.partition, record.offset)
            return ()
        op = event.operation
        if op is None or op.kind not in PSP_KINDS:
            return ()
        tracked = tracked_from(event)
        if tracked is not None:
            state.put(op.op_id, tracked)
        elif state.get(op.op_id) is not None:
            state.delete(op.op_id)
        return ()


class TrackedCodec:
    def encode(self, key: str, value: object) -> bytes:
        if not isinstance(value, TrackedOp):
            raise TypeError(f"unexpected state value for {key}: {type(value).__name__}")
        return value.model_dump_json().encode()

    def decode(self, key: str, raw: bytes) -> object:
        return TrackedOp.model_validate_json(raw)
