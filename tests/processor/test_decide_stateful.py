"""decide() driven by random command sequences, checked against an independent reference model.

The reference model below is plain ints, strings and dicts. It restates the account and PSP rules
(docs/design.md §1, §2 steps 3-6 and the ``psp_flow`` docstring) without calling into decide()'s helpers:
open once; members; adjustments, payments and top-ups deduped by id, a reused id with another payload
recorded and never applied; a payment holds funds and asks for one transfer, a top-up asks for one charge;
PSP outcomes (duplicated, reordered, contradicting) and expiries move an operation monotonically, and a
PSP success after the operation ended otherwise is posted once to suspense.

Commands flow through a ``Partition`` that stores state the way the processor does (accounts by id,
operations by id alone, for every account of the partition). After every step the machine checks
decide()'s state and outputs against the reference, plus the invariants of docs/design.md §3 that must hold
whatever the model says: 1, 2, 3 (per operation), 6, 7, 10, 11, 12 and one PSP request per PSP operation.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

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
from payments.schemas.ledger import LedgerTransaction, customer_ledger_account
from payments.schemas.money import MAX_AMOUNT
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus, PspRequest
from payments.schemas.state import AccountSnapshot, Operation, ResultEvent

MAIN = "acc_main"
GHOSTS = ("acc_ghost_1", "acc_ghost_2")  # never opened
CURRENCIES = ("EUR", "USD", "JPY")
MEMBERS = ("alice", "bob", "carol")
PRINCIPALS = (*MEMBERS, "mallory")
TTL = 1_000  # ms, the operation deadline after a payment or top-up is decided
POLICY = Policy(operation_ttl_ms=TTL)

OpCommand = AdjustBalance | RequestPayment | RequestTopUp
PspCommand = RecordPspOutcome | ExpireOperation

# --- the reference model ---------------------------------------------------------------------------------
# Ledger account names and status strings are spelled out here on purpose, not imported.

SUSPENSE_ACC, PAYOUTS_ACC, CHARGES_ACC, FUNDING_ACC = (
    "suspense",
    "clearing:psp-payouts",
    "clearing:psp-charges",
    "equity:funding",
)
TERMINAL = frozenset({"succeeded", "failed", "declined", "rejected"})


@dataclass
class RefAccount:
    open_command: str | None = None  # the command id that opened it; None while never opened
    currency: str | None = None
    members: frozenset[str] = frozenset()
    overdraft: int = 0
    posted: int = 0
    held: int = 0
    version: int = 0  # one per published result


@dataclass
class RefOp:
    account_id: str
    kind: str  # payment, top_up, adjustment
    payload: tuple[object, ...]  # what a retry must repeat to count as the same operation
    amount: int
    status: str
    code: str | None
    hold: str | None = None  # payments past the funds check: open, captured, released, expired
    deadline: int | None = None
    mismatches: int = 0
    discrepancies: int = 0
    late_success: bool = False


@dataclass(frozen=True)
class Expect:
    """What one command must do: nothing at all, or one result, maybe one ledger tx, maybe a PSP request."""

    noop: bool = False
    result: str | None = None
    code: str | None = None
    status: str | None = None  # the operation's status after the command, for operation commands
    tx: tuple[str, str, int] | None = None  # (debit, credit, amount) of the one expected posting
    psp: str | None = None  # the kind of the one expected PSP request


NOOP = Expect(noop=True)


def payload_of(cmd: OpCommand) -> tuple[object, ...]:
    if isinstance(cmd, RequestPayment):
        return ("payment", cmd.account_id, cmd.amount, cmd.currency, cmd.payee)
    if isinstance(cmd, RequestTopUp):
        return ("top_up", cmd.account_id, cmd.amount, cmd.currency, cmd.payment_method)
    return ("adjustment", cmd.account_id, cmd.amount, cmd.currency, cmd.reason)


def fingerprint(payload: tuple[object, ...]) -> str:
    """Like the gateway's: a hash of the validated request, so another payload means another fingerprint."""
    return hashlib.sha256(repr(payload).encode()).hexdigest()


class Reference:
    def __init__(self) -> None:
        self.accounts: dict[str, RefAccount] = defaultdict(RefAccount)
        self.ops: dict[str, RefOp] = {}
        self.ledger: Counter[str] = Counter()  # every ledger account's credits minus debits

    def _post(self, debit: str, credit: str, amount: int) -> tuple[str, str, int]:
        self.ledger[debit] -= amount
        self.ledger[credit] += amount
        return debit, credit, amount

    def open(self, cmd: OpenAccount) -> Expect:
        acc = self.accounts[cmd.account_id]
        if acc.open_command == cmd.command_id:
            return NOOP
        acc.version += 1
        if acc.open_command is not None:
            return Expect(result="command_rejected", code="account_exists")
        acc.open_command = cmd.command_id
        acc.currency = cmd.currency
        acc.members = frozenset(cmd.members)
        acc.overdraft = cmd.overdraft_limit
        return Expect(result="account_opened")

    def membership(self, cmd: AddMember | RemoveMember) -> Expect:
        acc = self.accounts[cmd.account_id]
        adding = isinstance(cmd, AddMember)
        if acc.open_command is None:
            acc.version += 1
            return Expect(result="command_rejected", code="account_not_found")
        if (cmd.user_id in acc.members) == adding:
            return NOOP
        acc.version += 1
        acc.members = acc.members | {cmd.user_id} if adding else acc.members - {cmd.user_id}
        return Expect(result="member_added" if adding else "member_removed")

    def operation(self, cmd: OpCommand) -> Expect:
        acc = self.accounts[cmd.account_id]
        payload = payload_of(cmd)
        kind = str(payload[0])
        known = self.ops.get(cmd.command_id)
        if known is not None:
            if known.payload == payload:
                return NOOP
            acc.version += 1
            known.mismatches += 1
            return Expect(result="idempotency_mismatch", code="idempotency_key_reused", status=known.status)
        acc.version += 1
        available = acc.posted - acc.held
        status, code = {"payment": "reserved", "top_up": "processing", "adjustment": "succeeded"}[kind], None
        if acc.open_command is None:
            status, code = "rejected", "account_not_found"
        elif cmd.currency != acc.currency:
            status, code = "rejected", "currency_mismatch"
        elif kind != "adjustment" and cmd.principal not in acc.members:
            status, code = "rejected", "not_a_member"
        elif kind == "adjustment" and cmd.amount == 0:
            status, code = "rejected", "validation_error"
        elif (
            kind != "top_up"
            and available + (-cmd.amount if kind == "payment" else cmd.amount) < -acc.overdraft
        ):
            status, code = "declined", "insufficient_funds"  # top-ups credit: never declined for funds
        op = self.ops[cmd.command_id] = RefOp(cmd.account_id, kind, payload, cmd.amount, status, code)
        if code is not None:
            result = "command_rejected" if kind == "adjustment" else f"{kind}_{status}"
            return Expect(result=result, code=code, status=status)
        if kind == "adjustment":
            acc.posted += cmd.amount
            customer = f"customer:{cmd.account_id}"
            debit, credit = (FUNDING_ACC, customer) if cmd.amount > 0 else (customer, FUNDING_ACC)
            tx = self._post(debit, credit, abs(cmd.amount))
            return Expect(result="adjustment_applied", status=status, tx=tx)
        op.deadline = cmd.issued_at + TTL
        if kind == "payment":
            acc.held += cmd.amount
            op.hold = "open"
            return Expect(result="payment_reserved", status=status, psp="transfer")
        return Expect(result="top_up_processing", status=status, psp="charge")

    def outcome(self, cmd: RecordPspOutcome) -> Expect:
        op = self.ops.get(cmd.op_id)
        if op is None or op.kind == "adjustment":
            return NOOP
        acc = self.accounts[op.account_id]
        customer = f"customer:{op.account_id}"
        status = cmd.status.value
        if op.status in TERMINAL:
            if status in ("unknown", "processing"):
                return NOOP
            if op.status == "succeeded":
                if status == "succeeded":
                    return NOOP
                acc.version += 1
                op.discrepancies += 1
                return Expect(result="psp_discrepancy", code="psp_discrepancy", status=op.status)
            if status == "failed" or op.late_success:
                return NOOP
            # The PSP moved money for an operation we ended without money: once, to suspense.
            acc.version += 1
            op.late_success = True
            op.discrepancies += 1
            amount = cmd.amount or op.amount
            if op.kind == "payment":
                tx = self._post(SUSPENSE_ACC, PAYOUTS_ACC, amount)
            else:
                tx = self._post(CHARGES_ACC, SUSPENSE_ACC, amount)
            return Expect(result="psp_discrepancy", code="psp_discrepancy", status=op.status, tx=tx)
        if status == "succeeded":
            acc.version += 1
            op.status = "succeeded"
            if cmd.amount is not None and cmd.amount != op.amount:
                op.discrepancies += 1
            if op.kind == "payment":
                acc.posted -= op.amount
                acc.held -= op.amount
                op.hold = "captured"
                tx = self._post(customer, PAYOUTS_ACC, op.amount)
            else:
                acc.posted += op.amount
                tx = self._post(CHARGES_ACC, customer, op.amount)
            return Expect(result=f"{op.kind}_succeeded", status="succeeded", tx=tx)
        if status == "failed":
            return self._fail(op, acc, "psp_declined", "released")
        if status == "unknown":
            if op.status == "unknown":
                return NOOP
        elif op.status != "reserved":  # processing: news only while reserved
            return NOOP
        acc.version += 1
        op.status = status
        return Expect(result=f"{op.kind}_{status}", status=status)

    def expire(self, cmd: ExpireOperation) -> Expect:
        op = self.ops.get(cmd.op_id)
        if op is None or op.kind == "adjustment" or op.status in TERMINAL:
            return NOOP
        assert op.deadline is not None
        if cmd.issued_at < op.deadline:
            return NOOP
        return self._fail(op, self.accounts[op.account_id], "operation_expired", "expired")

    def _fail(self, op: RefOp, acc: RefAccount, code: str, hold_end: str) -> Expect:
        acc.version += 1
        op.status, op.code = "failed", code
        if op.hold == "open":
            acc.held -= op.amount
            op.hold = hold_end
        return Expect(result=f"{op.kind}_failed", code=code, status="failed")


# --- what decide() is run against: the processor's state layout ----------------------------------------


@dataclass
class Partition:
    """One input partition's state as the processor keeps it: ``a:<account>`` and ``o:<op_id>`` (every
    account's operations in one namespace), and every output published, per account, in order."""

    accounts: dict[str, AccountSnapshot] = field(default_factory=dict)
    ops: dict[str, Operation] = field(default_factory=dict)
    results: dict[str, list[ResultEvent]] = field(default_factory=lambda: defaultdict(list))
    ledger: dict[str, list[LedgerTransaction]] = field(default_factory=lambda: defaultdict(list))
    psp_requests: list[PspRequest] = field(default_factory=list)

    def apply(self, cmd: AnyCommand) -> Decision:
        op_id = operation_key(cmd)
        d = decide(self.accounts.get(cmd.account_id), self.ops.get(op_id) if op_id else None, cmd, POLICY)
        if d.account is not None:
            self.accounts[cmd.account_id] = d.account
        if d.operation is not None:
            self.ops[d.operation.op_id] = d.operation
        self.results[cmd.account_id] += d.results
        self.ledger[cmd.account_id] += d.ledger
        self.psp_requests += d.psp_requests
        return d


# --- the machine ----------------------------------------------------------------------------------------

# Weighted towards commands that can succeed, so that funds run out (and declines happen) often.
accounts = st.sampled_from((MAIN,) * 12 + GHOSTS)
currencies = st.sampled_from(("EUR",) * 12 + CURRENCIES)
open_currencies = st.sampled_from(("EUR",) * 8 + CURRENCIES)
members_lists = st.lists(st.sampled_from(MEMBERS), max_size=4).map(lambda m: ["alice", *m])
principals = st.sampled_from(("alice",) * 4 + PRINCIPALS)
users = st.sampled_from((*MEMBERS, "mallory"))
adjust_amounts = st.one_of(
    st.integers(min_value=-3_000, max_value=6_000),
    st.integers(min_value=1, max_value=6_000),
    st.sampled_from((0, 1, -1, MAX_AMOUNT, -MAX_AMOUNT)),
)
# Mostly amounts the balance can cover; about one in twenty the largest amount there is.
pay_amounts = st.integers(min_value=1, max_value=2_100).map(lambda n: MAX_AMOUNT if n > 2_000 else n)
tokens = st.sampled_from(("tok_ok", "tok_ok", "tok_declined"))
psp_statuses = st.sampled_from(
    (PspOutcomeStatus.SUCCEEDED,) * 3
    + (PspOutcomeStatus.FAILED, PspOutcomeStatus.UNKNOWN) * 2
    + tuple(PspOutcomeStatus)
)
# Which operation PSP news is about: mostly a payment or top-up that went to the PSP, sometimes any
# operation (declined, rejected, an adjustment), sometimes an id never decided here.
targets = st.sampled_from(("live",) * 6 + ("any", "any", "stranger"))
# Relative to the operation's deadline: well before, just before, at, just after, long after.
expiry_offsets = st.sampled_from((-TTL, -1, 0, 1, 5 * TTL))


class DecideMachine(RuleBasedStateMachine):
    sent = Bundle("sent")  # operation commands already decided once
    psp_news = Bundle("psp_news")  # outcomes and expiries already decided once

    def __init__(self) -> None:
        super().__init__()
        self.part = Partition()
        self.ref = Reference()
        self.clock = itertools.count(1)
        self.ids = itertools.count(1)
        # op id -> its first terminal status seen anywhere (published result or stored state).
        self.terminal: dict[str, str] = {}
        # op id -> the ended hold status, once ended (invariant 7: a hold ends exactly once).
        self.hold_end: dict[str, str] = {}
        # account id -> op id -> open hold amount, as replayed from the published results in order.
        self.open_holds: dict[str, dict[str, int]] = defaultdict(dict)
        self.expected_requests: dict[str, str] = {}  # op id -> the kind of its one PSP request
        self.decided: list[OpCommand] = []  # every operation command, as first decided
        self.live: list[OpCommand] = []  # those that went to the PSP (reserved payments, top-ups)

    # -- helpers --

    def run(self, cmd: AnyCommand, expect: Expect) -> Decision:
        d = self.part.apply(cmd)
        event(f"{type(cmd).__name__} -> {expect.result or 'no-op'} {expect.code or ''}")
        if expect.noop:
            assert d.is_noop, d
            assert (d.results, d.ledger, d.psp_requests) == ((), (), ())
            return d
        assert d.account is not None
        (result,) = d.results
        assert (result.type.value, result.code.value if result.code else None) == (expect.result, expect.code)
        assert (result.command_id, result.occurred_at) == (cmd.command_id, cmd.issued_at)
        assert result.account == d.account
        if isinstance(cmd, OpenAccount | AddMember | RemoveMember):
            assert d.operation is None
            assert result.operation is None
        else:
            assert d.operation is not None
            assert result.operation == d.operation
            assert d.operation.status.value == expect.status
        self._check_tx(cmd, d, result, expect)
        self._check_psp_request(cmd, d, result, expect)
        self._observe(result)
        return d

    def _check_tx(self, cmd: AnyCommand, d: Decision, result: ResultEvent, expect: Expect) -> None:
        if expect.tx is None:
            assert d.ledger == ()
            assert result.ledger_tx_id is None
            return
        (tx,) = d.ledger
        (posting,) = tx.postings
        assert (posting.debit, posting.credit, posting.amount) == expect.tx
        assert (result.ledger_tx_id, tx.seq, tx.account_id) == (tx.tx_id, result.seq, cmd.account_id)
        assert d.operation is not None
        assert tx.op_id == d.operation.op_id

    def _check_psp_request(self, cmd: AnyCommand, d: Decision, result: ResultEvent, expect: Expect) -> None:
        if expect.psp is None:
            assert d.psp_requests == ()
            return
        assert isinstance(cmd, RequestPayment | RequestTopUp)
        (req,) = d.psp_requests
        assert (req.op_id, req.account_id, req.kind.value) == (cmd.command_id, cmd.account_id, expect.psp)
        assert (req.amount, req.currency, req.seq) == (cmd.amount, cmd.currency, result.seq)
        assert (req.issued_at, req.deadline_at) == (cmd.issued_at, cmd.issued_at + TTL)
        if isinstance(cmd, RequestPayment):
            assert (req.payee, req.payment_method) == (cmd.payee, None)
        else:
            assert (req.payee, req.payment_method) == (None, cmd.payment_method)
        assert cmd.command_id not in self.expected_requests
        self.expected_requests[cmd.command_id] = expect.psp

    def _observe(self, r: ResultEvent) -> None:
        """Invariants 2, 6, 7 on one published result, replayed in order the way a consumer would."""
        assert r.account.available >= -r.account.overdraft_limit  # 2
        holds = self.open_holds[r.account_id]
        op = r.operation
        if op is not None:
            self._monotone(op)
            if op.hold is not None and op.hold.status.value == "open":
                holds[op.op_id] = op.hold.amount
            else:
                holds.pop(op.op_id, None)
        assert r.account.held == sum(holds.values())  # 7

    def _monotone(self, op: Operation) -> None:
        status = op.status.value
        if op.op_id in self.terminal:
            assert status == self.terminal[op.op_id], (op.op_id, self.terminal[op.op_id], status)  # 6
        elif status in TERMINAL:
            self.terminal[op.op_id] = status
        if op.hold is None:
            return
        hold = op.hold.status.value
        assert op.hold.amount == op.amount
        if op.op_id in self.hold_end:
            assert hold == self.hold_end[op.op_id], op  # 7: ended once, never again
        elif hold != "open":
            self.hold_end[op.op_id] = hold
        # A hold is open exactly while its payment is not terminal, and ends the way the payment ended.
        allowed = {"succeeded": {"captured"}, "failed": {"released", "expired"}}.get(status, {"open"})
        assert hold in allowed, op

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
            fingerprint=fingerprint(("payment", account_id, amount, currency, payee)),
        )

    def top_up_cmd(
        self, command_id: str, account_id: str, principal: str, amount: int, currency: str, token: str
    ) -> RequestTopUp:
        return RequestTopUp(
            command_id=command_id,
            account_id=account_id,
            issued_at=next(self.clock),
            amount=amount,
            currency=currency,
            payment_method=token,
            principal=principal,
            fingerprint=fingerprint(("top_up", account_id, amount, currency, token)),
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

    def decide_op(self, cmd: OpCommand, first: bool = False) -> None:
        expect = self.ref.operation(cmd)
        self.run(cmd, expect)
        if first:
            self.decided.append(cmd)
            if expect.psp is not None:
                self.live.append(cmd)

    def decide_news(self, cmd: PspCommand) -> None:
        expect = self.ref.outcome(cmd) if isinstance(cmd, RecordPspOutcome) else self.ref.expire(cmd)
        self.run(cmd, expect)

    # -- rules: accounts --

    @initialize(
        really=st.sampled_from((True,) * 9 + (False,)),
        currency=open_currencies,
        members=members_lists,
        overdraft=st.sampled_from((0, 0, 100, 1_000)),
        funding=st.sampled_from((0, 2_000, 10_000, 10_000)),
    )
    def open_first(
        self, really: bool, currency: str, members: list[str], overdraft: int, funding: int
    ) -> None:
        """Usually an open, funded account to start from, so that payments get as far as the PSP."""
        if not really:
            return
        cmd = self.open_cmd("open_main", currency, members, overdraft)
        self.run(cmd, self.ref.open(cmd))
        if funding:
            self.decide_op(
                self.adjustment(f"adj_{next(self.ids)}", MAIN, funding, currency, "funding"), first=True
            )

    @rule(
        command_id=st.sampled_from(("open_main", "open_other")),
        currency=open_currencies,
        members=st.one_of(members_lists, st.lists(st.sampled_from(MEMBERS), max_size=2)),
        overdraft=st.integers(min_value=0, max_value=2_000),
    )
    def open_account(self, command_id: str, currency: str, members: list[str], overdraft: int) -> None:
        """``open_main`` again is a redelivery (a no-op, whatever it says); any other id is rejected, and
        rejected again when redelivered: opens are deduped only by the id that opened the account."""
        cmd = self.open_cmd(command_id, currency, members, overdraft)
        self.run(cmd, self.ref.open(cmd))

    @rule(account_id=accounts, user=users, adding=st.booleans())
    def change_member(self, account_id: str, user: str, adding: bool) -> None:
        kind = AddMember if adding else RemoveMember
        cmd = kind(
            command_id=f"member_{next(self.ids)}",
            account_id=account_id,
            issued_at=next(self.clock),
            user_id=user,
            principal="admin",
        )
        self.run(cmd, self.ref.membership(cmd))

    # -- rules: money commands --

    @rule(target=sent, account_id=accounts, amount=adjust_amounts, currency=currencies)
    def adjust(self, account_id: str, amount: int, currency: str) -> AdjustBalance:
        cmd = self.adjustment(f"adj_{next(self.ids)}", account_id, amount, currency, "correction")
        self.decide_op(cmd, first=True)
        return cmd

    @rule(target=sent, account_id=accounts, principal=principals, amount=pay_amounts, currency=currencies)
    def pay(self, account_id: str, principal: str, amount: int, currency: str) -> RequestPayment:
        cmd = self.payment(f"pay_{next(self.ids)}", account_id, principal, amount, currency, "shop")
        self.decide_op(cmd, first=True)
        return cmd

    @rule(target=sent, data=st.data(), amount=pay_amounts, top_up=st.booleans())
    def member_pays_or_tops_up(self, data: st.DataObject, amount: int, top_up: bool) -> OpCommand:
        """A payment or top-up by a current member of the main account in its currency, so that only the
        funds check stands between it and the PSP (the rules around it mostly fail some other check)."""
        ref = self.ref.accounts.get(MAIN)
        members = sorted(ref.members) if ref is not None else []
        principal = data.draw(st.sampled_from(members), label="member") if members else "alice"
        currency = ref.currency if ref is not None and ref.currency else "EUR"
        cmd: OpCommand
        if top_up:
            cmd = self.top_up_cmd(f"top_{next(self.ids)}", MAIN, principal, amount, currency, "tok_ok")
        else:
            cmd = self.payment(f"pay_{next(self.ids)}", MAIN, principal, amount, currency, "shop")
        self.decide_op(cmd, first=True)
        return cmd

    @rule(
        target=sent,
        account_id=accounts,
        principal=principals,
        amount=pay_amounts,
        currency=currencies,
        token=tokens,
    )
    def top_up(self, account_id: str, principal: str, amount: int, currency: str, token: str) -> RequestTopUp:
        cmd = self.top_up_cmd(f"top_{next(self.ids)}", account_id, principal, amount, currency, token)
        self.decide_op(cmd, first=True)
        return cmd

    @rule(cmd=sent, retry=st.booleans())
    def redeliver(self, cmd: OpCommand, retry: bool) -> None:
        """Exact redelivery, or a client retry (same payload, later issued_at): no outputs either way."""
        if retry:
            cmd = cmd.model_copy(update={"issued_at": next(self.clock)})
        self.decide_op(cmd)

    @rule(cmd=sent, variant=st.sampled_from(("amount", "target", "payment", "top_up", "adjustment")))
    def reuse_id(self, cmd: OpCommand, variant: str) -> None:
        """Same operation id, another payload (or another kind of operation): recorded, never applied."""
        kind = str(payload_of(cmd)[0]) if variant in ("amount", "target") else variant
        amount = cmd.amount
        if variant == "amount":
            amount = amount + 1 if amount < MAX_AMOUNT else amount - 1
        if kind != "adjustment":
            amount = max(abs(amount), 1)  # payments and top-ups are positive
        other_target = variant == "target"
        principal = getattr(cmd, "principal", "alice")
        cid, acc, cur = cmd.command_id, cmd.account_id, cmd.currency
        other: OpCommand
        if kind == "payment":
            other = self.payment(cid, acc, principal, amount, cur, "shop-other" if other_target else "shop")
        elif kind == "top_up":
            other = self.top_up_cmd(
                cid, acc, principal, amount, cur, "tok_other" if other_target else "tok_ok"
            )
        else:
            other = self.adjustment(
                cid, acc, amount, cur, "correction-other" if other_target else "correction"
            )
        if payload_of(other) == payload_of(cmd):
            return  # another kind rebuilt as the very same request cannot happen; kept for safety
        self.decide_op(other)

    # -- rules: PSP outcomes and expiries --

    def pick(self, data: st.DataObject, target: str) -> tuple[str, str, int]:
        """(op id, account id, amount) of the operation an outcome or expiry is about."""
        pool = self.live if target == "live" and self.live else self.decided if target != "stranger" else []
        if not pool:
            # An id this partition never decided: the settlement report's business, a no-op here.
            return "stranger", data.draw(accounts, label="stranger's account"), 1
        cmd = data.draw(st.sampled_from(pool), label="operation")
        return cmd.command_id, cmd.account_id, abs(cmd.amount) or 1

    @rule(
        target=psp_news,
        data=st.data(),
        which=targets,
        status=psp_statuses,
        amount=st.sampled_from(("none", "none", "same", "other")),
        source=st.sampled_from(tuple(PspOutcomeSource)),
    )
    def psp_outcome(
        self, data: st.DataObject, which: str, status: PspOutcomeStatus, amount: str, source: PspOutcomeSource
    ) -> RecordPspOutcome:
        """An outcome for a known operation (mostly a live payment or top-up), any number of times and in
        any order (psp-caller, webhook and reconciler all report): duplicates, contradictions, stale news."""
        return self._outcome(data, which, status, amount, source)

    @rule(target=psp_news, data=st.data(), status=psp_statuses)
    def psp_caller_reports(self, data: st.DataObject, status: PspOutcomeStatus) -> RecordPspOutcome:
        """The psp-caller's answer for an operation that went to the PSP (the common case, so more often)."""
        return self._outcome(data, "live", status, "none", PspOutcomeSource.PSP_CALLER)

    def _outcome(
        self, data: st.DataObject, which: str, status: PspOutcomeStatus, amount: str, source: PspOutcomeSource
    ) -> RecordPspOutcome:
        op_id, account_id, same = self.pick(data, which)
        reported = {"none": None, "same": same, "other": same - 7 if same > 7 else same + 7}[amount]
        out = RecordPspOutcome(
            command_id=f"out_{next(self.ids)}",
            account_id=account_id,
            issued_at=next(self.clock),
            op_id=op_id,
            status=status,
            source=source,
            psp_movement_id=f"mv_{op_id}" if status is PspOutcomeStatus.SUCCEEDED else None,
            psp_failure_code="card_declined" if status is PspOutcomeStatus.FAILED else None,
            amount=reported,
        )
        self.decide_news(out)
        return out

    @rule(target=psp_news, data=st.data(), which=targets, offset=expiry_offsets)
    def expire(self, data: st.DataObject, which: str, offset: int) -> ExpireOperation:
        """The reconciler's expiry, timed relative to the deadline the operation got when first decided."""
        op_id, account_id, _ = self.pick(data, which)
        ref = self.ref.ops.get(op_id)
        deadline = ref.deadline if ref is not None else None
        at = max(0, (next(self.clock) if deadline is None else deadline) + offset)
        exp = ExpireOperation(
            command_id=f"exp_{next(self.ids)}", account_id=account_id, issued_at=at, op_id=op_id
        )
        self.decide_news(exp)
        return exp

    @rule(cmd=psp_news)
    def redeliver_news(self, cmd: PspCommand) -> None:
        """An earlier outcome or expiry again, exactly: a duplicate webhook, or one arriving out of order."""
        self.decide_news(cmd)

    # -- invariants --

    @invariant()
    def agrees_with_reference(self) -> None:
        assert set(self.part.accounts) == set(self.ref.accounts)
        for account_id, ref in self.ref.accounts.items():
            acct = self.part.accounts[account_id]
            assert (acct.version, acct.posted, acct.held) == (ref.version, ref.posted, ref.held), account_id
            assert acct.status.value == ("open" if ref.open_command else "absent")
            if ref.open_command is not None:
                assert (acct.currency, frozenset(acct.members), acct.overdraft_limit) == (
                    ref.currency,
                    ref.members,
                    ref.overdraft,
                )
        assert set(self.part.ops) == set(self.ref.ops)
        for op_id, r in self.ref.ops.items():
            op = self.part.ops[op_id]
            got = (
                op.account_id,
                op.kind.value,
                op.amount,
                op.status.value,
                op.failure_code.value if op.failure_code else None,
                op.hold.status.value if op.hold else None,
                op.deadline_at,
                op.mismatched_commands,
                op.discrepancies,
                op.late_success,
            )
            want = (
                r.account_id,
                r.kind,
                r.amount,
                r.status,
                r.code,
                r.hold,
                r.deadline,
                r.mismatches,
                r.discrepancies,
                r.late_success,
            )
            assert got == want, op_id
            self._monotone(op)  # 6, 7: the stored state agrees with what was published
            # 6 and 10 in the operation's own history: one entry per status change, in seq order, and
            # nothing after a terminal status.
            statuses = [h.status.value for h in op.history]
            assert statuses[-1] == op.status.value
            assert all(s not in TERMINAL for s in statuses[:-1]), statuses
            assert all(a.seq < b.seq for a, b in itertools.pairwise(op.history)), op.history
        # 1: every ledger account's balance, clearing and suspense included, equals the reference's.
        replay: Counter[str] = Counter()
        for txs in self.part.ledger.values():
            for tx in txs:
                for p in tx.postings:
                    replay[p.credit] += p.amount
                    replay[p.debit] -= p.amount
        nonzero = {a: n for a, n in replay.items() if n}
        assert nonzero == {a: n for a, n in self.ref.ledger.items() if n}
        assert sum(replay.values()) == 0

    @invariant()
    def state_invariants_hold(self) -> None:
        for account_id, acct in self.part.accounts.items():
            results = self.part.results[account_id]
            ledger = self.part.ledger[account_id]
            customer = customer_ledger_account(account_id)
            assert acct.available >= -acct.overdraft_limit  # 2
            # 7: held is the sum of the open holds of this account's stored operations.
            assert acct.held == sum(
                o.hold.amount
                for o in self.part.ops.values()
                if o.account_id == account_id and o.hold is not None and o.hold.status.value == "open"
            )
            # 11: the balance is a replay of the ledger.
            assert acct.posted == sum(tx.net_for(customer) for tx in ledger)
            # 1: every transaction balances, with no degenerate posting.
            for tx in ledger:
                touched = {p.debit for p in tx.postings} | {p.credit for p in tx.postings}
                assert sum(tx.net_for(a) for a in touched) == 0, tx
                assert all(p.amount > 0 and p.debit != p.credit for p in tx.postings), tx
            # 10: dense seq from 1, equal to the version and to the event id.
            assert [r.seq for r in results] == list(range(1, len(results) + 1))
            assert all(r.account.version == r.seq and r.event_id == f"{account_id}:{r.seq}" for r in results)
            assert acct.version == len(results)
            # 12: each ledger transaction is paired with exactly one result of the same seq, and back.
            with_tx = {r.ledger_tx_id: r.seq for r in results if r.ledger_tx_id is not None}
            assert len(with_tx) == len(ledger) == len({tx.tx_id for tx in ledger})
            assert all(with_tx.get(tx.tx_id) == tx.seq for tx in ledger)
        # 3, per operation: at most one posting of its own kind and at most one to suspense; a succeeded
        # operation has exactly one of its own, and a late PSP success exactly one to suspense.
        postings: Counter[tuple[str, str]] = Counter(
            (tx.op_id, tx.kind) for txs in self.part.ledger.values() for tx in txs
        )
        for op_id, op in self.part.ops.items():
            own = postings[(op_id, op.kind.value)]
            late = postings[(op_id, "late_psp_success")]
            assert own == (1 if op.status.value == "succeeded" else 0), (op_id, own)
            assert late == (1 if op.late_success else 0), (op_id, late)
        assert sum(postings.values()) == sum(
            1 + int(o.late_success) if o.status.value == "succeeded" else int(o.late_success)
            for o in self.part.ops.values()
        )
        # One PSP request per reserved payment or processing top-up, when it was first decided; none else.
        requests = Counter(req.op_id for req in self.part.psp_requests)
        assert requests == Counter(self.expected_requests.keys())
        for op_id in requests:
            op = self.part.ops[op_id]
            assert (
                op.history[0].status.value == {"payment": "reserved", "top_up": "processing"}[op.kind.value]
            )
        for op in self.part.ops.values():
            if op.history[0].status.value in ("reserved", "processing"):
                assert op.op_id in requests


DecideMachine.TestCase.settings = settings(
    max_examples=2_000,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_decide_stateful = DecideMachine.TestCase
