"""decide() is pure: these tests run with no I/O and check outcomes, balances, holds, sequence and ledger."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.processor.decide import Decision, Policy, decide, operation_key
from payments.schemas.commands import (
    AddMember,
    AdjustBalance,
    AnyCommand,
    ExpireOperation,
    OpenAccount,
    RecordPspOutcome,
    RemoveMember,
    RequestPayment,
    RequestTopUp,
)
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import (
    CHARGE_CLEARING,
    FUNDING,
    PAYOUT_CLEARING,
    SUSPENSE,
    LedgerTransaction,
    customer_ledger_account,
)
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus, PspRequestKind
from payments.schemas.state import (
    TERMINAL_STATUSES,
    AccountSnapshot,
    AccountStatus,
    HoldStatus,
    Operation,
    OperationStatus,
    ResultEvent,
    ResultType,
)

ACC = "acc_1"
CUSTOMER = customer_ledger_account(ACC)
TTL = 1_000  # ms: a short operation deadline so the expiry tests read easily
POLICY = Policy(operation_ttl_ms=TTL)
OK, FAIL, UNKNOWN, PROCESSING = (
    PspOutcomeStatus.SUCCEEDED,
    PspOutcomeStatus.FAILED,
    PspOutcomeStatus.UNKNOWN,
    PspOutcomeStatus.PROCESSING,
)


def open_cmd(overdraft: int = 0, members: tuple[str, ...] = ("alice", "bob")) -> OpenAccount:
    return OpenAccount(
        command_id="open_1",
        account_id=ACC,
        issued_at=1,
        currency="EUR",
        members=members,
        overdraft_limit=overdraft,
        principal="admin",
    )


def fund(amount: int, cid: str = "adj_1") -> AdjustBalance:
    return AdjustBalance(
        command_id=cid,
        account_id=ACC,
        issued_at=2,
        amount=amount,
        currency="EUR",
        reason="funding",
        principal="admin",
    )


def pay(
    amount: int, pid: str = "pay_1", principal: str = "alice", currency: str = "EUR", issued_at: int = 3
) -> RequestPayment:
    return RequestPayment(
        command_id=pid,
        account_id=ACC,
        issued_at=issued_at,
        amount=amount,
        currency=currency,
        payee="shop",
        principal=principal,
        fingerprint=("f" * 16) + str(amount),
    )


def top_up(amount: int, tid: str = "top_1", principal: str = "alice", issued_at: int = 3) -> RequestTopUp:
    return RequestTopUp(
        command_id=tid,
        account_id=ACC,
        issued_at=issued_at,
        amount=amount,
        currency="EUR",
        payment_method="tok_ok",
        principal=principal,
        fingerprint=("t" * 16) + str(amount),
    )


def outcome(
    op_id: str,
    status: PspOutcomeStatus,
    issued_at: int = 10,
    amount: int | None = None,
    cid: str | None = None,
) -> RecordPspOutcome:
    return RecordPspOutcome(
        command_id=cid or f"out_{op_id}_{status.value}_{issued_at}",
        account_id=ACC,
        issued_at=issued_at,
        op_id=op_id,
        status=status,
        source=PspOutcomeSource.PSP_CALLER,
        psp_movement_id=f"mv_{op_id}" if status is OK else None,
        psp_failure_code="card_declined" if status is FAIL else None,
        amount=amount,
    )


def expire(op_id: str, issued_at: int) -> ExpireOperation:
    return ExpireOperation(
        command_id=f"exp_{op_id}_{issued_at}", account_id=ACC, issued_at=issued_at, op_id=op_id
    )


def add_member(user: str, account_id: str = ACC) -> AddMember:
    return AddMember(
        command_id=f"add_{user}", account_id=account_id, issued_at=5, user_id=user, principal="admin"
    )


def remove_member(user: str) -> RemoveMember:
    return RemoveMember(command_id=f"rm_{user}", account_id=ACC, issued_at=5, user_id=user, principal="admin")


class Model:
    """Applies decisions the way the processor does, holding state in two dicts."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.account: AccountSnapshot | None = None
        self.ops: dict[str, Operation] = {}
        self.decisions: list[Decision] = []
        self.policy = policy

    def apply(self, cmd: AnyCommand) -> Decision:
        op_id = operation_key(cmd)
        d = decide(self.account, self.ops.get(op_id) if op_id else None, cmd, self.policy)
        if d.account is not None:
            self.account = d.account
        if d.operation is not None:
            self.ops[d.operation.op_id] = d.operation
        self.decisions.append(d)
        return d

    @property
    def acct(self) -> AccountSnapshot:
        assert self.account is not None
        return self.account

    @property
    def results(self) -> list[ResultEvent]:
        return [r for d in self.decisions for r in d.results]

    @property
    def ledger(self) -> list[LedgerTransaction]:
        return [tx for d in self.decisions for tx in d.ledger]

    def balances(self) -> dict[str, int]:
        """Every ledger account's balance (credits minus debits) replayed from the ledger."""
        totals: dict[str, int] = defaultdict(int)
        for tx in self.ledger:
            for p in tx.postings:
                totals[p.credit] += p.amount
                totals[p.debit] -= p.amount
        return dict(totals)


def funded(amount: int, overdraft: int = 0) -> Model:
    m = Model()
    m.apply(open_cmd(overdraft))
    m.apply(fund(amount))
    return m


def only(d: Decision) -> ResultEvent:
    (r,) = d.results
    return r


def check_invariants(m: Model) -> None:
    """The invariants of docs/design.md §3 that a single account's decision history must satisfy."""
    acct, results, ledger = m.acct, m.results, m.ledger
    # 1: the sum over all ledger accounts (clearing and suspense included) is zero.
    assert sum(m.balances().values()) == 0
    # 2: every published state, not only the last.
    assert all(r.account.available >= -r.account.overdraft_limit for r in results)
    # 7: held equals the sum of open holds.
    open_holds = [o.hold.amount for o in m.ops.values() if o.hold and o.hold.status is HoldStatus.OPEN]
    assert acct.held == sum(open_holds)
    assert all(o.is_terminal == (o.hold.status is not HoldStatus.OPEN) for o in m.ops.values() if o.hold)
    # 10: dense seq; 11: posted is a replay of the ledger; 12: ledger and results pair up by seq.
    assert [r.seq for r in results] == list(range(1, len(results) + 1))
    assert acct.posted == m.balances().get(CUSTOMER, 0)
    assert {tx.seq: tx.tx_id for tx in ledger} == {r.seq: r.ledger_tx_id for r in results if r.ledger_tx_id}


# --- accounts ----------------------------------------------------------------------------------------------


def test_open_account_publishes_opened_with_seq_1() -> None:
    d = Model().apply(open_cmd())
    assert d.account is not None
    assert d.account.status is AccountStatus.OPEN
    assert d.account.members == ("alice", "bob")
    assert [(r.type, r.seq, r.event_id) for r in d.results] == [(ResultType.ACCOUNT_OPENED, 1, f"{ACC}:1")]


def test_reopen_with_same_command_is_a_noop_and_other_command_is_rejected() -> None:
    m = Model()
    m.apply(open_cmd())
    assert m.apply(open_cmd()).is_noop
    other = open_cmd().model_copy(update={"command_id": "open_2"})
    d = m.apply(other)
    assert d.results[0].type is ResultType.COMMAND_REJECTED
    assert d.results[0].code is ErrorCode.ACCOUNT_EXISTS


def test_membership_add_and_remove_are_idempotent_and_bump_the_version() -> None:
    m = funded(100)
    r = only(m.apply(add_member("carol")))
    assert (r.type, r.detail, r.seq) == (ResultType.MEMBER_ADDED, "carol", 3)
    assert list(m.acct.members) == ["alice", "bob", "carol"]
    assert m.apply(add_member("carol")).is_noop
    r = only(m.apply(remove_member("bob")))
    assert (r.type, r.detail, r.seq) == (ResultType.MEMBER_REMOVED, "bob", 4)
    assert list(m.acct.members) == ["alice", "carol"]
    assert m.apply(remove_member("bob")).is_noop
    assert m.apply(remove_member("nobody")).is_noop
    assert (m.acct.version, m.acct.posted, m.acct.held) == (4, 100, 0)
    assert m.ledger == [tx for d in m.decisions[:2] for tx in d.ledger]


def test_membership_change_on_a_missing_account_is_rejected() -> None:
    m = Model()
    r = only(m.apply(add_member("carol")))
    assert (r.type, r.code) == (ResultType.COMMAND_REJECTED, ErrorCode.ACCOUNT_NOT_FOUND)
    assert m.acct.status is AccountStatus.ABSENT
    assert m.acct.members == ()
    r = only(m.apply(remove_member("carol")))
    assert (r.type, r.code, r.seq) == (ResultType.COMMAND_REJECTED, ErrorCode.ACCOUNT_NOT_FOUND, 2)


def test_removed_member_cannot_pay_but_their_in_flight_payment_completes() -> None:
    m = funded(1000)
    m.apply(pay(300, "p_bob", principal="bob"))
    m.apply(remove_member("bob"))
    r = only(m.apply(pay(10, "p_bob_2", principal="bob")))
    assert (r.type, r.code) == (ResultType.PAYMENT_REJECTED, ErrorCode.NOT_A_MEMBER)
    assert m.decisions[-1].psp_requests == ()
    assert m.acct.held == 300  # the rejected payment holds nothing
    r = only(m.apply(outcome("p_bob", OK)))
    assert r.type is ResultType.PAYMENT_SUCCEEDED
    assert (m.acct.posted, m.acct.held) == (700, 0)
    check_invariants(m)


# --- payments: hold, then the PSP outcome --------------------------------------------------------------------


def test_payment_places_a_hold_and_requests_a_transfer_without_ledger() -> None:
    m = funded(1000)
    d = m.apply(pay(300, issued_at=50))
    assert (m.acct.posted, m.acct.held, m.acct.available, m.acct.version) == (1000, 300, 700, 3)
    assert d.ledger == ()
    r = only(d)
    assert (r.type, r.seq, r.ledger_tx_id) == (ResultType.PAYMENT_RESERVED, 3, None)
    op = m.ops["pay_1"]
    assert r.operation == op
    assert op.status is OperationStatus.RESERVED
    assert op.hold is not None
    assert (op.hold.amount, op.hold.status) == (300, HoldStatus.OPEN)
    assert op.deadline_at == 50 + TTL
    (req,) = d.psp_requests
    assert (req.op_id, req.kind, req.amount, req.currency, req.payee) == (
        "pay_1",
        PspRequestKind.TRANSFER,
        300,
        "EUR",
        "shop",
    )
    assert (req.seq, req.issued_at, req.deadline_at) == (3, 50, 50 + TTL)


def test_hold_then_success_captures_the_hold_and_posts_a_balanced_debit() -> None:
    m = funded(1000)
    m.apply(pay(300))
    d = m.apply(outcome("pay_1", OK))
    assert (m.acct.posted, m.acct.held, m.acct.available, m.acct.version) == (700, 0, 700, 4)
    (tx,) = d.ledger
    r = only(d)
    assert r.type is ResultType.PAYMENT_SUCCEEDED
    assert r.ledger_tx_id == tx.tx_id
    assert tx.seq == r.seq == 4
    assert (tx.op_id, tx.kind) == ("pay_1", "payment")
    assert tx.net_for(CUSTOMER) == -300
    assert tx.net_for(PAYOUT_CLEARING) == 300
    op = m.ops["pay_1"]
    assert op.status is OperationStatus.SUCCEEDED
    assert op.hold is not None
    assert op.hold.status is HoldStatus.CAPTURED
    assert op.psp_movement_id == "mv_pay_1"
    assert d.psp_requests == ()
    # The psp-caller and the webhook both report the success: the second is a no-op.
    assert m.apply(outcome("pay_1", OK, issued_at=11)).is_noop
    assert m.balances() == {FUNDING: -1000, CUSTOMER: 700, PAYOUT_CLEARING: 300}
    check_invariants(m)


def test_hold_then_failure_releases_the_hold_with_no_ledger() -> None:
    m = funded(1000)
    m.apply(pay(300))
    d = m.apply(outcome("pay_1", FAIL))
    assert d.ledger == ()
    r = only(d)
    assert (r.type, r.code) == (ResultType.PAYMENT_FAILED, ErrorCode.PSP_DECLINED)
    assert (m.acct.posted, m.acct.held, m.acct.available) == (1000, 0, 1000)
    op = m.ops["pay_1"]
    assert (op.status, op.failure_code, op.psp_failure_code) == (
        OperationStatus.FAILED,
        ErrorCode.PSP_DECLINED,
        "card_declined",
    )
    assert op.hold is not None
    assert op.hold.status is HoldStatus.RELEASED
    assert m.apply(outcome("pay_1", FAIL, issued_at=11)).is_noop
    check_invariants(m)


@pytest.mark.parametrize("final", [OK, FAIL])
def test_unknown_keeps_the_hold_until_resolved(final: PspOutcomeStatus) -> None:
    m = funded(1000)
    m.apply(pay(300))
    r = only(m.apply(outcome("pay_1", UNKNOWN)))
    assert (r.type, m.ops["pay_1"].status) == (ResultType.PAYMENT_UNKNOWN, OperationStatus.UNKNOWN)
    assert (m.acct.posted, m.acct.held) == (1000, 300)
    version = m.acct.version
    assert m.apply(outcome("pay_1", UNKNOWN, issued_at=11)).is_noop
    assert m.apply(outcome("pay_1", PROCESSING, issued_at=12)).is_noop  # never a step back from unknown
    assert m.acct.version == version
    d = m.apply(outcome("pay_1", final, issued_at=13))
    assert (m.acct.posted, m.acct.held) == ((700, 0) if final is OK else (1000, 0))
    assert len(d.ledger) == (1 if final is OK else 0)
    # Stale unknown/processing news about an ended payment changes nothing.
    assert m.apply(outcome("pay_1", UNKNOWN, issued_at=14)).is_noop
    assert m.apply(outcome("pay_1", PROCESSING, issued_at=15)).is_noop
    check_invariants(m)


def test_processing_is_news_only_while_reserved() -> None:
    m = funded(1000)
    m.apply(pay(300))
    r = only(m.apply(outcome("pay_1", PROCESSING)))
    assert (r.type, m.ops["pay_1"].status) == (ResultType.PAYMENT_PROCESSING, OperationStatus.PROCESSING)
    assert m.acct.held == 300
    assert m.apply(outcome("pay_1", PROCESSING, issued_at=11)).is_noop
    assert only(m.apply(outcome("pay_1", UNKNOWN, issued_at=12))).type is ResultType.PAYMENT_UNKNOWN
    assert [h.status for h in m.ops["pay_1"].history] == [
        OperationStatus.RESERVED,
        OperationStatus.PROCESSING,
        OperationStatus.UNKNOWN,
    ]
    check_invariants(m)


def test_expiry_before_the_deadline_is_a_noop_and_at_the_deadline_releases_the_hold() -> None:
    m = funded(1000)
    m.apply(pay(300, issued_at=100))
    deadline = 100 + TTL
    assert m.apply(expire("pay_1", deadline - 1)).is_noop
    assert m.ops["pay_1"].status is OperationStatus.RESERVED
    assert m.acct.held == 300
    d = m.apply(expire("pay_1", deadline))
    r = only(d)
    assert (r.type, r.code) == (ResultType.PAYMENT_FAILED, ErrorCode.OPERATION_EXPIRED)
    assert d.ledger == ()
    op = m.ops["pay_1"]
    assert op.hold is not None
    assert (op.status, op.hold.status) == (OperationStatus.FAILED, HoldStatus.EXPIRED)
    assert (m.acct.posted, m.acct.held) == (1000, 0)
    assert m.apply(expire("pay_1", deadline + 5)).is_noop  # terminal: a second expiry changes nothing
    check_invariants(m)


def test_expiry_of_an_unknown_payment_past_its_deadline_releases_the_hold() -> None:
    m = funded(1000)
    m.apply(pay(300, issued_at=100))
    m.apply(outcome("pay_1", UNKNOWN, issued_at=200))
    assert m.apply(expire("pay_1", 100 + TTL - 1)).is_noop
    assert only(m.apply(expire("pay_1", 100 + TTL))).code is ErrorCode.OPERATION_EXPIRED
    assert m.acct.held == 0
    check_invariants(m)


def test_late_success_after_expiry_posts_once_to_suspense_however_often_delivered() -> None:
    m = funded(1000)
    m.apply(pay(300, issued_at=100))
    m.apply(expire("pay_1", 100 + TTL))
    late = [m.apply(outcome("pay_1", OK, issued_at=2_000 + i)) for i in range(3)]
    r = only(late[0])
    assert (r.type, r.code) == (ResultType.PSP_DISCREPANCY, ErrorCode.PSP_DISCREPANCY)
    (tx,) = late[0].ledger
    assert (tx.kind, tx.seq, r.ledger_tx_id) == ("late_psp_success", r.seq, tx.tx_id)
    assert tx.net_for(SUSPENSE) == -300
    assert tx.net_for(PAYOUT_CLEARING) == 300
    assert tx.net_for(CUSTOMER) == 0  # the balance is not touched: the hold already ended
    assert late[1].is_noop
    assert late[2].is_noop
    assert m.apply(outcome("pay_1", FAIL, issued_at=3_000)).is_noop
    op = m.ops["pay_1"]
    assert (op.status, op.late_success, op.discrepancies) == (OperationStatus.FAILED, True, 1)
    assert (m.acct.posted, m.acct.held) == (1000, 0)
    assert sum(1 for t in m.ledger if t.op_id == "pay_1") == 1
    check_invariants(m)


def test_success_after_a_psp_failure_is_posted_once_to_suspense() -> None:
    m = funded(1000)
    m.apply(pay(300))
    m.apply(outcome("pay_1", FAIL))
    d = m.apply(outcome("pay_1", OK, issued_at=11, amount=299))
    (tx,) = d.ledger
    assert tx.net_for(SUSPENSE) == -299  # the amount the PSP says it moved
    assert m.ops["pay_1"].status is OperationStatus.FAILED
    assert m.apply(outcome("pay_1", OK, issued_at=12)).is_noop
    check_invariants(m)


def test_failure_after_success_is_a_discrepancy_without_ledger_and_the_success_stands() -> None:
    m = funded(1000)
    m.apply(pay(300))
    m.apply(outcome("pay_1", OK))
    d = m.apply(outcome("pay_1", FAIL, issued_at=11))
    r = only(d)
    assert (r.type, r.code, d.ledger) == (ResultType.PSP_DISCREPANCY, ErrorCode.PSP_DISCREPANCY, ())
    op = m.ops["pay_1"]
    assert op.hold is not None
    assert (op.status, op.hold.status, op.discrepancies) == (
        OperationStatus.SUCCEEDED,
        HoldStatus.CAPTURED,
        1,
    )
    assert (m.acct.posted, m.acct.held) == (700, 0)
    assert m.apply(expire("pay_1", 10**9)).is_noop
    check_invariants(m)


def test_success_reporting_another_amount_is_recorded_as_a_discrepancy() -> None:
    m = funded(1000)
    m.apply(pay(300))
    d = m.apply(outcome("pay_1", OK, amount=301))
    assert d.ledger[0].net_for(CUSTOMER) == -300  # we post what we held; the difference is for an operator
    assert m.ops["pay_1"].discrepancies == 1
    check_invariants(m)


def test_outcome_and_expiry_for_an_unknown_operation_or_an_adjustment_are_noops() -> None:
    m = funded(1000)
    for cmd in (outcome("nope", OK), expire("nope", 10**9), outcome("adj_1", FAIL), expire("adj_1", 10**9)):
        assert m.apply(cmd).is_noop
    assert m.acct.version == 2


@pytest.mark.parametrize("status", [OperationStatus.DECLINED, OperationStatus.REJECTED])
def test_psp_success_for_a_refused_payment_goes_to_suspense_never_to_success(status: OperationStatus) -> None:
    m = funded(100)
    m.apply(pay(150) if status is OperationStatus.DECLINED else pay(10, principal="mallory"))
    assert m.ops["pay_1"].status is status
    assert m.decisions[-1].psp_requests == ()
    d = m.apply(outcome("pay_1", OK))
    assert [tx.kind for tx in d.ledger] == ["late_psp_success"]
    assert m.ops["pay_1"].status is status
    assert m.apply(outcome("pay_1", OK, issued_at=11)).is_noop
    assert m.apply(outcome("pay_1", FAIL, issued_at=12)).is_noop
    assert (m.acct.posted, m.acct.held) == (100, 0)
    check_invariants(m)


# --- top-ups -----------------------------------------------------------------------------------------------


def test_top_up_requests_a_charge_and_credits_only_on_success() -> None:
    m = funded(100)
    d = m.apply(top_up(500, issued_at=40))
    r = only(d)
    assert (r.type, r.seq, d.ledger) == (ResultType.TOP_UP_PROCESSING, 3, ())
    assert (m.acct.posted, m.acct.held, m.acct.version) == (100, 0, 3)
    (req,) = d.psp_requests
    assert (req.op_id, req.kind, req.amount, req.payment_method) == (
        "top_1",
        PspRequestKind.CHARGE,
        500,
        "tok_ok",
    )
    assert (req.seq, req.deadline_at) == (3, 40 + TTL)
    assert m.ops["top_1"].hold is None
    d = m.apply(outcome("top_1", OK))
    (tx,) = d.ledger
    assert only(d).type is ResultType.TOP_UP_SUCCEEDED
    assert (tx.net_for(CUSTOMER), tx.net_for(CHARGE_CLEARING), tx.kind) == (500, -500, "top_up")
    assert (m.acct.posted, m.acct.available) == (600, 600)
    assert m.apply(outcome("top_1", OK, issued_at=11)).is_noop
    assert m.apply(top_up(500, issued_at=41)).is_noop  # a client retry of the same top-up
    check_invariants(m)


def test_top_up_success_reporting_another_amount_credits_the_requested_amount() -> None:
    m = funded(100)
    m.apply(top_up(500))
    d = m.apply(outcome("top_1", OK, amount=499))
    assert d.ledger[0].net_for(CUSTOMER) == 500  # the charge we asked for; the difference is for an operator
    assert (m.acct.posted, m.ops["top_1"].discrepancies) == (600, 1)
    check_invariants(m)


def test_top_up_failure_and_expiry_credit_nothing() -> None:
    m = funded(100)
    m.apply(top_up(500, "top_1"))
    m.apply(top_up(700, "top_2", issued_at=10))
    assert only(m.apply(outcome("top_1", UNKNOWN))).type is ResultType.TOP_UP_UNKNOWN
    r = only(m.apply(outcome("top_1", FAIL, issued_at=11)))
    assert (r.type, r.code) == (ResultType.TOP_UP_FAILED, ErrorCode.PSP_DECLINED)
    assert m.apply(expire("top_2", 10 + TTL - 1)).is_noop
    r = only(m.apply(expire("top_2", 10 + TTL)))
    assert (r.type, r.code) == (ResultType.TOP_UP_FAILED, ErrorCode.OPERATION_EXPIRED)
    assert (m.acct.posted, m.acct.held) == (100, 0)
    # The charge went through after all: booked once against suspense, never to the account.
    d = m.apply(outcome("top_2", OK, issued_at=5_000))
    (tx,) = d.ledger
    assert (tx.net_for(CHARGE_CLEARING), tx.net_for(SUSPENSE), tx.net_for(CUSTOMER)) == (-700, 700, 0)
    assert m.acct.posted == 100
    check_invariants(m)


def test_top_up_by_a_non_member_is_rejected_without_a_psp_request() -> None:
    m = funded(100)
    d = m.apply(top_up(500, principal="mallory"))
    r = only(d)
    assert (r.type, r.code, d.psp_requests) == (ResultType.TOP_UP_REJECTED, ErrorCode.NOT_A_MEMBER, ())


# --- funds, declines and idempotency --------------------------------------------------------------------------


def test_over_limit_payment_is_declined_with_no_ledger_and_holds_count_against_funds() -> None:
    m = funded(100)
    d = m.apply(pay(101))
    assert (d.ledger, d.psp_requests) == ((), ())
    assert d.results[0].type is ResultType.PAYMENT_DECLINED
    assert d.results[0].code is ErrorCode.INSUFFICIENT_FUNDS
    assert (m.acct.posted, m.acct.held) == (100, 0)
    assert only(m.apply(pay(60, "p2"))).type is ResultType.PAYMENT_RESERVED
    assert only(m.apply(pay(41, "p3"))).type is ResultType.PAYMENT_DECLINED  # only 40 available
    assert only(m.apply(pay(40, "p4"))).type is ResultType.PAYMENT_RESERVED
    assert m.acct.available == 0
    m.apply(outcome("p2", FAIL))  # a released hold frees the funds again
    assert only(m.apply(pay(60, "p5"))).type is ResultType.PAYMENT_RESERVED
    check_invariants(m)


def test_overdraft_limit_allows_going_negative_up_to_the_limit() -> None:
    m = funded(100, overdraft=50)
    assert m.apply(pay(150, "p1")).results[0].type is ResultType.PAYMENT_RESERVED
    assert m.apply(pay(1, "p2")).results[0].type is ResultType.PAYMENT_DECLINED
    assert m.acct.available == -50
    m.apply(outcome("p1", OK))
    assert (m.acct.posted, m.acct.held, m.acct.available) == (-50, 0, -50)
    assert m.apply(pay(1, "p3")).results[0].type is ResultType.PAYMENT_DECLINED
    check_invariants(m)


def test_duplicate_payment_is_noop_and_decline_never_flips() -> None:
    m = funded(100)
    m.apply(pay(150))
    m.apply(fund(1000, "adj_2"))
    assert m.apply(pay(150)).is_noop  # the retry after funding does not succeed
    assert m.ops["pay_1"].status is OperationStatus.DECLINED


def test_duplicate_reserved_payment_places_no_second_hold_nor_request() -> None:
    m = funded(1000)
    m.apply(pay(300))
    assert m.apply(pay(300)).is_noop
    assert m.apply(pay(300, issued_at=99)).is_noop  # a client retry, later
    assert m.acct.held == 300
    assert sum(len(d.psp_requests) for d in m.decisions) == 1


def test_same_payment_id_with_other_payload_is_recorded_not_applied() -> None:
    m = funded(1000)
    m.apply(pay(100))
    d = m.apply(pay(200))
    assert (d.ledger, d.psp_requests) == ((), ())
    assert d.results[0].type is ResultType.IDEMPOTENCY_MISMATCH
    assert d.results[0].code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert m.ops["pay_1"].amount == 100
    assert m.ops["pay_1"].mismatched_commands == 1
    assert m.ops["pay_1"].status is OperationStatus.RESERVED
    assert (m.acct.posted, m.acct.held) == (1000, 100)
    assert only(m.apply(top_up(200, "pay_1"))).type is ResultType.IDEMPOTENCY_MISMATCH  # nor another kind


def test_non_member_and_unknown_account_and_currency_are_rejected() -> None:
    m = funded(1000)
    assert m.apply(pay(10, "p1", principal="mallory")).results[0].code is ErrorCode.NOT_A_MEMBER
    assert m.apply(pay(10, "p2", currency="USD")).results[0].code is ErrorCode.CURRENCY_MISMATCH
    assert all(d.psp_requests == () for d in m.decisions)
    assert m.acct.held == 0
    d = Model().apply(pay(10, "p3"))
    assert d.results[0].code is ErrorCode.ACCOUNT_NOT_FOUND
    assert d.account is not None
    assert d.account.status is AccountStatus.ABSENT


def test_negative_adjustment_cannot_breach_overdraft_nor_take_held_funds() -> None:
    m = funded(100)
    d = m.apply(fund(-101, "adj_2"))
    assert d.results[0].code is ErrorCode.INSUFFICIENT_FUNDS
    m.apply(pay(30))
    assert m.apply(fund(-71, "adj_3")).results[0].code is ErrorCode.INSUFFICIENT_FUNDS
    d = m.apply(fund(-70, "adj_4"))
    assert d.ledger[0].net_for(FUNDING) == 70
    assert (m.acct.posted, m.acct.held, m.acct.available) == (30, 30, 0)
    m.apply(outcome("pay_1", OK))
    assert (m.acct.posted, m.acct.held) == (0, 0)
    check_invariants(m)


@pytest.mark.parametrize("cmd", [outcome("pay_1", OK), expire("pay_1", 10**9)], ids=["outcome", "expire"])
def test_an_outcome_keyed_by_another_account_moves_none_of_its_money(
    cmd: RecordPspOutcome | ExpireOperation,
) -> None:
    """The processor stores operations per partition by id alone (``o:<op_id>``), so a command keyed by
    account B can be handed account A's operation; it must not touch B's balance or B's ledger account."""
    m = funded(1000)
    m.apply(pay(300))
    other = decide(None, None, open_cmd().model_copy(update={"account_id": "acc_2"})).account
    assert other is not None
    d = decide(other, m.ops["pay_1"], cmd.model_copy(update={"account_id": "acc_2"}), POLICY)
    after = d.account or other
    assert (after.posted, after.held) == (0, 0)
    assert all(tx.net_for(customer_ledger_account("acc_2")) == 0 for tx in d.ledger)
    assert d.is_noop  # the news is mis-routed: nothing changes, on either account
    assert m.ops["pay_1"].status is OperationStatus.RESERVED


def test_a_payment_reusing_another_accounts_operation_id_is_rejected_without_showing_it() -> None:
    m = funded(1000)
    m.apply(pay(300))
    other = decide(None, None, open_cmd().model_copy(update={"account_id": "acc_2"})).account
    assert other is not None
    d = decide(other, m.ops["pay_1"], pay(5).model_copy(update={"account_id": "acc_2"}), POLICY)
    (res,) = d.results
    assert res.type is ResultType.COMMAND_REJECTED
    assert res.code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert res.operation is None
    assert d.operation is None
    assert d.ledger == ()
    assert d.psp_requests == ()


# --- properties --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    funding=st.integers(min_value=0, max_value=10_000),
    overdraft=st.integers(min_value=0, max_value=500),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=3_000),
            st.lists(st.sampled_from([*PspOutcomeStatus, "expire", "redeliver"]), max_size=3),
        ),
        max_size=30,
    ),
)
def test_random_payment_runs_keep_invariants(
    funding: int, overdraft: int, steps: list[tuple[int, list[PspOutcomeStatus | str]]]
) -> None:
    m = Model()
    m.apply(open_cmd(overdraft))
    if funding:
        m.apply(fund(funding))
    for i, (amount, then) in enumerate(steps):
        m.apply(pay(amount, f"p{i}", issued_at=i))
        for j, what in enumerate(then):
            if what == "expire":
                m.apply(expire(f"p{i}", i + TTL))
            elif what == "redeliver":
                m.apply(pay(amount, f"p{i}", issued_at=i))
            else:
                m.apply(outcome(f"p{i}", PspOutcomeStatus(what), issued_at=100 + j))
        assert m.acct.available >= -overdraft  # invariant 2
    check_invariants(m)
    # Invariant 3, locally: a succeeded payment has exactly one posting of its own, nothing else has one.
    for op in m.ops.values():
        own = [tx for tx in m.ledger if tx.op_id == op.op_id and tx.kind == op.kind.value]
        assert len(own) == (1 if op.status is OperationStatus.SUCCEEDED else 0), op
        late = [tx for tx in m.ledger if tx.op_id == op.op_id and tx.kind == "late_psp_success"]
        assert len(late) == int(op.late_success)
        assert op.status in TERMINAL_STATUSES or op.hold is not None
