"""Ledger transaction kinds: typed in code, plain strings on the wire."""

from __future__ import annotations

from payments.schemas.ledger import PSP_POSTING_KINDS, LedgerTransaction, LedgerTxKind, Posting


def tx(kind: str) -> LedgerTransaction:
    return LedgerTransaction(
        tx_id=f"pay_1:{kind}", account_id="acct_1", seq=3, op_id="pay_1", kind=kind, currency="EUR",
        occurred_at=1_700_000_000_000, postings=(Posting(debit="customer:acct_1", credit="suspense", amount=5),),
    )  # fmt: skip


def test_a_kind_from_the_enum_serialises_as_the_same_bytes_as_its_string() -> None:
    for kind in LedgerTxKind:
        assert tx(kind).model_dump_json() == tx(kind.value).model_dump_json()
        assert f'"kind":"{kind.value}"' in tx(kind).model_dump_json()


def test_kinds_read_back_from_the_wire_compare_equal_to_the_enum() -> None:
    back = LedgerTransaction.model_validate_json(tx(LedgerTxKind.LATE_PSP_SUCCESS).model_dump_json())
    assert back.kind == LedgerTxKind.LATE_PSP_SUCCESS
    assert back.kind in PSP_POSTING_KINDS
    assert "adjustment" not in PSP_POSTING_KINDS


def test_the_wire_stays_open_to_kinds_added_later() -> None:
    # A reader built today must still parse a kind a later writer adds (docs/contracts.md).
    assert LedgerTransaction.model_validate_json(tx("refund").model_dump_json()).kind == "refund"
