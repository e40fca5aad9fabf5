"""The simulator's HTTP output parses into the shared PSP movement model the audit and reconciler use.

Against a real simulator on a real socket: every kind and status it can produce, through ``/_sim/audit``
and ``/v1/settlement-report``, validates against ``payments.schemas.psp_movement``.
"""

from __future__ import annotations

from typing import get_args

import httpx
import pytest

from payments.psp_sim import models as sim
from payments.psp_sim.app import create_app
from payments.schemas.psp_movement import (
    PspMovementKind,
    PspMovementLog,
    PspMovementStatus,
    PspSettlementReport,
)
from tests.psp_sim.helpers import charge, refund, transfer
from tests.psp_sim.support import live_server, make_settings


def test_the_simulators_kinds_and_statuses_are_the_shared_ones() -> None:
    assert set(get_args(sim.MovementKind)) == {k.value for k in PspMovementKind}
    assert set(get_args(sim.MovementStatus)) == {s.value for s in PspMovementStatus}


@pytest.mark.asyncio(loop_scope="session")
async def test_audit_and_settlement_report_validate_against_the_shared_model() -> None:
    with live_server(create_app(make_settings())) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            ok = await charge(client, "top_1")
            assert ok.status_code == 201, ok.text
            assert (await charge(client, "top_2", "tok_declined")).status_code == 402
            assert (await transfer(client, "pay_1")).status_code == 201
            assert (await refund(client, "rf_1", ok.json()["id"], 250)).status_code == 201
            orphan = await client.post(
                "/_sim/inject",
                json={"kind": "transfer", "amount": 77, "currency": "USD", "payee": "payee_9",
                      "send_webhook": False},
            )  # fmt: skip
            assert orphan.status_code == 201, orphan.text
            audit = await client.get("/_sim/audit")
            report = await client.get("/v1/settlement-report")
    assert audit.status_code == 200
    assert report.status_code == 200

    log = PspMovementLog.model_validate(audit.json())
    settled = PspSettlementReport.model_validate(report.json())
    assert [m.id for m in settled.movements] == [m.id for m in log.movements]
    assert settled.count == len(settled.movements) == 5
    assert all(m.created_at <= settled.generated_at for m in settled.movements)
    by_key = {m.idempotency_key: m for m in log.movements}
    assert (by_key["top_1"].kind, by_key["top_1"].status) == (
        PspMovementKind.CHARGE,
        PspMovementStatus.SUCCEEDED,
    )
    assert (by_key["top_2"].status, by_key["top_2"].failure_code) == (
        PspMovementStatus.FAILED,
        "card_declined",
    )
    assert (by_key["pay_1"].kind, by_key["pay_1"].amount, by_key["pay_1"].currency) == (
        PspMovementKind.TRANSFER, 500, "EUR"
    )  # fmt: skip
    assert by_key["rf_1"].kind is PspMovementKind.REFUND
    assert not by_key["rf_1"].moves_our_money
    [injected] = [m for m in log.movements if m.id == orphan.json()["id"]]
    assert (injected.amount, injected.currency, injected.succeeded) == (77, "USD", True)
