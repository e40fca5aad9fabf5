"""Invariant checks of docs/design.md §3 over what the topics say. Pure: the caller reads the topics.

Covers invariants 1 (ledger balances), 2 (available never below -overdraft), 3 (one ledger posting per
PSP success and none without — three-way when the PSP's own log is given), 6 (terminal states monotone),
7 (each hold ends exactly once; held equals the sum of open holds), 9 (optional, once faults healed: every
payment and top-up is terminal), 10 (per-account versions never regress; dense seq), 11 (balances equal a
replay of the ledger) and 12 (no result without its ledger transaction and vice versa), plus agreement
of the processor's changelog with the last published state.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from payments.audit.psp_match import check_psp_postings, match_psp
from payments.audit.violations import Violation
from payments.schemas.ledger import LedgerTransaction, customer_ledger_account
from payments.schemas.psp_movement import PspMovement
from payments.schemas.state import (
    TERMINAL_STATUSES,
    AccountSnapshot,
    HoldStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultEvent,
)

__all__ = ["STATE_AGREEMENT", "AuditReport", "PspMovement", "Violation", "audit"]


@dataclass
class AuditReport:
    results: int = 0
    ledger_transactions: int = 0
    accounts: int = 0
    operations: int = 0
    psp_movements_matched: int | None = None  # None: the PSP's log was not part of this audit
    non_terminal: int = 0
    violations: list[Violation] = field(default_factory=list)
    checked: tuple[int, ...] = (1, 2, 3, 6, 7, 10, 11, 12)

    @property
    def clean(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [
            f"results={self.results} ledger_transactions={self.ledger_transactions} "
            f"accounts={self.accounts} operations={self.operations} non_terminal={self.non_terminal}"
            + ("" if self.psp_movements_matched is None else f" psp_matched={self.psp_movements_matched}")
        ]
        by_inv: dict[int, list[Violation]] = defaultdict(list)
        for v in self.violations:
            by_inv[v.invariant].append(v)
        for inv in self.checked:
            found = by_inv.get(inv, [])
            lines.append(f"  invariant {inv:>2}: {'PASS' if not found else f'FAIL ({len(found)})'}")
            lines += [f"      {v.subject}: {v.detail}" for v in found[:10]]
        for inv in sorted(set(by_inv) - set(self.checked)):
            lines.append(f"  check {inv}: FAIL ({len(by_inv[inv])})")
            lines += [f"      {v.subject}: {v.detail}" for v in by_inv[inv][:10]]
        lines.append("CLEAN" if self.clean else f"VIOLATIONS: {len(self.violations)}")
        return "\n".join(lines)


# Changelog-vs-results agreement is reported under this pseudo-invariant number.
STATE_AGREEMENT = 0


def audit(
    results: Sequence[ResultEvent],
    ledger: Sequence[LedgerTransaction],
    changelog: Iterable[AccountSnapshot | Operation] = (),
    *,
    psp_movements: Sequence[PspMovement] | None = None,
    require_terminal: bool = False,
) -> AuditReport:
    """``results`` and ``ledger`` must be in per-partition (hence per-account) order.

    ``psp_movements`` (the PSP's own log) turns invariant 3 into the three-way match; ``require_terminal``
    adds invariant 9 for audits taken after faults healed and the reconciliation deadline passed.
    """
    checked = AuditReport.checked + ((9,) if require_terminal else ())
    report = AuditReport(
        results=len(results), ledger_transactions=len(ledger), checked=tuple(sorted(checked))
    )
    v = report.violations
    _ledger_balances(ledger, v)
    last: dict[str, AccountSnapshot] = {}
    ops: dict[str, Operation] = {}
    op_status: dict[str, list[str]] = defaultdict(list)
    open_holds: dict[str, dict[str, int]] = defaultdict(dict)
    for r in results:
        prev = last.get(r.account_id)
        expected = 1 if prev is None else prev.version + 1
        if r.seq != expected or r.account.version != r.seq:
            v.append(
                Violation(10, r.event_id, f"seq {r.seq} (version {r.account.version}) after {expected - 1}")
            )
        if r.account.available < -r.account.overdraft_limit:
            v.append(
                Violation(2, r.event_id, f"available {r.account.available} < -{r.account.overdraft_limit}")
            )
        last[r.account_id] = r.account
        if r.operation is not None:
            op = r.operation
            _hold_step(ops.get(op.op_id), op, r.event_id, v)
            ops[op.op_id] = op
            op_status[op.op_id].append(op.status.value)
            holds = open_holds[r.account_id]
            if op.hold is not None and op.hold.status is HoldStatus.OPEN:
                holds[op.op_id] = op.hold.amount
            else:
                holds.pop(op.op_id, None)
        held = sum(open_holds[r.account_id].values())
        if r.account.held != held:
            v.append(Violation(7, r.event_id, f"held {r.account.held} != sum of open holds {held}"))
    for op_id, statuses in op_status.items():
        _monotone(op_id, statuses, v)
    _ledger_matches_results(results, ledger, v)
    _replay(last, ledger, v)
    _changelog_agrees(last, changelog, v)
    check_psp_postings(ops, ledger, v)
    if psp_movements is not None:
        report.psp_movements_matched = match_psp(ops, ledger, psp_movements, v)
    pending = [o for o in ops.values() if o.kind is not OperationKind.ADJUSTMENT and not o.is_terminal]
    report.non_terminal = len(pending)
    if require_terminal:
        v += [Violation(9, o.op_id, f"still {o.status.value}") for o in pending]
    report.accounts = len(last)
    report.operations = len(op_status)
    return report


# How a hold may end, given the status its operation ended in.
_HOLD_END = {
    HoldStatus.CAPTURED: {OperationStatus.SUCCEEDED},
    HoldStatus.RELEASED: {OperationStatus.FAILED},
    HoldStatus.EXPIRED: {OperationStatus.FAILED},
}


def _hold_step(before: Operation | None, after: Operation, event_id: str, v: list[Violation]) -> None:
    """Invariant 7: a hold is opened once, ends exactly once, in a way that fits its operation's status,
    and never changes (nor its amount) after it ended."""
    old, new = (before.hold if before else None), after.hold
    if new is None:
        if old is not None:
            v.append(Violation(7, event_id, f"hold of {after.op_id} vanished"))
        return
    if old is not None and old.amount != new.amount:
        v.append(Violation(7, event_id, f"hold of {after.op_id} changed amount {old.amount} -> {new.amount}"))
    if old is not None and old.status is not HoldStatus.OPEN and new.status is not old.status:
        v.append(Violation(7, event_id, f"hold of {after.op_id} ended twice: {old.status} then {new.status}"))
    if new.status is HoldStatus.OPEN and after.is_terminal:
        v.append(Violation(7, event_id, f"{after.op_id} is {after.status.value} with its hold still open"))
    if new.status in _HOLD_END and after.status not in _HOLD_END[new.status]:
        v.append(Violation(7, event_id, f"hold {new.status.value} but {after.op_id} is {after.status.value}"))


def _ledger_balances(ledger: Sequence[LedgerTransaction], v: list[Violation]) -> None:
    totals: dict[str, int] = defaultdict(int)
    for tx in ledger:
        for p in tx.postings:
            if p.amount <= 0 or p.debit == p.credit:
                v.append(Violation(1, tx.tx_id, f"degenerate posting {p.debit}->{p.credit} {p.amount}"))
            totals[p.credit] += p.amount
            totals[p.debit] -= p.amount
    if sum(totals.values()) != 0:
        v.append(Violation(1, "ledger", f"sum over all ledger accounts is {sum(totals.values())}, not 0"))


def _monotone(op_id: str, statuses: list[str], v: list[Violation]) -> None:
    terminal = {s.value for s in TERMINAL_STATUSES}
    for before, after in itertools.pairwise(statuses):
        if before in terminal and after != before:
            v.append(Violation(6, op_id, f"left terminal state {before} for {after}"))


def _ledger_matches_results(
    results: Sequence[ResultEvent], ledger: Sequence[LedgerTransaction], v: list[Violation]
) -> None:
    by_id = {tx.tx_id: tx for tx in ledger}
    seen: dict[str, int] = defaultdict(int)
    for tx in ledger:
        seen[tx.tx_id] += 1
        if seen[tx.tx_id] == 2:
            v.append(Violation(12, tx.tx_id, "ledger transaction published twice"))
    referenced: set[str] = set()
    for r in results:
        if r.ledger_tx_id is None:
            continue
        referenced.add(r.ledger_tx_id)
        match = by_id.get(r.ledger_tx_id)
        if match is None:
            v.append(
                Violation(12, r.event_id, f"result references missing ledger transaction {r.ledger_tx_id}")
            )
        elif (match.account_id, match.seq) != (r.account_id, r.seq):
            v.append(Violation(12, r.event_id, f"ledger transaction {match.tx_id} carries seq {match.seq}"))
    for tx_id in by_id.keys() - referenced:
        v.append(Violation(12, tx_id, "ledger transaction without a result"))


def _replay(
    last: dict[str, AccountSnapshot], ledger: Sequence[LedgerTransaction], v: list[Violation]
) -> None:
    replayed: dict[str, int] = defaultdict(int)
    for tx in ledger:
        replayed[tx.account_id] += tx.net_for(customer_ledger_account(tx.account_id))
    for account_id in set(last) | set(replayed):
        posted = last[account_id].posted if account_id in last else 0
        if posted != replayed[account_id]:
            v.append(Violation(11, account_id, f"posted {posted} != ledger replay {replayed[account_id]}"))


def _changelog_agrees(
    last: dict[str, AccountSnapshot], changelog: Iterable[AccountSnapshot | Operation], v: list[Violation]
) -> None:
    for item in changelog:
        if isinstance(item, AccountSnapshot) and item.version > 0:
            published = last.get(item.account_id)
            if published is None or published != item:
                seen = published.version if published else None
                v.append(
                    Violation(
                        STATE_AGREEMENT, item.account_id, f"changelog v{item.version} != published v{seen}"
                    )
                )
