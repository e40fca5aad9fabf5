"""Invariant 3, three ways: our intents (operations on ``payments.results``), our ledger, the PSP's own log.

* at most one PSP money movement per idempotency key (our operation id);
* every succeeded PSP transfer/charge has exactly one ledger posting for that operation (its capture, its
  credit, or — if it arrived after the operation ended otherwise — its suspense posting);
* no such posting lacks a succeeded PSP movement under that key.

Pure: the caller fetches the PSP audit (``GET /_sim/audit``) and passes its movements in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from payments.audit.violations import Violation
from payments.schemas.ledger import PSP_POSTING_KINDS, LedgerTransaction, LedgerTxKind
from payments.schemas.psp_movement import PspMovement, PspMovementLog
from payments.schemas.state import Operation, OperationKind

_PSP_OPS = frozenset({OperationKind.PAYMENT, OperationKind.TOP_UP})


def parse_psp_audit(body: Any) -> list[PspMovement]:
    """The movements of the simulator's audit answer. Raises ValueError if it is not what we expect."""
    try:
        return list(PspMovementLog.model_validate(body).movements)
    except ValidationError as exc:
        raise ValueError(
            f"malformed PSP audit log: {exc.error_count()} errors, first {exc.errors()[0]['loc']}"
        ) from exc


def check_psp_postings(
    ops: Mapping[str, Operation], ledger: Sequence[LedgerTransaction], v: list[Violation]
) -> None:
    """The part of invariant 3 our own topics can show: one posting per PSP success, none without."""
    postings: dict[str, list[LedgerTransaction]] = defaultdict(list)
    for tx in ledger:
        if tx.kind in PSP_POSTING_KINDS:
            postings[tx.op_id].append(tx)
    for op_id, txs in postings.items():
        if len(txs) > 1:
            v.append(Violation(3, op_id, f"{len(txs)} PSP postings: {[t.tx_id for t in txs]}"))
        op = ops.get(op_id)
        if op is None:
            v.append(Violation(3, op_id, "PSP posting for an operation never published"))
        elif txs[0].kind != LedgerTxKind.LATE_PSP_SUCCESS and op.status.value != "succeeded":
            v.append(Violation(3, op_id, f"posted as a PSP success but the operation is {op.status.value}"))
    for op_id, op in ops.items():
        if op.kind in _PSP_OPS and op.status.value == "succeeded" and op_id not in postings:
            v.append(Violation(3, op_id, "succeeded without a ledger posting"))


def match_psp(
    ops: Mapping[str, Operation],
    ledger: Sequence[LedgerTransaction],
    movements: Sequence[PspMovement],
    v: list[Violation],
) -> int:
    """Match the PSP's own log against our intents and ledger; returns the number of movements matched."""
    per_key = Counter(m.idempotency_key for m in movements if m.idempotency_key and m.moves_our_money)
    for key, n in per_key.items():
        if n > 1:
            v.append(Violation(3, key, f"{n} PSP money movements under one idempotency key"))
    posted = {tx.op_id: tx for tx in ledger if tx.kind in PSP_POSTING_KINDS}
    succeeded = {
        m.idempotency_key: m
        for m in movements
        if m.succeeded and m.moves_our_money and m.idempotency_key is not None
    }
    matched = 0
    for key, m in succeeded.items():
        if key not in ops:
            v.append(Violation(3, m.id, f"PSP {m.kind} of {m.amount} under key {key} with no intent of ours"))
            continue
        tx = posted.get(key)
        if tx is None:
            v.append(Violation(3, key, f"PSP {m.kind} {m.id} succeeded but has no ledger posting"))
            continue
        amount = sum(p.amount for p in tx.postings)
        if amount != m.amount:
            v.append(Violation(3, key, f"ledger posted {amount}, the PSP moved {m.amount}"))
        matched += 1
    for op_id in posted.keys() - succeeded.keys():
        v.append(Violation(3, op_id, "ledger posting without a PSP success under its key"))
    return matched
