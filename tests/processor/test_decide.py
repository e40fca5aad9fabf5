"""decide() is pure: these tests run with no I/O and check outcomes, balances, sequence and ledger."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from payments.processor.decide import Decision, decide, operation_key
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.errors import ErrorCode
from payments.schemas.ledger import FUNDING, PAYOUT_CLEARING, customer_ledger_account
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationStatus,
    ResultType,
)

ACC = "acc_1"


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


def pay(amount: int, pid: str = "pay_1", principal: str = "alice", currency: str = "EUR") -> RequestPayment:
    return RequestPayment(
        command_id=pid,
        account_id=ACC,
        issued_at=3,
        amount=amount,
        currency=currency,
        payee="shop",
        principal=principal,
        fingerprint=("f" * 16) + str(amount),
    )


class Model:
    """Applies decisions the way the processor does, holding state in two dicts."""

    def __init__(self) -> None:
        self.account: AccountSnapshot | None = None
        self.ops: dict[str, Operation] = {}
        self.decisions: list[Decision] = []

    def apply(self, cmd: OpenAccount | AdjustBalance | RequestPayment) -> Decision:
        op_id = operation_key(cmd)
        d = decide(self.account, self.ops.get(op_id) if op_id else None, cmd)
        if d.account is not None:
            self.account = d.account
        if d.operation is not None:
            self.ops[d.operation.op_id] = d.operation
        self.decisions.append(d)
        return d


def funded(amount: int, overdraft: int = 0) -> Model:
    m = Model()
    m.apply(open_cmd(overdraft))
    m.apply(fund(amount))
    return m


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


def test_payment_debits_and_posts_balanced_ledger() -> None:
    m = funded(1000)
    d = m.apply(pay(300))
    assert m.account is not None
    assert (m.account.posted, m.account.available, m.account.version) == (700, 700, 3)
    (tx,) = d.ledger
    (result,) = d.results
    assert result.type is ResultType.PAYMENT_SUCCEEDED
    assert result.ledger_tx_id == tx.tx_id
    assert tx.seq == result.seq == 3
    assert tx.net_for(customer_ledger_account(ACC)) == -300
    assert tx.net_for(PAYOUT_CLEARING) == 300


def test_over_limit_payment_is_declined_with_no_ledger() -> None:
    m = funded(100)
    d = m.apply(pay(101))
    assert d.ledger == ()
    assert d.results[0].type is ResultType.PAYMENT_DECLINED
    assert d.results[0].code is ErrorCode.INSUFFICIENT_FUNDS
    assert m.account is not None
    assert m.account.posted == 100


def test_overdraft_limit_allows_going_negative_up_to_the_limit() -> None:
    m = funded(100, overdraft=50)
    assert m.apply(pay(150, "p1")).results[0].type is ResultType.PAYMENT_SUCCEEDED
    assert m.apply(pay(1, "p2")).results[0].type is ResultType.PAYMENT_DECLINED
    assert m.account is not None
    assert m.account.available == -50


def test_duplicate_payment_is_noop_and_decline_never_flips() -> None:
    m = funded(100)
    m.apply(pay(150))
    m.apply(fund(1000, "adj_2"))
    assert m.apply(pay(150)).is_noop  # the retry after funding does not succeed
    assert m.ops["pay_1"].status is OperationStatus.DECLINED


def test_same_payment_id_with_other_payload_is_recorded_not_applied() -> None:
    m = funded(1000)
    m.apply(pay(100))
    d = m.apply(pay(200))
    assert d.ledger == ()
    assert d.results[0].type is ResultType.IDEMPOTENCY_MISMATCH
    assert m.ops["pay_1"].amount == 100
    assert m.ops["pay_1"].mismatched_commands == 1
    assert m.account is not None
    assert m.account.posted == 900


def test_non_member_and_unknown_account_and_currency_are_rejected() -> None:
    m = funded(1000)
    assert m.apply(pay(10, "p1", principal="mallory")).results[0].code is ErrorCode.NOT_A_MEMBER
    assert m.apply(pay(10, "p2", currency="USD")).results[0].code is ErrorCode.CURRENCY_MISMATCH
    d = Model().apply(pay(10, "p3"))
    assert d.results[0].code is ErrorCode.ACCOUNT_NOT_FOUND
    assert d.account is not None
    assert d.account.status is AccountStatus.ABSENT


def test_negative_adjustment_cannot_breach_overdraft() -> None:
    m = funded(100)
    d = m.apply(fund(-101, "adj_2"))
    assert d.results[0].code is ErrorCode.INSUFFICIENT_FUNDS
    d = m.apply(fund(-100, "adj_3"))
    assert d.ledger[0].net_for(FUNDING) == 100


@settings(max_examples=300, deadline=None)
@given(
    funding=st.integers(min_value=0, max_value=10_000),
    overdraft=st.integers(min_value=0, max_value=500),
    amounts=st.lists(st.integers(min_value=1, max_value=3_000), max_size=40),
    dup_every=st.integers(min_value=2, max_value=7),
)
def test_random_payment_runs_keep_invariants(
    funding: int, overdraft: int, amounts: list[int], dup_every: int
) -> None:
    m = Model()
    m.apply(open_cmd(overdraft))
    if funding:
        m.apply(fund(funding))
    for i, amount in enumerate(amounts):
        m.apply(pay(amount, f"p{i}"))
        if i % dup_every == 0:
            m.apply(pay(amount, f"p{i}"))  # redelivery
        assert m.account is not None
        assert m.account.available >= -overdraft  # invariant 2
    acct = m.account
    assert acct is not None
    ledger = [tx for d in m.decisions for tx in d.ledger]
    results = [r for d in m.decisions for r in d.results]
    # Invariant 11: the balance is a replay of the ledger.
    assert acct.posted == sum(tx.net_for(customer_ledger_account(ACC)) for tx in ledger)
    # Invariant 10: dense, monotone sequence numbers, one per result.
    assert [r.seq for r in results] == list(range(1, len(results) + 1))
    # Invariant 12: every ledger transaction has its result with the same seq, and vice versa.
    assert {tx.seq for tx in ledger} == {r.seq for r in results if r.ledger_tx_id}
    succeeded = sum(
        1 for o in m.ops.values() if o.kind == "payment" and o.status is OperationStatus.SUCCEEDED
    )
    assert succeeded == sum(1 for tx in ledger if tx.kind == "payment")
