"""Turning read-model state into HTTP answers. Pure: no I/O, no clock.

An ``Answer`` is exactly what an idempotent request stores and replays: status, the headers that matter
(``Content-Type``, ``Location``) and the body bytes. Bodies are serialised once, here, with orjson.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import BaseModel

from payments.gateway.idempotency import StoredResponse
from payments.gateway.problems import PROBLEM_JSON, problem_bytes, status_for
from payments.schemas.api import (
    AccountOut,
    AccountPending,
    AdjustmentOut,
    HoldOut,
    LedgerEntryOut,
    MemberChangeOut,
    PaymentOut,
    PostingOut,
    StatusChangeOut,
    TopUpOut,
)
from payments.schemas.commands import (
    AddMember,
    AdjustBalance,
    OpenAccount,
    RemoveMember,
    RequestPayment,
    RequestTopUp,
)
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import LedgerTransaction, customer_ledger_account
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
)

OperationCommand = AdjustBalance | RequestPayment | RequestTopUp
MemberCommand = AddMember | RemoveMember

JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def stored(self) -> StoredResponse:
        return StoredResponse(self.status, self.headers, self.body)

    def response(self, extra_headers: dict[str, str] | None = None) -> Response:
        return Response(
            self.body, status_code=self.status, headers={**dict(self.headers), **(extra_headers or {})}
        )


def replay_response(stored: StoredResponse) -> Response:
    return Answer(stored.status, stored.body, stored.headers).response({"Idempotent-Replayed": "true"})


def json_answer(status: int, model: BaseModel, *, location: str | None = None) -> Answer:
    headers: list[tuple[str, str]] = [("content-type", JSON)]
    if location is not None:
        headers.append(("location", location))
    return Answer(status, orjson.dumps(model.model_dump(mode="json")), tuple(headers))


def problem_answer(
    code: ErrorCode, detail: str, *, instance: str, extensions: dict[str, Any] | None = None
) -> Answer:
    body = problem_bytes(code, detail, instance=instance, extensions=extensions)
    return Answer(status_for(code), body, (("content-type", PROBLEM_JSON),))


# --- accounts --------------------------------------------------------------------------------------------


def is_open(snapshot: AccountSnapshot) -> bool:
    return snapshot.status is AccountStatus.OPEN


def account_out(snapshot: AccountSnapshot) -> AccountOut:
    return AccountOut(
        id=snapshot.account_id,
        currency=snapshot.currency or "",
        members=list(snapshot.members),
        overdraft_limit=snapshot.overdraft_limit,
        posted=snapshot.posted,
        held=snapshot.held,
        available=snapshot.available,
        version=snapshot.version,
    )


def account_conflicts(snapshot: AccountSnapshot, cmd: OpenAccount) -> bool:
    """The account under this id was opened by another request (different payload under the same key)."""
    return (
        snapshot.currency != cmd.currency
        or tuple(sorted(set(cmd.members))) != snapshot.members
        or snapshot.overdraft_limit != cmd.overdraft_limit
    )


def account_answer(snapshot: AccountSnapshot | None, cmd: OpenAccount, *, instance: str) -> Answer:
    if snapshot is None or not is_open(snapshot):
        return json_answer(202, AccountPending(id=cmd.account_id))
    if snapshot.opened_by_command != cmd.command_id:
        return problem_answer(ErrorCode.ACCOUNT_EXISTS, "an account with this id exists", instance=instance)
    return json_answer(201, account_out(snapshot), location=f"/v1/accounts/{cmd.account_id}")


# --- operations (payments, top-ups, adjustments) ---------------------------------------------------------


def _history(op: Operation) -> list[StatusChangeOut]:
    return [StatusChangeOut(status=h.status.value, at=h.at, seq=h.seq, code=h.code) for h in op.history]


def payment_out(op: Operation) -> PaymentOut:
    return PaymentOut(
        id=op.op_id,
        account_id=op.account_id,
        amount=op.amount,
        currency=op.currency,
        payee=op.payee,
        description=op.description,
        status=op.status.value,
        failure_code=op.failure_code,
        psp_failure_code=op.psp_failure_code,
        psp_movement_id=op.psp_movement_id,
        hold=None if op.hold is None else HoldOut(amount=op.hold.amount, status=op.hold.status.value),
        created_at=op.created_at,
        updated_at=op.updated_at,
        history=_history(op),
        mismatched_requests=op.mismatched_commands,
        discrepancies=op.discrepancies,
    )


def top_up_out(op: Operation) -> TopUpOut:
    return TopUpOut(
        id=op.op_id,
        account_id=op.account_id,
        amount=op.amount,
        currency=op.currency,
        payment_method=op.payment_method,
        status=op.status.value,
        failure_code=op.failure_code,
        psp_failure_code=op.psp_failure_code,
        psp_movement_id=op.psp_movement_id,
        created_at=op.created_at,
        updated_at=op.updated_at,
        history=_history(op),
        mismatched_requests=op.mismatched_commands,
        discrepancies=op.discrepancies,
    )


def adjustment_out(op: Operation) -> AdjustmentOut:
    return AdjustmentOut(
        id=op.op_id,
        account_id=op.account_id,
        amount=op.amount,
        currency=op.currency,
        reason=op.reason,
        status=op.status.value,
        failure_code=op.failure_code,
        created_at=op.created_at,
        updated_at=op.updated_at,
        history=_history(op),
    )


def operation_out(op: Operation) -> PaymentOut | TopUpOut | AdjustmentOut:
    if op.kind is OperationKind.PAYMENT:
        return payment_out(op)
    if op.kind is OperationKind.TOP_UP:
        return top_up_out(op)
    return adjustment_out(op)


def pending_out(cmd: OperationCommand) -> PaymentOut | TopUpOut | AdjustmentOut:
    if isinstance(cmd, RequestPayment):
        return PaymentOut(
            id=cmd.command_id,
            account_id=cmd.account_id,
            amount=cmd.amount,
            currency=cmd.currency,
            payee=cmd.payee,
            description=cmd.description,
            status="pending",
        )
    if isinstance(cmd, RequestTopUp):
        return TopUpOut(
            id=cmd.command_id,
            account_id=cmd.account_id,
            amount=cmd.amount,
            currency=cmd.currency,
            payment_method=cmd.payment_method,
            status="pending",
        )
    return AdjustmentOut(
        id=cmd.command_id,
        account_id=cmd.account_id,
        amount=cmd.amount,
        currency=cmd.currency,
        reason=cmd.reason,
        status="pending",
    )


def is_final(op: Operation) -> bool:
    """Only terminal statuses are final answers to ``Prefer: wait``: ``reserved``, ``processing`` and
    ``unknown`` are not (the PSP has not answered yet), so a waiting request keeps waiting."""
    return op.is_terminal


_KIND_OF: dict[type[OperationCommand], OperationKind] = {
    RequestPayment: OperationKind.PAYMENT,
    RequestTopUp: OperationKind.TOP_UP,
    AdjustBalance: OperationKind.ADJUSTMENT,
}


def operation_conflicts(op: Operation, cmd: OperationCommand) -> bool:
    """The operation under this id belongs to another payload (same key reused after Redis lost it)."""
    if op.account_id != cmd.account_id or op.kind is not _KIND_OF[type(cmd)]:
        return True
    if isinstance(cmd, RequestPayment | RequestTopUp):
        return op.fingerprint != cmd.fingerprint
    return (op.amount, op.currency, op.reason) != (cmd.amount, cmd.currency, cmd.reason)


_ID_FIELD = {
    OperationKind.PAYMENT: "payment_id",
    OperationKind.TOP_UP: "top_up_id",
    OperationKind.ADJUSTMENT: "adjustment_id",
}
_LOCATION = {OperationKind.PAYMENT: "/v1/payments/{}", OperationKind.TOP_UP: "/v1/top-ups/{}"}
_FAILURE_CODES = frozenset({ErrorCode.PSP_DECLINED, ErrorCode.OPERATION_EXPIRED})


def operation_answer(op: Operation | None, cmd: OperationCommand, *, instance: str) -> Answer:
    """201 for success; 402 for a funds decline (``insufficient_funds``) or a PSP failure (``psp_declined``
    or ``operation_expired``, with the PSP's ``psp_failure_code``); the matching 4xx for a rejection; else
    202 with the operation as it stands (``pending`` if the read model does not know it yet)."""
    if op is None:
        return json_answer(202, pending_out(cmd))
    body = operation_out(op)
    id_field = _ID_FIELD[op.kind]
    if op.status is OperationStatus.SUCCEEDED:
        location = _LOCATION[op.kind].format(op.op_id) if op.kind in _LOCATION else None
        return json_answer(201, body, location=location)
    if op.status in (OperationStatus.DECLINED, OperationStatus.REJECTED):
        default = (
            ErrorCode.INSUFFICIENT_FUNDS
            if op.status is OperationStatus.DECLINED
            else ErrorCode.VALIDATION_ERROR
        )
        code = op.failure_code or default
        detail = f"the {op.kind.value.replace('_', '-')} was {op.status.value}: {code.value}"
        return problem_answer(code, detail, instance=instance, extensions={id_field: op.op_id})
    if op.status is OperationStatus.FAILED:
        code = op.failure_code if op.failure_code in _FAILURE_CODES else ErrorCode.PSP_DECLINED
        psp = f" ({op.psp_failure_code})" if op.psp_failure_code else ""
        detail = f"the {op.kind.value.replace('_', '-')} failed: {code.value}{psp}"
        extensions = {id_field: op.op_id, "psp_failure_code": op.psp_failure_code}
        return problem_answer(code, detail, instance=instance, extensions=extensions)
    return json_answer(202, body)


# --- members ---------------------------------------------------------------------------------------------


def membership_shown(snapshot: AccountSnapshot, cmd: MemberCommand) -> bool:
    """The read model shows the change ``cmd`` asks for (which may also be how it was already)."""
    return (cmd.user_id in snapshot.members) == isinstance(cmd, AddMember)


def member_answer(snapshot: AccountSnapshot | None, cmd: MemberCommand) -> Answer:
    """200 once the read model shows the change, else 202 ``pending``."""
    action = "add" if isinstance(cmd, AddMember) else "remove"
    done = snapshot is not None and is_open(snapshot) and membership_shown(snapshot, cmd)
    body = MemberChangeOut(
        account_id=cmd.account_id,
        user_id=cmd.user_id,
        action=action,
        pending=not done,
        version=snapshot.version if done and snapshot is not None else None,
    )
    return json_answer(200 if done else 202, body)


# --- ledger ----------------------------------------------------------------------------------------------


def ledger_entry_out(tx: LedgerTransaction, account_id: str) -> LedgerEntryOut:
    return LedgerEntryOut(
        tx_id=tx.tx_id,
        seq=tx.seq,
        kind=tx.kind,
        op_id=tx.op_id,
        currency=tx.currency,
        occurred_at=tx.occurred_at,
        postings=[PostingOut(debit=p.debit, credit=p.credit, amount=p.amount) for p in tx.postings],
        net=tx.net_for(customer_ledger_account(account_id)),
    )
