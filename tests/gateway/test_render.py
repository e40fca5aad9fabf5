"""Read-model state → HTTP answers. Pure."""

from __future__ import annotations

import orjson
import pytest

from payments.gateway.render import account_answer, operation_answer, operation_conflicts
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.errors import ErrorCode
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
    StatusChange,
)

CMD = RequestPayment(
    command_id="pay_1", account_id="acct_1", issued_at=5, amount=10, currency="EUR", payee="shop",
    principal="alice", fingerprint="f" * 64,
)  # fmt: skip


def _op(status: OperationStatus, code: ErrorCode | None = None, **changes: object) -> Operation:
    op = Operation(
        op_id="pay_1", kind=OperationKind.PAYMENT, account_id="acct_1", principal="alice", amount=10,
        currency="EUR", payee="shop", fingerprint="f" * 64, status=status, failure_code=code, created_at=5,
        updated_at=5, history=(StatusChange(status=status, at=5, seq=2, code=code),),
    )  # fmt: skip
    return op.model_copy(update=changes)


def test_pending_is_202() -> None:
    a = operation_answer(None, CMD, instance="/i")
    assert a.status == 202
    assert orjson.loads(a.body)["status"] == "pending"


@pytest.mark.parametrize(
    ("status", "code", "http", "problem"),
    [
        (OperationStatus.SUCCEEDED, None, 201, None),
        (OperationStatus.DECLINED, ErrorCode.INSUFFICIENT_FUNDS, 402, "insufficient_funds"),
        (OperationStatus.REJECTED, ErrorCode.NOT_A_MEMBER, 403, "not_a_member"),
        (OperationStatus.REJECTED, ErrorCode.ACCOUNT_NOT_FOUND, 404, "account_not_found"),
        (OperationStatus.REJECTED, ErrorCode.CURRENCY_MISMATCH, 422, "currency_mismatch"),
    ],
)
def test_final_states(
    status: OperationStatus, code: ErrorCode | None, http: int, problem: str | None
) -> None:
    a = operation_answer(_op(status, code), CMD, instance="/v1/accounts/acct_1/payments")
    doc = orjson.loads(a.body)
    assert a.status == http
    if problem is None:
        assert dict(a.headers)["location"] == "/v1/payments/pay_1"
        assert doc["history"] == [{"status": "succeeded", "at": 5, "seq": 2, "code": None}]
    else:
        assert dict(a.headers)["content-type"] == "application/problem+json"
        assert (doc["code"], doc["payment_id"], doc["status"]) == (problem, "pay_1", http)


def test_conflicts() -> None:
    assert not operation_conflicts(_op(OperationStatus.SUCCEEDED), CMD)
    assert operation_conflicts(_op(OperationStatus.SUCCEEDED, fingerprint="e" * 64), CMD)
    assert operation_conflicts(_op(OperationStatus.SUCCEEDED, account_id="acct_2"), CMD)
    adj = AdjustBalance(
        command_id="pay_1",
        account_id="acct_1",
        issued_at=1,
        amount=10,
        currency="EUR",
        reason="r",
        principal="a",
    )
    assert operation_conflicts(_op(OperationStatus.SUCCEEDED), adj)  # a payment is not this adjustment


def test_account_answers() -> None:
    cmd = OpenAccount(
        command_id="open:acct_1",
        account_id="acct_1",
        issued_at=1,
        currency="EUR",
        members=("a",),
        principal="x",
    )
    snap = AccountSnapshot(
        account_id="acct_1", status=AccountStatus.OPEN, currency="EUR", members=("a",), version=1,
        opened_by_command="open:acct_1",
    )  # fmt: skip
    assert account_answer(None, cmd, instance="/v1/accounts").status == 202
    assert account_answer(snap, cmd, instance="/v1/accounts").status == 201
    other = snap.model_copy(update={"opened_by_command": "open:other"})
    assert orjson.loads(account_answer(other, cmd, instance="/v1/accounts").body)["code"] == "account_exists"
