"""The audit must pass a clean history and catch each kind of corruption it claims to check."""

from __future__ import annotations

from payments.audit.checks import audit
from payments.schemas.ledger import LedgerTransaction, Posting
from payments.schemas.state import AccountSnapshot, Operation, OperationStatus, ResultEvent
from tests.processor.test_decide import Model, fund, open_cmd, pay


def history() -> tuple[list[ResultEvent], list[LedgerTransaction], Model]:
    m = Model()
    m.apply(open_cmd(overdraft=10))
    m.apply(fund(1_000))
    for i, amount in enumerate([100, 2_000, 300, 500, 100]):
        m.apply(pay(amount, f"p{i}"))
    m.apply(pay(999, "p0"))  # mismatch
    results = [r for d in m.decisions for r in d.results]
    ledger = [tx for d in m.decisions for tx in d.ledger]
    return results, ledger, m


def invariants(
    results: list[ResultEvent], ledger: list[LedgerTransaction], model: Model | None = None
) -> set[int]:
    changelog: list[AccountSnapshot | Operation] = (
        [model.account, *model.ops.values()] if model and model.account else []
    )
    return {v.invariant for v in audit(results, ledger, changelog).violations}


def test_clean_history_passes() -> None:
    results, ledger, m = history()
    assert m.account is not None
    report = audit(results, ledger, [m.account, *m.ops.values()])
    assert report.clean, report.render()
    assert report.accounts == 1
    assert "CLEAN" in report.render()


def test_missing_ledger_transaction_breaks_replay_and_pairing() -> None:
    results, ledger, _ = history()
    assert invariants(results, ledger[:-1]) == {11, 12}


def test_duplicated_result_breaks_sequence() -> None:
    results, ledger, _ = history()
    assert 10 in invariants([*results[:3], results[2], *results[3:]], ledger)


def test_unbalanced_posting_and_negative_balance_are_caught() -> None:
    results, ledger, _ = history()
    bad = ledger[0].model_copy(update={"postings": (Posting(debit="x", credit="x", amount=5),)})
    assert 1 in invariants(results, [bad, *ledger[1:]])
    last = results[-1]
    broke = last.model_copy(update={"account": last.account.model_copy(update={"posted": -11})})
    assert 2 in invariants([*results[:-1], broke], ledger)


def test_terminal_state_leaving_and_held_mismatch_are_caught() -> None:
    results, ledger, _ = history()
    declined = next(r for r in results if r.type == "payment_declined")
    assert declined.operation is not None
    flipped = declined.operation.model_copy(update={"status": OperationStatus.SUCCEEDED})
    seq = results[-1].seq + 1
    extra = declined.model_copy(
        update={"seq": seq, "event_id": f"x:{seq}", "operation": flipped,
                "account": results[-1].account.model_copy(update={"version": seq})}
    )  # fmt: skip
    assert 6 in invariants([*results, extra], ledger)
    held = results[-1].model_copy(update={"account": results[-1].account.model_copy(update={"held": 7})})
    assert 7 in invariants([*results[:-1], held], ledger)


def test_changelog_disagreeing_with_results_is_caught() -> None:
    results, ledger, m = history()
    assert m.account is not None
    m.account = m.account.model_copy(update={"posted": 1})
    assert 0 in invariants(results, ledger, m)
