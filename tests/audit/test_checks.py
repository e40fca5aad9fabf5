"""The audit must pass a clean history and catch each kind of corruption it claims to check."""

from __future__ import annotations

from datetime import UTC, datetime

from payments.audit.checks import PspMovement, audit
from payments.processor.decide import Decision, decide, operation_key
from payments.schemas.commands import (
    AdjustBalance,
    AnyCommand,
    ExpireOperation,
    OpenAccount,
    RecordPspOutcome,
    RequestPayment,
    RequestTopUp,
)
from payments.schemas.ledger import LedgerTransaction, Posting
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus
from payments.schemas.state import (
    AccountSnapshot,
    HoldStatus,
    Operation,
    OperationStatus,
    ResultEvent,
)

ACC = "acc_1"


class History:
    """Decisions applied the way the processor applies them; ``results``/``ledger`` are the topics."""

    def __init__(self) -> None:
        self.account: AccountSnapshot | None = None
        self.ops: dict[str, Operation] = {}
        self.decisions: list[Decision] = []
        self.clock = 0

    def apply(self, cmd: AnyCommand) -> Decision:
        op_id = operation_key(cmd)
        d = decide(self.account, self.ops.get(op_id) if op_id else None, cmd)
        self.account = d.account or self.account
        if d.operation is not None:
            self.ops[d.operation.op_id] = d.operation
        self.decisions.append(d)
        return d

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    @property
    def results(self) -> list[ResultEvent]:
        return [r for d in self.decisions for r in d.results]

    @property
    def ledger(self) -> list[LedgerTransaction]:
        return [tx for d in self.decisions for tx in d.ledger]

    def pay(self, op_id: str, amount: int) -> None:
        self.apply(
            RequestPayment(
                command_id=op_id, account_id=ACC, issued_at=self.tick(), amount=amount, currency="EUR",
                payee="shop", principal="alice", fingerprint=f"fingerprint-{op_id}-{amount}".ljust(16, "x"),
            )
        )  # fmt: skip

    def top_up(self, op_id: str, amount: int) -> None:
        self.apply(
            RequestTopUp(
                command_id=op_id, account_id=ACC, issued_at=self.tick(), amount=amount, currency="EUR",
                payment_method="tok_ok", principal="alice", fingerprint=f"fingerprint-{op_id}".ljust(16, "x"),
            )
        )  # fmt: skip

    def outcome(self, op_id: str, status: PspOutcomeStatus, at: int | None = None) -> None:
        self.apply(
            RecordPspOutcome(
                command_id=f"{op_id}.{status.value}.{self.tick()}", account_id=ACC, issued_at=at or self.clock,
                op_id=op_id, status=status, source=PspOutcomeSource.PSP_CALLER, psp_movement_id=f"mv_{op_id}",
            )
        )  # fmt: skip


# The fields of a PSP movement these checks do not look at.
AT = {"currency": "EUR", "created_at": datetime(2024, 5, 1, tzinfo=UTC)}


def history() -> History:
    h = History()
    h.apply(
        OpenAccount(
            command_id="open_1", account_id=ACC, issued_at=h.tick(), currency="EUR",
            members=("alice", "bob"), overdraft_limit=10, principal="admin",
        )
    )  # fmt: skip
    h.apply(
        AdjustBalance(
            command_id="adj_1", account_id=ACC, issued_at=h.tick(), amount=1_000, currency="EUR",
            reason="funding", principal="admin",
        )
    )  # fmt: skip
    for i, amount in enumerate([100, 2_000, 300, 500, 100]):
        h.pay(f"p{i}", amount)
    h.pay("p0", 999)  # mismatch
    h.outcome("p0", PspOutcomeStatus.SUCCEEDED)
    h.outcome("p2", PspOutcomeStatus.UNKNOWN)
    h.outcome("p2", PspOutcomeStatus.FAILED)
    h.outcome("p3", PspOutcomeStatus.SUCCEEDED)
    h.outcome("p3", PspOutcomeStatus.SUCCEEDED)  # duplicate webhook: a no-op
    h.top_up("t1", 700)
    h.outcome("t1", PspOutcomeStatus.SUCCEEDED)
    h.top_up("t2", 50)
    h.outcome("t2", PspOutcomeStatus.FAILED)
    # p4 expires with no PSP record, then the PSP's success shows up late: posted once to suspense.
    h.apply(ExpireOperation(command_id="exp_p4", account_id=ACC, issued_at=10**12, op_id="p4"))
    h.outcome("p4", PspOutcomeStatus.SUCCEEDED, at=10**12 + 1)
    h.outcome("p4", PspOutcomeStatus.SUCCEEDED, at=10**12 + 2)
    return h


def psp_log(h: History) -> list[PspMovement]:
    """What the PSP's own audit shows for this history: one movement per key it executed."""
    return [
        PspMovement(id="mv_p0", kind="transfer", idempotency_key="p0", amount=100, status="succeeded", **AT),
        PspMovement(id="mv_p2", kind="transfer", idempotency_key="p2", amount=300, status="failed", **AT),
        PspMovement(id="mv_p3", kind="transfer", idempotency_key="p3", amount=500, status="succeeded", **AT),
        PspMovement(id="mv_t1", kind="charge", idempotency_key="t1", amount=700, status="succeeded", **AT),
        PspMovement(id="mv_t2", kind="charge", idempotency_key="t2", amount=50, status="failed", **AT),
        PspMovement(id="mv_p4", kind="transfer", idempotency_key="p4", amount=100, status="succeeded", **AT),
    ]


def invariants(
    results: list[ResultEvent],
    ledger: list[LedgerTransaction],
    changelog: list[AccountSnapshot | Operation] | None = None,
    **kwargs: object,
) -> set[int]:
    report = audit(results, ledger, changelog or [], **kwargs)  # type: ignore[arg-type]
    return {v.invariant for v in report.violations}


def test_clean_history_passes_with_the_three_way_match() -> None:
    h = history()
    assert h.account is not None
    report = audit(
        h.results, h.ledger, [h.account, *h.ops.values()], psp_movements=psp_log(h), require_terminal=True
    )
    assert report.clean, report.render()
    assert report.accounts == 1
    assert report.psp_movements_matched == 4
    assert report.non_terminal == 0
    assert "CLEAN" in report.render()
    # The history really exercised every way a hold ends and the suspense path.
    holds = {op_id: op.hold.status for op_id, op in h.ops.items() if op.hold is not None}
    assert holds == {
        "p0": HoldStatus.CAPTURED, "p2": HoldStatus.RELEASED, "p3": HoldStatus.CAPTURED, "p4": HoldStatus.EXPIRED,
    }  # fmt: skip
    assert [tx.kind for tx in h.ledger].count("late_psp_success") == 1


def test_missing_ledger_transaction_breaks_replay_pairing_and_psp_match() -> None:
    h = history()
    without_t1 = [tx for tx in h.ledger if tx.op_id != "t1"]
    assert invariants(h.results, without_t1) == {3, 11, 12}


def test_duplicated_result_breaks_sequence() -> None:
    results = history().results
    assert 10 in invariants([*results[:3], results[2], *results[3:]], history().ledger)


def test_unbalanced_posting_and_negative_balance_are_caught() -> None:
    h = history()
    ledger, results = h.ledger, h.results
    bad = ledger[0].model_copy(update={"postings": (Posting(debit="x", credit="x", amount=5),)})
    assert 1 in invariants(results, [bad, *ledger[1:]])
    last = results[-1]
    broke = last.model_copy(update={"account": last.account.model_copy(update={"posted": -11})})
    assert 2 in invariants([*results[:-1], broke], ledger)


def _append(results: list[ResultEvent], op: Operation, **account: int) -> list[ResultEvent]:
    """A forged extra result about ``op``, with the next seq, as a corrupted history would carry it."""
    last = results[-1]
    seq = last.seq + 1
    forged = last.model_copy(
        update={"seq": seq, "event_id": f"{ACC}:{seq}", "operation": op, "ledger_tx_id": None,
                "account": last.account.model_copy(update={"version": seq, **account})}
    )  # fmt: skip
    return [*results, forged]


def test_terminal_state_leaving_and_held_mismatch_are_caught() -> None:
    h = history()
    declined = h.ops["p1"]
    assert declined.status is OperationStatus.DECLINED
    assert 6 in invariants(
        _append(h.results, declined.model_copy(update={"status": OperationStatus.SUCCEEDED})), h.ledger
    )
    last = h.results[-1]
    held = last.model_copy(update={"account": last.account.model_copy(update={"held": 7})})
    assert 7 in invariants([*h.results[:-1], held], h.ledger)


def test_a_hold_ending_twice_or_open_on_a_terminal_operation_is_caught() -> None:
    h = history()
    released = h.ops["p2"]
    assert released.hold is not None
    recaptured = released.model_copy(
        update={"hold": released.hold.model_copy(update={"status": HoldStatus.CAPTURED})}
    )
    assert 7 in invariants(_append(h.results, recaptured), h.ledger)
    still_open = released.model_copy(
        update={"hold": released.hold.model_copy(update={"status": HoldStatus.OPEN})}
    )
    assert 7 in invariants(_append(h.results, still_open, held=released.hold.amount), h.ledger)


def test_psp_double_movement_orphan_and_unposted_success_are_caught() -> None:
    h = history()
    movements = psp_log(h)
    double = [
        *movements,
        PspMovement(id="mv_p0b", kind="transfer", idempotency_key="p0", amount=100, status="succeeded", **AT),
    ]
    assert invariants(h.results, h.ledger, psp_movements=double) == {3}
    orphan = [
        *movements,
        PspMovement(id="mv_x", kind="charge", idempotency_key="nobody", amount=5, status="succeeded", **AT),
    ]
    assert invariants(h.results, h.ledger, psp_movements=orphan) == {3}
    # The PSP says p2's transfer succeeded, but we released its hold on its failure and posted nothing.
    flipped = [
        m
        if m.idempotency_key != "p2"
        else PspMovement(id=m.id, kind=m.kind, idempotency_key="p2", amount=300, status="succeeded", **AT)
        for m in movements
    ]
    assert invariants(h.results, h.ledger, psp_movements=flipped) == {3}
    # A posting without a PSP success under its key.
    assert invariants(
        h.results, h.ledger, psp_movements=[m for m in movements if m.idempotency_key != "t1"]
    ) == {3}


def test_non_terminal_operations_fail_invariant_9_only_when_required() -> None:
    h = history()
    h.pay("p9", 5)
    assert h.ops["p9"].status is OperationStatus.RESERVED
    assert invariants(h.results, h.ledger) == set()
    assert invariants(h.results, h.ledger, require_terminal=True) == {9}


def test_changelog_disagreeing_with_results_is_caught() -> None:
    h = history()
    assert h.account is not None
    assert 0 in invariants(h.results, h.ledger, [h.account.model_copy(update={"posted": 1})])
