"""Three-way settlement matching: the PSP's report against our ledger postings and our results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from payments.reconciler.settlement import Finding, MatchReport, OurOp, OurPosting, match
from payments.schemas.ledger import LedgerTxKind
from payments.schemas.psp_movement import PspMovement
from payments.schemas.settlement import DiscrepancyKind as K

JUDGE = 1_000_000  # judge_before_ms: the report's generation time minus the grace
OLD = JUDGE - 1  # judged
NEW = JUDGE  # too recent to judge (the boundary is exclusive)
TERMINAL = {"succeeded", "failed", "declined", "rejected"}


def op(
    op_id: str, status: str, *, amount: int = 1_000, kind: str = "payment", account: str = "acc_1"
) -> OurOp:
    return OurOp(op_id, account, kind, status, status in TERMINAL, amount, "EUR")


def post(
    op_id: str, *, amount: int = 1_000, kind: str = "payment", at: int = OLD, account: str = "acc_1"
) -> OurPosting:
    return OurPosting(f"{op_id}:{kind}", op_id, account, LedgerTxKind(kind), amount, at)


def row(
    mv: str,
    key: str | None,
    *,
    status: str = "succeeded",
    amount: int = 1_000,
    kind: str = "transfer",
    at: int = OLD,
    currency: str = "EUR",
) -> PspMovement:
    return PspMovement.model_validate(
        {"id": mv, "kind": kind, "idempotency_key": key, "status": status, "amount": amount,
         "currency": currency, "created_at": datetime.fromtimestamp(at / 1000, UTC)}
    )  # fmt: skip


def run(ops: Sequence[OurOp], posts: Sequence[OurPosting], report: Sequence[PspMovement]) -> MatchReport:
    by_op: dict[str, list[OurPosting]] = {}
    for p in posts:
        by_op.setdefault(p.op_id, []).append(p)
    return match({o.op_id: o for o in ops}, by_op, report, judge_before_ms=JUDGE)


def kinds(report: MatchReport) -> list[tuple[K, str]]:
    return sorted((f.kind, f.subject) for f in report.findings)


# ---- clean ------------------------------------------------------------------------------------------------------


def test_a_success_posted_once_with_the_same_amount_matches() -> None:
    report = run(
        [op("pay_1", "succeeded"), op("top_1", "succeeded", kind="top_up", amount=5_000)],
        [post("pay_1"), post("top_1", kind="top_up", amount=5_000)],
        [row("mv_1", "pay_1"), row("mv_2", "top_1", kind="charge", amount=5_000)],
    )
    assert (report.movements, report.matched, report.pending, report.findings) == (2, 2, 0, [])


def test_a_failed_movement_for_a_failed_op_is_nothing() -> None:
    report = run([op("pay_1", "failed")], [], [row("mv_1", "pay_1", status="failed")])
    assert (report.movements, report.matched, report.pending, report.findings) == (1, 0, 0, [])


def test_refunds_are_not_matched() -> None:
    report = run(
        [op("top_1", "succeeded", kind="top_up")],
        [post("top_1", kind="top_up")],
        [
            row("mv_1", "top_1", kind="charge"),
            row("rf_1", "refund-unknown", kind="refund", amount=300),  # would be an orphan if it were matched
            row("rf_2", "top_1", kind="refund", amount=300),  # would be a duplicate under top_1
            row("rf_3", None, kind="refund"),
        ],
    )
    assert (report.movements, report.matched, report.findings) == (4, 1, [])


# ---- orphans and duplicates ----------------------------------------------------------------------------------


def test_a_success_under_a_key_we_never_used_is_an_orphan() -> None:
    report = run([], [], [row("mv_9", "pay_nobody", amount=4_321, kind="charge", currency="USD")])
    assert report.findings == [
        Finding(
            K.ORPHAN_MOVEMENT,
            "mv_9",
            "PSP charge of 4321 USD that no operation of ours asked for",
            psp_movement_id="mv_9",
            psp_amount=4_321,
            currency="USD",
        )
    ]
    assert report.findings[0].discrepancy_id == "orphan_movement:mv_9"


def test_a_success_without_a_key_is_an_orphan_whatever_its_age() -> None:
    report = run(
        [op("pay_1", "succeeded")], [post("pay_1")], [row("mv_1", "pay_1"), row("mv_2", None, at=NEW + 10)]
    )
    assert kinds(report) == [(K.ORPHAN_MOVEMENT, "mv_2")]
    assert report.matched == 1


def test_a_failed_movement_under_an_unknown_key_moved_no_money() -> None:
    assert (
        run([], [], [row("mv_1", "pay_x", status="failed"), row("mv_2", None, status="failed")]).findings
        == []
    )


def test_two_movements_under_one_key_are_a_duplicate() -> None:
    report = run(
        [op("pay_1", "succeeded", account="acc_7")],
        [post("pay_1", account="acc_7")],
        [row("mv_1", "pay_1"), row("mv_2", "pay_1")],
    )
    assert kinds(report) == [(K.DUPLICATE_MOVEMENT, "pay_1")]
    dup = report.findings[0]
    assert (dup.op_id, dup.account_id, dup.detail) == ("pay_1", "acc_7", "2 PSP movements under one key")
    assert dup.discrepancy_id == "duplicate_movement:pay_1"
    assert report.matched == 1  # the first success is the one matched to our posting


def test_a_failed_and_a_succeeded_movement_under_one_key_are_a_duplicate_too() -> None:
    report = run(
        [op("pay_1", "succeeded")],
        [post("pay_1")],
        [row("mv_1", "pay_1", status="failed"), row("mv_2", "pay_1")],
    )
    assert kinds(report) == [(K.DUPLICATE_MOVEMENT, "pay_1")]


def test_duplicates_under_a_foreign_key_are_reported_with_every_orphan() -> None:
    report = run([], [], [row("mv_1", "k"), row("mv_2", "k"), row("mv_3", "k")])
    assert kinds(report) == [
        (K.DUPLICATE_MOVEMENT, "k"),
        (K.ORPHAN_MOVEMENT, "mv_1"),
        (K.ORPHAN_MOVEMENT, "mv_2"),
        (K.ORPHAN_MOVEMENT, "mv_3"),
    ]
    dup = next(f for f in report.findings if f.kind is K.DUPLICATE_MOVEMENT)
    assert (dup.op_id, dup.account_id, dup.detail) == (None, None, "3 PSP movements under one key")


# ---- amounts and suspense --------------------------------------------------------------------------------------


def test_a_posting_of_another_amount_is_an_amount_mismatch() -> None:
    report = run(
        [op("pay_1", "succeeded")], [post("pay_1", amount=900)], [row("mv_1", "pay_1", amount=1_000)]
    )
    assert kinds(report) == [(K.AMOUNT_MISMATCH, "pay_1")]
    f = report.findings[0]
    assert (f.op_id, f.account_id, f.psp_movement_id, f.psp_amount, f.ledger_amount, f.currency) == (
        "pay_1", "acc_1", "mv_1", 1_000, 900, "EUR",
    )  # fmt: skip
    assert f.detail == "our ledger posted 900 EUR, the PSP moved 1000 EUR"
    assert report.matched == 0


def test_a_late_success_posted_to_suspense_is_reported_as_such_not_as_a_mismatch() -> None:
    # Expired (failed) by us, then the PSP executed after all: the processor posted it to suspense.
    report = run(
        [op("pay_1", "failed")],
        [post("pay_1", kind="late_psp_success", amount=1_000)],
        [row("mv_1", "pay_1", amount=1_000)],
    )
    assert kinds(report) == [(K.SUSPENSE_POSTING, "pay_1")]
    f = report.findings[0]
    assert (f.psp_movement_id, f.psp_amount, f.ledger_amount) == ("mv_1", 1_000, 1_000)
    assert report.matched == 0
    assert report.pending == 0


# ---- missing on one side ----------------------------------------------------------------------------------------


def test_a_psp_success_for_an_op_that_ended_without_posting_is_missing_on_our_side() -> None:
    report = run([op("pay_1", "failed")], [], [row("mv_1", "pay_1", amount=1_000, at=OLD)])
    assert kinds(report) == [(K.MISSING_ON_OUR_SIDE, "pay_1")]
    f = report.findings[0]
    assert (f.op_id, f.account_id, f.psp_movement_id, f.psp_amount, f.ledger_amount) == (
        "pay_1", "acc_1", "mv_1", 1_000, None,
    )  # fmt: skip
    assert report.pending == 0


def test_a_psp_success_for_an_open_op_is_pending_whatever_its_age() -> None:
    for status in ("reserved", "processing", "unknown"):
        report = run([op("pay_1", status)], [], [row("mv_1", "pay_1", at=0)])
        assert (report.findings, report.pending, report.matched) == ([], 1, 0), status


def test_a_recent_psp_success_for_an_ended_op_is_pending() -> None:
    report = run([op("pay_1", "failed")], [], [row("mv_1", "pay_1", at=NEW)])
    assert (report.findings, report.pending) == ([], 1)


def test_a_posting_the_psp_does_not_show_as_succeeded_is_missing_at_psp() -> None:
    for report_rows in ([], [row("mv_1", "pay_1", status="failed")]):
        report = run([op("pay_1", "succeeded")], [post("pay_1", amount=1_000, at=OLD)], report_rows)
        assert kinds(report) == [(K.MISSING_AT_PSP, "pay_1")]
        f = report.findings[0]
        assert (f.op_id, f.account_id, f.ledger_amount, f.psp_amount, f.currency) == (
            "pay_1", "acc_1", 1_000, None, "EUR",
        )  # fmt: skip


def test_a_recent_posting_is_not_judged_missing_at_psp() -> None:
    report = run([op("pay_1", "succeeded")], [post("pay_1", at=NEW)], [])
    assert report.findings == []


# ---- results against ledger ----------------------------------------------------------------------------------


def test_a_succeeded_op_without_its_posting_is_a_result_ledger_mismatch() -> None:
    report = run([op("pay_1", "succeeded")], [], [])
    assert kinds(report) == [(K.RESULT_LEDGER_MISMATCH, "pay_1")]
    f = report.findings[0]
    assert (f.op_id, f.account_id, f.currency, f.detail) == (
        "pay_1", "acc_1", "EUR", "the operation succeeded without its ledger posting",
    )  # fmt: skip


def test_a_succeeded_op_with_a_psp_success_but_no_posting_is_reported_both_ways() -> None:
    report = run([op("pay_1", "succeeded")], [], [row("mv_1", "pay_1")])
    assert kinds(report) == [(K.MISSING_ON_OUR_SIDE, "pay_1"), (K.RESULT_LEDGER_MISMATCH, "pay_1")]


def test_an_old_posting_for_a_failed_op_is_a_result_ledger_mismatch() -> None:
    report = run([op("pay_1", "failed")], [post("pay_1", at=OLD)], [row("mv_1", "pay_1")])
    assert kinds(report) == [(K.RESULT_LEDGER_MISMATCH, "pay_1")]
    assert report.findings[0].detail == "a PSP posting for an operation that is failed"
    assert report.matched == 1  # the PSP and our ledger agree; only the result disagrees


def test_a_recent_posting_for_an_op_whose_result_we_have_not_read_is_not_judged() -> None:
    # The ledger read may be ahead of the results read: the success result is on its way.
    report = run([op("pay_1", "unknown")], [post("pay_1", at=NEW)], [row("mv_1", "pay_1")])
    assert report.findings == []
    report = run([op("pay_1", "failed")], [post("pay_1", at=NEW)], [row("mv_1", "pay_1")])
    assert report.findings == []


def test_an_old_posting_for_an_op_never_published_is_a_mismatch() -> None:
    report = run([], [post("pay_ghost", account="acc_2", at=OLD)], [])
    # Reported once, as what it is (not also as "missing at the PSP").
    assert kinds(report) == [(K.RESULT_LEDGER_MISMATCH, "pay_ghost")]
    rlm = next(f for f in report.findings if f.kind is K.RESULT_LEDGER_MISMATCH)
    assert (rlm.op_id, rlm.account_id, rlm.detail) == (
        "pay_ghost", "acc_2", "a PSP posting for an operation never published on results",
    )  # fmt: skip
    assert run([], [post("pay_ghost", at=NEW)], []).findings == []


def test_two_postings_for_one_op_are_a_mismatch() -> None:
    report = run([op("pay_1", "succeeded")], [post("pay_1"), post("pay_1")], [row("mv_1", "pay_1")])
    assert kinds(report) == [(K.RESULT_LEDGER_MISMATCH, "pay_1")]
    assert report.findings[0].detail == "2 PSP postings for one operation"


# ---- ids and a property ----------------------------------------------------------------------------------------


def test_discrepancy_ids_are_kind_and_subject_and_stable_across_runs() -> None:
    scenario = (
        [op("pay_1", "failed"), op("pay_2", "succeeded")],
        [post("pay_2", amount=5)],
        [row("mv_1", "pay_1"), row("mv_2", "pay_2"), row("mv_3", "x")],
    )
    first = [f.discrepancy_id for f in run(*scenario).findings]
    assert sorted(first) == ["amount_mismatch:pay_2", "missing_on_our_side:pay_1", "orphan_movement:mv_3"]
    assert [f.discrepancy_id for f in run(*scenario).findings] == first


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["payment", "top_up"]), st.sampled_from(["succeeded", "failed", "declined"]),
                  st.integers(1, 10**6)),
        max_size=15,
    )
)  # fmt: skip
def test_consistent_books_are_always_clean(specs: list[tuple[str, str, int]]) -> None:
    """Every success posted once with the PSP's amount, every failure unposted: nothing to report."""
    ops, posts, report = [], [], []
    for i, (kind, status, amount) in enumerate(specs):
        op_id = f"op_{i}"
        ops.append(op(op_id, status, kind=kind, amount=amount))
        psp_kind = "transfer" if kind == "payment" else "charge"
        if status == "succeeded":
            posts.append(post(op_id, kind=kind, amount=amount))
            report.append(row(f"mv_{i}", op_id, kind=psp_kind, amount=amount))
        elif status == "failed":
            report.append(row(f"mv_{i}", op_id, kind=psp_kind, amount=amount, status="failed"))
    result = run(ops, posts, report)
    assert result.findings == []
    assert result.matched == sum(1 for _, s, _ in specs if s == "succeeded")
    assert result.movements == len(report)


def test_a_psp_success_in_another_currency_is_not_a_match() -> None:
    report = run(
        [op("pay_1", "succeeded")], [post("pay_1", amount=1_000)], [row("mv_1", "pay_1", currency="USD")]
    )
    assert report.matched == 0
    assert [f.subject for f in report.findings] == ["pay_1"]
