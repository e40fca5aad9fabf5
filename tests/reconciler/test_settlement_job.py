"""The settlement job's pure parts: reading the PSP's report, and turning findings into records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from payments.psp_sim.models import Movement, SettlementReport
from payments.reconciler.settlement import Finding
from payments.reconciler.settlement_job import parse_report, to_discrepancy
from payments.schemas.settlement import SETTLEMENT_ADAPTER, Discrepancy, DiscrepancyKind

T0 = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
T0_MS = 1_714_564_800_250


def sim_report(*movements: Movement, generated_at: datetime = T0) -> dict[str, Any]:
    """The body of the simulator's ``GET /v1/settlement-report``, exactly as it serialises it."""
    report = SettlementReport(
        since=None, until=None, generated_at=generated_at, count=len(movements), movements=list(movements)
    )
    return report.model_dump(mode="json")


def mv(mid: str, key: str, **overrides: Any) -> Movement:
    values: dict[str, Any] = {
        "id": mid,
        "kind": "transfer",
        "status": "succeeded",
        "amount": 1250,
        "currency": "EUR",
        "idempotency_key": key,
        "created_at": T0 - timedelta(seconds=10),
        "payee": "payee_1",
    }
    values.update(overrides)
    return Movement.model_validate(values)


def test_the_simulators_report_parses_into_rows_and_generation_time() -> None:
    body = sim_report(
        mv("mv_1", "pay_1"),
        mv("mv_2", "top_1", kind="charge", status="failed", failure_code="card_declined", amount=99,
           currency="USD", created_at=T0 - timedelta(milliseconds=1), payee=None, payment_method="tok_declined"),
        mv("rf_1", "rf_key", kind="refund", amount=5, charge_id="mv_0", created_at=T0),
    )  # fmt: skip
    assert isinstance(body["generated_at"], str)  # ISO-8601 on the wire
    rows, generated_at = parse_report(body)
    assert generated_at == T0_MS
    assert [
        (r.id, r.kind, r.idempotency_key, r.status, r.amount, r.currency, r.created_at_ms) for r in rows
    ] == [
        ("mv_1", "transfer", "pay_1", "succeeded", 1250, "EUR", T0_MS - 10_000),
        ("mv_2", "charge", "top_1", "failed", 99, "USD", T0_MS - 1),
        ("rf_1", "refund", "rf_key", "succeeded", 5, "EUR", T0_MS),
    ]
    assert rows[1].failure_code == "card_declined"


def test_an_empty_report_is_not_malformed() -> None:
    assert parse_report(sim_report()) == ([], T0_MS)


def test_offsets_are_honoured() -> None:
    plus2 = timezone(timedelta(hours=2))
    body = {
        "generated_at": "2024-05-01T14:00:00.250+02:00",
        "movements": [
            {"id": "mv_1", "kind": "charge", "idempotency_key": "k", "status": "succeeded", "amount": 1,
             "currency": "EUR", "created_at": T0.astimezone(plus2).isoformat()},
        ],
    }  # fmt: skip
    rows, generated_at = parse_report(body)
    assert generated_at == T0_MS
    assert rows[0].created_at_ms == T0_MS


def test_a_movement_without_a_key_parses_with_none() -> None:
    body = sim_report(mv("mv_1", "k"))
    del body["movements"][0]["idempotency_key"]
    rows, _ = parse_report(body)
    assert rows[0].idempotency_key is None


def _broken(path: str, value: object) -> dict[str, Any]:
    body = sim_report(mv("mv_1", "pay_1"))
    target: dict[str, Any] = body["movements"][0] if path.startswith("m.") else body
    field = path.removeprefix("m.")
    if value is KeyError:
        del target[field]
    else:
        target[field] = value
    return body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"movements": []},  # no generated_at
        {"generated_at": T0.isoformat()},  # no movements
        _broken("movements", None),
        _broken("movements", ["mv_1"]),
        _broken("generated_at", "yesterday"),
        _broken("generated_at", 1_714_564_800),
        _broken("generated_at", None),
        _broken("m.id", KeyError),
        _broken("m.kind", KeyError),
        _broken("m.status", KeyError),
        _broken("m.amount", KeyError),
        _broken("m.amount", "twelve"),
        _broken("m.amount", None),
        _broken("m.currency", KeyError),
        _broken("m.created_at", KeyError),
        _broken("m.created_at", "2024-13-45T00:00:00Z"),
        _broken("m.created_at", 12),
    ],
)
def test_a_malformed_report_raises_value_error(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_report(body)


def test_a_fractional_amount_is_malformed() -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_report(_broken("m.amount", 12.5))


def test_a_finding_becomes_a_discrepancy_record_with_its_deterministic_id() -> None:
    finding = Finding(
        DiscrepancyKind.AMOUNT_MISMATCH,
        "pay_1",
        "our ledger posted 900, the PSP moved 1000",
        op_id="pay_1",
        account_id="acc_1",
        psp_movement_id="mv_1",
        psp_amount=1_000,
        ledger_amount=900,
        currency="EUR",
    )
    record = to_discrepancy(finding, "st-123", 456)
    assert record == Discrepancy(
        discrepancy_id="amount_mismatch:pay_1",
        kind=DiscrepancyKind.AMOUNT_MISMATCH,
        op_id="pay_1",
        account_id="acc_1",
        psp_movement_id="mv_1",
        psp_amount=1_000,
        ledger_amount=900,
        currency="EUR",
        detail="our ledger posted 900, the PSP moved 1000",
        run_id="st-123",
        detected_at=456,
    )
    # and it reads back through the topic's adapter as a discrepancy, not a run
    assert SETTLEMENT_ADAPTER.validate_json(record.model_dump_json()) == record


def test_an_orphan_record_has_no_op() -> None:
    finding = Finding(
        DiscrepancyKind.ORPHAN_MOVEMENT,
        "mv_9",
        "orphan",
        psp_movement_id="mv_9",
        psp_amount=5,
        currency="EUR",
    )
    record = to_discrepancy(finding, "st-1", 2)
    assert (record.discrepancy_id, record.op_id, record.account_id, record.psp_movement_id) == (
        "orphan_movement:mv_9", None, None, "mv_9",
    )  # fmt: skip
