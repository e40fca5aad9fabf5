"""Read-model state → HTTP answers. Pure."""

from __future__ import annotations

import orjson
import pytest

from payments.gateway.render import (
    account_answer,
    is_final,
    ledger_entry_out,
    member_answer,
    membership_shown,
    operation_answer,
    operation_conflicts,
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
from payments.schemas.ledger import LedgerTransaction, Posting
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Hold,
    HoldStatus,
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


# --- PSP leg: only terminal statuses are final; failures are 402 with the PSP's code -----------------------


@pytest.mark.parametrize(
    "status", [OperationStatus.RESERVED, OperationStatus.PROCESSING, OperationStatus.UNKNOWN]
)
def test_non_terminal_statuses_are_not_final_and_answer_202(status: OperationStatus) -> None:
    op = _op(status, hold=Hold(amount=10))
    assert not is_final(op)
    a = operation_answer(op, CMD, instance="/i")
    assert a.status == 202
    doc = orjson.loads(a.body)
    assert (doc["status"], doc["hold"]) == (status.value, {"amount": 10, "status": "open"})


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (ErrorCode.PSP_DECLINED, "psp_declined"),
        (ErrorCode.OPERATION_EXPIRED, "operation_expired"),
        (None, "psp_declined"),
    ],
)
def test_failed_is_402_with_the_psp_code(code: ErrorCode | None, problem: str) -> None:
    op = _op(
        OperationStatus.FAILED, code, psp_failure_code="payee_account_closed",
        hold=Hold(amount=10, status=HoldStatus.RELEASED),
    )  # fmt: skip
    assert is_final(op)
    a = operation_answer(op, CMD, instance="/v1/accounts/acct_1/payments")
    doc = orjson.loads(a.body)
    assert a.status == 402
    assert (doc["code"], doc["payment_id"], doc["psp_failure_code"]) == (
        problem,
        "pay_1",
        "payee_account_closed",
    )
    assert "payee_account_closed" in doc["detail"]


TOP_UP = RequestTopUp(
    command_id="top_1", account_id="acct_1", issued_at=5, amount=500, currency="EUR",
    payment_method="tok_ok", principal="alice", fingerprint="f" * 64,
)  # fmt: skip


def _top_up(status: OperationStatus, **changes: object) -> Operation:
    top_up = {"op_id": "top_1", "kind": OperationKind.TOP_UP, "payee": None, "amount": 500}
    return _op(status).model_copy(update={**top_up, "payment_method": "tok_ok", **changes})


def test_top_up_answers() -> None:
    pending = operation_answer(None, TOP_UP, instance="/i")
    assert (pending.status, orjson.loads(pending.body)["payment_method"]) == (202, "tok_ok")
    ok = operation_answer(_top_up(OperationStatus.SUCCEEDED), TOP_UP, instance="/i")
    assert (ok.status, dict(ok.headers)["location"]) == (201, "/v1/top-ups/top_1")
    assert "hold" not in orjson.loads(ok.body)
    failed = operation_answer(
        _top_up(
            OperationStatus.FAILED, failure_code=ErrorCode.PSP_DECLINED, psp_failure_code="card_declined"
        ),
        TOP_UP,
        instance="/i",
    )
    doc = orjson.loads(failed.body)
    assert (failed.status, doc["code"], doc["top_up_id"], doc["psp_failure_code"]) == (
        402,
        "psp_declined",
        "top_1",
        "card_declined",
    )
    assert not operation_conflicts(_top_up(OperationStatus.PROCESSING), TOP_UP)
    assert operation_conflicts(_op(OperationStatus.PROCESSING, op_id="top_1"), TOP_UP)  # a payment
    assert operation_conflicts(_top_up(OperationStatus.PROCESSING, fingerprint="e" * 64), TOP_UP)


def test_member_answers() -> None:
    snap = AccountSnapshot(
        account_id="acct_1", status=AccountStatus.OPEN, currency="EUR", members=("alice",), version=4
    )
    add = AddMember(command_id="mem_1", account_id="acct_1", issued_at=1, user_id="bob", principal="admin")
    remove = RemoveMember(
        command_id="mem_2", account_id="acct_1", issued_at=1, user_id="bob", principal="admin"
    )
    assert member_answer(None, add).status == 202
    pending = member_answer(snap, add)
    assert (pending.status, orjson.loads(pending.body)) == (
        202,
        {"account_id": "acct_1", "user_id": "bob", "action": "add", "pending": True, "version": None},
    )
    assert member_answer(snap, remove).status == 200  # bob is not a member: shown as asked
    added = snap.model_copy(update={"members": ("alice", "bob"), "version": 5})
    done = member_answer(added, add)
    assert (done.status, orjson.loads(done.body)["version"]) == (200, 5)
    assert membership_shown(added, add)
    assert not membership_shown(added, remove)


def test_ledger_entry_net_effect() -> None:
    tx = LedgerTransaction(
        tx_id="pay_1:payment", account_id="acct_1", seq=4, op_id="pay_1", kind="payment", currency="EUR",
        occurred_at=9, postings=(
            Posting(debit="customer:acct_1", credit="clearing:psp-payouts", amount=1250),
            Posting(debit="equity:funding", credit="customer:acct_1", amount=50),
        ),
    )  # fmt: skip
    out = ledger_entry_out(tx, "acct_1")
    assert (out.net, out.seq, len(out.postings)) == (-1200, 4, 2)
    assert ledger_entry_out(tx, "acct_2").net == 0
