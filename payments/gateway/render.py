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
from payments.schemas.api import AccountOut, AccountPending, AdjustmentOut, PaymentOut, StatusChangeOut
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.errors import ErrorCode
from payments.schemas.state import (
    TERMINAL_STATUSES,
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
)

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


# --- operations (payments, adjustments) ------------------------------------------------------------------


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
        created_at=op.created_at,
        updated_at=op.updated_at,
        history=_history(op),
        mismatched_requests=op.mismatched_commands,
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


def pending_out(cmd: RequestPayment | AdjustBalance) -> PaymentOut | AdjustmentOut:
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
    return AdjustmentOut(
        id=cmd.command_id,
        account_id=cmd.account_id,
        amount=cmd.amount,
        currency=cmd.currency,
        reason=cmd.reason,
        status="pending",
    )


def is_final(op: Operation) -> bool:
    return op.status in TERMINAL_STATUSES


def operation_conflicts(op: Operation, cmd: RequestPayment | AdjustBalance) -> bool:
    """The operation under this id belongs to another payload (same key reused after Redis lost it)."""
    if op.account_id != cmd.account_id:
        return True
    if isinstance(cmd, RequestPayment):
        return op.kind is not OperationKind.PAYMENT or op.fingerprint != cmd.fingerprint
    return op.kind is not OperationKind.ADJUSTMENT or (op.amount, op.currency, op.reason) != (
        cmd.amount,
        cmd.currency,
        cmd.reason,
    )


def operation_answer(op: Operation | None, cmd: RequestPayment | AdjustBalance, *, instance: str) -> Answer:
    """201 for success, 402 for a funds decline, the matching 4xx for a rejection, else 202 as it stands."""
    if op is None:
        return json_answer(202, pending_out(cmd))
    body = payment_out(op) if op.kind is OperationKind.PAYMENT else adjustment_out(op)
    if op.status is OperationStatus.SUCCEEDED:
        location = f"/v1/payments/{op.op_id}" if op.kind is OperationKind.PAYMENT else None
        return json_answer(201, body, location=location)
    if op.status in (OperationStatus.DECLINED, OperationStatus.REJECTED):
        default = (
            ErrorCode.INSUFFICIENT_FUNDS
            if op.status is OperationStatus.DECLINED
            else ErrorCode.VALIDATION_ERROR
        )
        code = op.failure_code or default
        id_field = "payment_id" if op.kind is OperationKind.PAYMENT else "adjustment_id"
        detail = f"the {op.kind.value} was {op.status.value}: {code.value}"
        return problem_answer(code, detail, instance=instance, extensions={id_field: op.op_id})
    return json_answer(202, body)
