"""decide() driven by random command sequences, checked against an independent reference model.

The reference model below is plain ints, strings and dicts; it restates the rules of DESIGN §3 and of the
command contract (open once; adjustments and payments are deduped by id; a reused id with another payload
is recorded, never applied; funds never go below ``-overdraft_limit``) without calling into decide()'s
helpers. After every step the machine checks decide()'s state and outputs against it, plus the
invariants that must hold whatever the model says (1, 2, 5/6, 10, 11, 12).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import dataclass

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from payments.processor.decide import Decision
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment
from payments.schemas.ledger import FUNDING, PAYOUT_CLEARING, customer_ledger_account
from payments.schemas.money import MAX_AMOUNT
from payments.schemas.state import AccountStatus, OperationStatus
from tests.processor.test_decide import Model

MAIN = "acc_main"
GHOSTS = ("acc_ghost_1", "acc_ghost_2")  # never opened
CURRENCIES = ("EUR", "USD", "JPY")
MEMBERS = ("alice", "bob", "carol")
PRINCIPALS = (*MEMBERS, "mallory")

OpCommand = AdjustBalance | RequestPayment
AnyCommand = OpenAccount | AdjustBalance | RequestPayment

# --- the reference model ---------------------------------------------------------------------------------

SUCCEEDED, DECLINED, REJECTED = "succeeded", "declined", "rejected"


@dataclass
class RefAccount:
    open_command: str | None = None  # the command id that opened it; None while never opened
    currency: str | None = None
    members: frozenset[str] = frozenset()
    overdraft: int = 0
    balance: int = 0
    version: int = 0  # one per published result


@dataclass
class RefOp:
    account_id: str
    payload: tuple[object, ...]  # what a retry must repeat to count as the same operation
    amount: int
    status: str
    code: str | None
    mismatches: int = 0


@dataclass(frozen=True)
class Expect:
    """What one command must do: nothing at all, or one result (type, code) and maybe a ledger entry."""

    noop: bool = False
    result: str | None = None
    code: str | None = None
    status: str | None = None  # the operation's status, for operation commands
    customer_net: int | None = None  # the ledger transaction's net on the customer account; None = no tx


def payload_of(cmd: OpCommand) -> tuple[object, ...]:
    if isinstance(cmd, RequestPayment):
        return ("payment", cmd.amount, cmd.currency, cmd.payee, cmd.description)
    return ("adjustment", cmd.amount, cmd.currency, cmd.reason)


def payment_fingerprint(account_id: str, amount: int, currency: str, payee: str) -> str:
    """Like the gateway's: a hash of the validated request, so another payload means another fingerprint."""
    return hashlib.sha256(f"{account_id}|{amount}|{currency}|{payee}".encode()).hexdigest()


class Reference:
    def __init__(self) -> None:
        self.accounts: dict[str, RefAccount] = defaultdict(RefAccount)
        self.ops: dict[str, RefOp] = {}

    def open(self, cmd: OpenAccount) -> Expect:
        acc = self.accounts[cmd.account_id]
        if acc.open_command == cmd.command_id:
            return Expect(noop=True)
        acc.version += 1
        if acc.open_command is not None:
            return Expect(result="command_rejected", code="account_exists")
        acc.open_command = cmd.command_id
        acc.currency = cmd.currency
        acc.members = frozenset(cmd.members)
        acc.overdraft = cmd.overdraft_limit
        return Expect(result="account_opened")

    def operation(self, cmd: OpCommand) -> Expect:
        acc = self.accounts[cmd.account_id]
        is_payment = isinstance(cmd, RequestPayment)
        known = self.ops.get(cmd.command_id)
        if known is not None:
            if known.payload == payload_of(cmd):
                return Expect(noop=True)
            acc.version += 1
            known.mismatches += 1
            return Expect(result="idempotency_mismatch", code="idempotency_key_reused", status=known.status)
        acc.version += 1
        signed = -cmd.amount if is_payment else cmd.amount
        status, code = SUCCEEDED, None
        if acc.open_command is None:
            status, code = REJECTED, "account_not_found"
        elif cmd.currency != acc.currency:
            status, code = REJECTED, "currency_mismatch"
        elif is_payment and cmd.principal not in acc.members:
            status, code = REJECTED, "not_a_member"
        elif not is_payment and cmd.amount == 0:
            status, code = REJECTED, "validation_error"
        elif acc.balance + signed < -acc.overdraft:
            status, code = DECLINED, "insufficient_funds"
        self.ops[cmd.command_id] = RefOp(cmd.account_id, payload_of(cmd), cmd.amount, status, code)
        if status == SUCCEEDED:
            acc.balance += signed
            kind = "payment_succeeded" if is_payment else "adjustment_applied"
            return Expect(result=kind, status=status, customer_net=signed)
        if is_payment:
            kind = "payment_declined" if status == DECLINED else "payment_rejected"
        else:
            kind = "command_rejected"
        return Expect(result=kind, code=code, status=status)


# --- the machine ----------------------------------------------------------------------------------------

# Weighted towards commands that can succeed, so that funds run out (and declines happen) often.
accounts = st.sampled_from((MAIN,) * 8 + GHOSTS)
currencies = st.sampled_from(("EUR",) * 6 + CURRENCIES)
open_currencies = st.sampled_from(("EUR",) * 4 + CURRENCIES)
members_lists = st.lists(st.sampled_from(MEMBERS), max_size=4).map(lambda m: ["alice", *m])
principals = st.sampled_from(("alice", "alice", *PRINCIPALS))
adjust_amounts = st.one_of(
    st.integers(min_value=-3_000, max_value=6_000),
    st.integers(min_value=1, max_value=6_000),
    st.sampled_from((0, 1, -1, MAX_AMOUNT, -MAX_AMOUNT)),
)
pay_amounts = st.one_of(st.integers(min_value=1, max_value=3_000), st.sampled_from((1, MAX_AMOUNT)))


class DecideMachine(RuleBasedStateMachine):
    sent = Bundle("sent")  # operation commands already decided once
    opens = Bundle("opens")  # open commands already decided once

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, Model] = {}
        self.ref = Reference()
        self.clock = itertools.count(1)
        self.ids = itertools.count(1)
        self.first_status: dict[str, OperationStatus] = {}

    # -- helpers --

    def model(self, account_id: str) -> Model:
        return self.models.setdefault(account_id, Model())

    def run(self, cmd: AnyCommand, expect: Expect) -> Decision:
        model = self.model(cmd.account_id)
        before = model.account
        d = model.apply(cmd)
        event(f"{type(cmd).__name__} -> {expect.result or 'no-op'} {expect.code or ''}")
        if expect.noop:
            assert d.is_noop, d
            assert d.results == ()
            assert d.ledger == ()
            assert model.account is before
            return d
        assert d.account is not None
        (result,) = d.results
        assert result.type.value == expect.result, (result.type, result.code, expect)
        assert (result.code.value if result.code else None) == expect.code
        assert result.command_id == cmd.command_id
        assert result.account == d.account
        assert result.occurred_at == cmd.issued_at
        if isinstance(cmd, OpenAccount):
            assert d.operation is None
            assert result.operation is None
        else:
            assert d.operation is not None
            assert result.operation == d.operation
            assert d.operation.status.value == expect.status
        if expect.customer_net is None:
            assert d.ledger == ()
            assert result.ledger_tx_id is None
        else:
            (tx,) = d.ledger
            assert tx.net_for(customer_ledger_account(cmd.account_id)) == expect.customer_net
            other = PAYOUT_CLEARING if isinstance(cmd, RequestPayment) else FUNDING
            assert tx.net_for(other) == -expect.customer_net
            assert result.ledger_tx_id == tx.tx_id
            assert tx.op_id == cmd.command_id
        return d

    def open_cmd(self, command_id: str, currency: str, members: list[str], overdraft: int) -> OpenAccount:
        return OpenAccount(
            command_id=command_id,
            account_id=MAIN,
            issued_at=next(self.clock),
            currency=currency,
            members=tuple(members),
            overdraft_limit=overdraft,
            principal="admin",
        )

    def payment(
        self, command_id: str, account_id: str, principal: str, amount: int, currency: str, payee: str
    ) -> RequestPayment:
        return RequestPayment(
            command_id=command_id,
            account_id=account_id,
            issued_at=next(self.clock),
            amount=amount,
            currency=currency,
            payee=payee,
            principal=principal,
            fingerprint=payment_fingerprint(account_id, amount, currency, payee),
        )

    def adjustment(
        self, command_id: str, account_id: str, amount: int, currency: str, reason: str
    ) -> AdjustBalance:
        return AdjustBalance(
            command_id=command_id,
            account_id=account_id,
            issued_at=next(self.clock),
            amount=amount,
            currency=currency,
            reason=reason,
            principal="admin",
        )

    def decide_op(self, cmd: OpCommand) -> None:
        d = self.run(cmd, self.ref.operation(cmd))
        if d.operation is not None:
            self.first_status.setdefault(d.operation.op_id, d.operation.status)

    # -- rules --

    @initialize(
        target=opens,
        really=st.sampled_from((True, True, True, False)),
        currency=open_currencies,
        members=members_lists,
        overdraft=st.sampled_from((0, 0, 100, 1_000)),
    )
    def open_first(
        self, really: bool, currency: str, members: list[str], overdraft: int
    ) -> OpenAccount | object:
        if not really:
            return multiple()
        cmd = self.open_cmd("open_main", currency, members, overdraft)
        self.run(cmd, self.ref.open(cmd))
        return cmd

    @rule(
        target=opens,
        command_id=st.sampled_from(("open_main", "open_other")),
        currency=open_currencies,
        members=st.one_of(members_lists, st.lists(st.sampled_from(MEMBERS), max_size=2)),
        overdraft=st.integers(min_value=0, max_value=2_000),
    )
    def open_account(self, command_id: str, currency: str, members: list[str], overdraft: int) -> OpenAccount:
        cmd = self.open_cmd(command_id, currency, members, overdraft)
        self.run(cmd, self.ref.open(cmd))
        return cmd

    @rule(cmd=opens)
    def redeliver_open(self, cmd: OpenAccount) -> None:
        # Account-level commands are deduped only by "is it the command that opened the account": a
        # redelivered open of another id is rejected again (see the report); the model says the same.
        self.run(cmd, self.ref.open(cmd))

    @rule(target=sent, account_id=accounts, amount=adjust_amounts, currency=currencies)
    def adjust(self, account_id: str, amount: int, currency: str) -> AdjustBalance:
        cmd = self.adjustment(f"adj_{next(self.ids)}", account_id, amount, currency, "correction")
        self.decide_op(cmd)
        return cmd

    @rule(
        target=sent,
        account_id=accounts,
        principal=principals,
        amount=pay_amounts,
        currency=currencies,
    )
    def pay(self, account_id: str, principal: str, amount: int, currency: str) -> RequestPayment:
        cmd = self.payment(f"pay_{next(self.ids)}", account_id, principal, amount, currency, "shop")
        self.decide_op(cmd)
        return cmd

    @rule(cmd=sent, retry=st.booleans())
    def redeliver(self, cmd: OpCommand, retry: bool) -> None:
        """Exact redelivery, or a client retry (same payload, later issued_at): no outputs either way."""
        if retry:
            cmd = cmd.model_copy(update={"issued_at": next(self.clock)})
        self.decide_op(cmd)

    @rule(cmd=sent, variant=st.sampled_from(("amount", "target", "kind")))
    def reuse_id(self, cmd: OpCommand, variant: str) -> None:
        """Same operation id, another payload: recorded as a mismatch, never applied."""
        amount = cmd.amount + 1 if abs(cmd.amount + 1) <= MAX_AMOUNT else cmd.amount - 1
        if isinstance(cmd, RequestPayment):
            if variant == "kind":
                other: OpCommand = self.adjustment(cmd.command_id, cmd.account_id, 5, cmd.currency, "x")
            else:
                payee = cmd.payee + "-other" if variant == "target" else cmd.payee
                amount = max(amount, 1) if variant == "amount" else cmd.amount
                other = self.payment(
                    cmd.command_id, cmd.account_id, cmd.principal, amount, cmd.currency, payee
                )
        elif variant == "kind":
            other = self.payment(cmd.command_id, cmd.account_id, "alice", 5, cmd.currency, "shop")
        else:
            reason = cmd.reason + "-other" if variant == "target" else cmd.reason
            other = self.adjustment(
                cmd.command_id,
                cmd.account_id,
                amount if variant == "amount" else cmd.amount,
                cmd.currency,
                reason,
            )
        assert payload_of(other) != payload_of(cmd)
        self.decide_op(other)

    # -- invariants --

    @invariant()
    def agrees_with_reference(self) -> None:
        for account_id, model in self.models.items():
            ref = self.ref.accounts[account_id]
            acct = model.account
            assert acct is not None
            assert acct.version == ref.version
            assert acct.posted == ref.balance
            assert acct.status is (AccountStatus.OPEN if ref.open_command else AccountStatus.ABSENT)
            if ref.open_command is not None:
                assert acct.currency == ref.currency
                assert set(acct.members) == ref.members
                assert acct.overdraft_limit == ref.overdraft
        for op_id, ref_op in self.ref.ops.items():
            op = self.models[ref_op.account_id].ops[op_id]
            assert (op.status.value, op.failure_code.value if op.failure_code else None) == (
                ref_op.status,
                ref_op.code,
            ), op_id
            assert op.amount == ref_op.amount
            assert op.mismatched_commands == ref_op.mismatches
        assert sum(len(m.ops) for m in self.models.values()) == len(self.ref.ops)

    @invariant()
    def state_invariants_hold(self) -> None:
        for account_id, model in self.models.items():
            acct = model.account
            assert acct is not None
            customer = customer_ledger_account(account_id)
            results = [r for d in model.decisions for r in d.results]
            ledger = [tx for d in model.decisions for tx in d.ledger]
            # 2: never below the overdraft limit (every published state, not only the last one).
            assert all(r.account.available >= -r.account.overdraft_limit for r in results)
            assert acct.available >= -acct.overdraft_limit
            # 11: the balance is a replay of the ledger.
            assert acct.posted == sum(tx.net_for(customer) for tx in ledger)
            # 1: every transaction balances (sum over its ledger accounts is zero), no degenerate posting.
            for tx in ledger:
                touched = {p.debit for p in tx.postings} | {p.credit for p in tx.postings}
                assert sum(tx.net_for(a) for a in touched) == 0, tx
                assert all(p.amount > 0 and p.debit != p.credit for p in tx.postings), tx
            # 10: dense seq from 1, equal to the version and to the event id.
            assert [r.seq for r in results] == list(range(1, len(results) + 1))
            assert all(r.account.version == r.seq and r.event_id == f"{account_id}:{r.seq}" for r in results)
            assert acct.version == len(results)
            # 12: each ledger transaction is paired with exactly one result of the same seq.
            with_tx = {r.ledger_tx_id: r.seq for r in results if r.ledger_tx_id is not None}
            assert len(with_tx) == len(ledger)
            assert all(with_tx.get(tx.tx_id) == tx.seq for tx in ledger)
            # 5/6: an operation's status never changes once decided (declined/rejected never succeed).
            for r in results:
                if r.operation is not None:
                    assert r.operation.status is self.first_status[r.operation.op_id], r
            for op_id, op in model.ops.items():
                assert op.status is self.first_status[op_id]


DecideMachine.TestCase.settings = settings(
    max_examples=2_000,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_decide_stateful = DecideMachine.TestCase
