"""The judge: a clean history passes, and each kind of lie a system could tell is caught."""

from __future__ import annotations

from datetime import UTC, datetime

from payments.audit.checks import PspMovement
from payments.chaos.judge import ACK_LOST, PHANTOM, WRONG_ANSWER, Finding, expected_op_id, judge
from payments.chaos.model import Attempt, Behaviour, OpKind, Plan, PlannedOp, Read, Told
from payments.chaos.plan import plan_accounts
from payments.schemas.state import Operation, OperationKind, OperationStatus

ACCOUNTS = ["acct_hot", "acct_cold"]


def _plan(*ops: PlannedOp) -> Plan:
    import random

    return Plan(1, "mixed", 10, plan_accounts(random.Random(1)), tuple(ops), ())


def _op(index: int = 0, amount: int = 500, kind: OpKind = OpKind.PAYMENT) -> PlannedOp:
    return PlannedOp(0.1 * index, index, kind, 0, "ann", amount, f"key-{index}", Behaviour.PLAIN)


def _operation(
    op: PlannedOp, status: OperationStatus = OperationStatus.SUCCEEDED, amount: int | None = None
) -> Operation:
    return Operation(
        op_id=expected_op_id(op, ACCOUNTS),
        kind=OperationKind.PAYMENT if op.kind is OpKind.PAYMENT else OperationKind.TOP_UP,
        account_id=ACCOUNTS[op.account],
        principal=op.member,
        amount=op.amount if amount is None else amount,
        currency="EUR",
        status=status,
        created_at=1,
        updated_at=2,
    )


def _told(
    op: PlannedOp,
    told: Told,
    status: int | None,
    at: float,
    *,
    replayed: bool = False,
    body: bytes = b"{}",
    probe: bool = False,
) -> Attempt:
    op_id = expected_op_id(op, ACCOUNTS) if status in (201, 202, 402) else None
    return Attempt(op.index, at, told, status, op_id, replayed, body, probe)


def _checks(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings}


def test_a_clean_history_passes() -> None:
    a, b = _op(0), _op(1, kind=OpKind.TOP_UP)
    attempts = [
        _told(a, Told.NO_ANSWER, None, 0.1),
        _told(a, Told.ACCEPTED, 202, 0.5, body=b'{"id":1}'),
        _told(a, Told.ACCEPTED, 202, 0.9, replayed=True, body=b'{"id":1}'),
        _told(a, Told.REJECTED, 422, 1.0, probe=True),
        _told(b, Told.DECLINED, 402, 0.3),
    ]
    reads = [
        Read("acct_hot", 0.1, 3, 100, 0),
        Read("acct_hot", 0.2, 5, -20, 50),
        Read("acct_cold", 0.2, 1, 0, 0),
    ]
    ops = {o.op_id: o for o in (_operation(a), _operation(b, OperationStatus.FAILED))}
    assert judge(_plan(a, b), ACCOUNTS, attempts, reads, ops, []) == []


def test_an_acknowledged_payment_missing_from_the_topics_is_lost() -> None:
    a = _op()
    found = judge(_plan(a), ACCOUNTS, [_told(a, Told.ACCEPTED, 202, 0.1)], [], {}, [])
    assert _checks(found) == {ACK_LOST}


def test_a_timed_out_payment_may_be_absent_but_an_unasked_one_is_a_phantom() -> None:
    a, stranger = _op(0), _op(7)
    assert judge(_plan(a), ACCOUNTS, [_told(a, Told.NO_ANSWER, None, 0.1)], [], {}, []) == []
    ops = {o.op_id: o for o in (_operation(a), _operation(stranger))}
    found = judge(_plan(a), ACCOUNTS, [_told(a, Told.NO_ANSWER, None, 0.1)], [], ops, [])
    assert [f.check for f in found] == [PHANTOM]


def test_a_replay_that_differs_from_every_original_breaks_invariant_4() -> None:
    a = _op()
    attempts = [
        _told(a, Told.ACCEPTED, 202, 0.1, body=b'{"v":1}'),
        _told(a, Told.SUCCEEDED, 201, 0.2, replayed=True, body=b'{"v":2}'),
    ]
    found = judge(_plan(a), ACCOUNTS, attempts, [], {_operation(a).op_id: _operation(a)}, [])
    assert _checks(found) == {"inv4"}


def test_a_replay_of_an_answer_the_client_never_saw_is_fine_once_per_redis_loss() -> None:
    a = _op()
    ops = {_operation(a).op_id: _operation(a)}
    unseen = [
        _told(a, Told.NO_ANSWER, None, 0.1),
        _told(a, Told.ACCEPTED, 202, 0.5, replayed=True, body=b"A"),
    ]
    assert judge(_plan(a), ACCOUNTS, unseen, [], ops, []) == []
    two = [*unseen, _told(a, Told.ACCEPTED, 202, 0.9, replayed=True, body=b"B")]
    assert _checks(judge(_plan(a), ACCOUNTS, two, [], ops, [])) == {"inv4"}
    assert judge(_plan(a), ACCOUNTS, two, [], ops, [], redis_losses=1) == []


def test_another_payload_under_the_key_must_not_change_the_operation() -> None:
    a = _op(amount=500)
    ops = {_operation(a).op_id: _operation(a, amount=501)}
    found = judge(_plan(a), ACCOUNTS, [_told(a, Told.ACCEPTED, 202, 0.1)], [], ops, [])
    assert _checks(found) == {"inv4"}


def test_a_decline_that_later_succeeds_breaks_invariant_5() -> None:
    a = _op()
    attempts = [_told(a, Told.DECLINED, 402, 0.1)]
    found = judge(_plan(a), ACCOUNTS, attempts, [], {_operation(a).op_id: _operation(a)}, [])
    assert _checks(found) == {"inv5"}


def test_a_valid_request_refused_with_404_is_a_wrong_answer() -> None:
    a = _op()
    found = judge(_plan(a), ACCOUNTS, [_told(a, Told.REJECTED, 404, 0.1)], [], {}, [])
    assert _checks(found) == {WRONG_ANSWER}


def test_reads_below_the_overdraft_floor_or_going_back_in_version() -> None:
    reads = [
        Read("acct_hot", 0.1, 5, 10, 0),
        Read("acct_hot", 0.2, 4, 10, 0),
        Read("acct_cold", 0.3, 1, -1, 0),
    ]
    found = judge(_plan(), ACCOUNTS, [], reads, {}, [])
    assert sorted(f.check for f in found) == ["inv10", "inv2"]


def test_any_refund_at_the_psp_breaks_invariant_8() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    refund = PspMovement.model_validate(
        {"id": "re_1", "kind": "refund", "idempotency_key": "k", "amount": 100, "currency": "EUR",
         "status": "succeeded", "created_at": at}
    )  # fmt: skip
    charge = refund.model_copy(update={"id": "ch_1", "kind": "charge", "idempotency_key": "top_x"})
    assert [f.check for f in judge(_plan(), ACCOUNTS, [], [], {}, [charge, refund])] == ["inv8"]


def test_a_409_or_503_before_the_first_replay_is_not_an_original_answer() -> None:
    # Seed pause/11: the gateway was paused past the client's time-out; the retry got 409 while the first
    # request was still in progress, then a replay of the answer stored for the timed-out request.
    a = _op()
    ops = {_operation(a).op_id: _operation(a)}
    attempts = [
        _told(a, Told.NO_ANSWER, None, 0.1),
        _told(a, Told.IN_FLIGHT, 409, 5.2, body=b"in use"),
        _told(a, Told.UNAVAILABLE, 503, 6.0, body=b"down"),
        _told(a, Told.SUCCEEDED, 201, 9.4, replayed=True, body=b"A"),
        _told(a, Told.SUCCEEDED, 201, 9.9, replayed=True, body=b"A"),
    ]
    assert judge(_plan(a), ACCOUNTS, attempts, [], ops, []) == []
    other = [*attempts, _told(a, Told.SUCCEEDED, 201, 10.2, replayed=True, body=b"B")]
    assert _checks(judge(_plan(a), ACCOUNTS, other, [], ops, [])) == {"inv4"}
