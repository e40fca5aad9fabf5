"""The audit's fetch of the PSP simulator's own log, over the shared PSP adapter, from a real server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from payments.audit.main import fetch_psp_movements
from payments.audit.psp_match import parse_psp_audit
from payments.devstack.ports import free_port
from payments.psp_sim.app import create_app
from payments.pspclient.http import NotSent
from payments.schemas.psp_movement import PspMovement, PspMovementKind, PspMovementStatus
from tests.psp_sim.support import live_server, make_settings


@pytest.fixture
def sim_url() -> Iterator[str]:
    with live_server(create_app(make_settings())) as url:
        yield url


def inject(url: str, key: str) -> str:
    resp = httpx.post(
        f"{url}/_sim/inject",
        json={"kind": "transfer", "amount": 4321, "currency": "EUR", "payee": "payee_1",
              "idempotency_key": key, "send_webhook": False},
        timeout=10,
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    movement_id: str = resp.json()["id"]
    return movement_id


def test_the_log_is_fetched_and_parsed(sim_url: str) -> None:
    movement_id = inject(sim_url, "pay_audit_1")
    [m] = fetch_psp_movements(sim_url)
    assert isinstance(m, PspMovement)
    assert (m.id, m.kind, m.idempotency_key, m.amount, m.currency, m.status) == (
        movement_id,
        PspMovementKind.TRANSFER,
        "pay_audit_1",
        4321,
        "EUR",
        PspMovementStatus.SUCCEEDED,
    )
    assert m.created_at.tzinfo is not None


async def test_it_also_works_when_called_from_a_coroutine(sim_url: str) -> None:
    inject(sim_url, "pay_audit_2")
    assert [m.idempotency_key for m in fetch_psp_movements(sim_url)] == ["pay_audit_2"]


def test_an_unreachable_psp_raises() -> None:
    with pytest.raises(NotSent):
        fetch_psp_movements(f"http://127.0.0.1:{free_port()}", timeout_s=2)


def test_a_malformed_log_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_psp_audit({"movements": [{"id": "mv_1"}]})
    with pytest.raises(ValueError, match="malformed"):
        parse_psp_audit([])
