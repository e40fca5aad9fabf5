"""The simulator's HTTP API, in-process through httpx.ASGITransport (fast; no sockets)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from payments.psp_sim.app import create_app
from tests.psp_sim.helpers import audit, charge, refund, set_faults, transfer
from tests.psp_sim.support import FakeClock, asgi_client, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("token", "status_code", "status", "failure_code"),
    [
        ("tok_ok", 201, "succeeded", None),
        ("tok_declined", 402, "failed", "card_declined"),
        ("tok_insufficient_funds", 402, "failed", "insufficient_funds"),
    ],
)
async def test_charge_outcome_per_token(
    client: httpx.AsyncClient, token: str, status_code: int, status: str, failure_code: str | None
) -> None:
    response = await charge(client, "key-1", token, metadata={"account_id": "acc_1", "payment_id": "pay_1"})
    assert response.status_code == status_code
    body = response.json()
    assert body["kind"] == "charge"
    assert body["status"] == status
    assert body["failure_code"] == failure_code
    assert (body["amount"], body["currency"], body["idempotency_key"]) == (1250, "EUR", "key-1")
    assert body["metadata"] == {"account_id": "acc_1", "payment_id": "pay_1"}
    assert body["id"].startswith("ch_")
    assert "idempotent-replayed" not in response.headers
    assert [m["id"] for m in await audit(client)] == [body["id"]]


async def test_unknown_token_is_400_and_stores_nothing(client: httpx.AsyncClient) -> None:
    response = await charge(client, "key-1", "tok_stolen")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payment_method"
    assert await audit(client) == []
    assert (await charge(client, "key-1", "tok_ok")).status_code == 201  # the key was not consumed


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 12.5, "currency": "EUR", "payment_method": "tok_ok"},
        {"amount": "100", "currency": "EUR", "payment_method": "tok_ok"},
        {"amount": 0, "currency": "EUR", "payment_method": "tok_ok"},
        {"amount": 100, "currency": "eur", "payment_method": "tok_ok"},
        {"amount": 100, "currency": "EUR", "payment_method": "4242424242424242"},
        {"amount": 100, "currency": "EUR", "payment_method": "tok_ok", "surprise": True},
    ],
)
async def test_invalid_bodies_are_422_problems(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await client.post("/v1/charges", json=body, headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert "4242424242424242" not in response.text  # rejected input is never echoed


async def test_missing_idempotency_key_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/charges", json={"amount": 1, "currency": "EUR", "payment_method": "tok_ok"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"


async def test_replay_returns_the_stored_response_byte_for_byte(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    first = await charge(client, "key-1", "tok_declined")
    clock.advance(60)
    again = await client.post(
        "/v1/charges",
        json={"payment_method": "tok_declined", "currency": "EUR", "amount": 1250},  # same request, reordered
        headers={"Idempotency-Key": '"key-1"'},  # quoted form of the same key
    )
    assert again.status_code == first.status_code == 402
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await audit(client)) == 1


async def test_same_key_other_parameters_is_422(client: httpx.AsyncClient) -> None:
    assert (await charge(client, "key-1", amount=100)).status_code == 201
    response = await charge(client, "key-1", amount=200)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert len(await audit(client)) == 1


async def test_concurrent_same_key_is_409_with_retry_after(clock: FakeClock) -> None:
    app = create_app(make_settings(latency_median_ms=150, latency_max_ms=150), clock=clock)
    async with asgi_client(app) as client:
        first, second = await asyncio.gather(charge(client, "key-1"), charge(client, "key-1"))
        assert sorted([first.status_code, second.status_code]) == [201, 409]
        conflict = first if first.status_code == 409 else second
        assert conflict.json()["code"] == "idempotency_key_in_use"
        assert conflict.headers["retry-after"] == "1"
        assert len(await audit(client)) == 1
        replay = await charge(client, "key-1")  # once the first is done, a retry replays it
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"


async def test_lookup_by_key(client: httpx.AsyncClient) -> None:
    made = (await transfer(client, "pay-1", metadata={"payment_id": "pay-1"})).json()
    assert made["kind"] == "transfer"
    assert made["status"] == "succeeded"
    assert made["payee"] == "payee_42"
    found = await client.get("/v1/movements/by-key/pay-1")
    assert found.status_code == 200
    assert found.json() == made
    missing = await client.get("/v1/movements/by-key/pay-2")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert len(await audit(client)) == 1  # lookups never move money


async def test_refunds_never_exceed_the_charge(client: httpx.AsyncClient) -> None:
    charge_id = (await charge(client, "c-1", amount=1000)).json()["id"]
    first = await refund(client, "r-1", charge_id, 600)
    assert first.status_code == 201
    assert (first.json()["kind"], first.json()["charge_id"], first.json()["currency"]) == (
        "refund",
        charge_id,
        "EUR",
    )
    too_much = await refund(client, "r-2", charge_id, 401)
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "amount_exceeds_refundable"
    assert (await refund(client, "r-2", charge_id, 400)).status_code == 201
    # A replay of a refund still replays after the charge is used up.
    assert (await refund(client, "r-1", charge_id, 600)).headers["idempotent-replayed"] == "true"
    assert (await refund(client, "r-3", "ch_nope", 1)).status_code == 404
    declined_id = (await charge(client, "c-2", "tok_declined")).json()["id"]
    assert (await refund(client, "r-4", declined_id, 1)).json()["code"] == "charge_not_refundable"
    assert [m["kind"] for m in await audit(client)] == ["charge", "refund", "refund", "charge"]


async def test_settlement_report_filters_by_time(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await charge(client, "c-1")
    clock.advance(3600)
    cutoff = clock.now().isoformat()
    await transfer(client, "t-1")
    await charge(client, "c-2", "tok_declined")
    everything = (await client.get("/v1/settlement-report")).json()
    assert everything["count"] == 3
    recent = (await client.get("/v1/settlement-report", params={"since": cutoff})).json()
    assert [(m["idempotency_key"], m["status"]) for m in recent["movements"]] == [
        ("t-1", "succeeded"),
        ("c-2", "failed"),
    ]


async def test_error_before_commit_records_nothing(client: httpx.AsyncClient) -> None:
    await set_faults(client, error_before_commit=1.0)
    response = await charge(client, "key-1")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert await audit(client) == []
    assert (await client.get("/v1/movements/by-key/key-1")).status_code == 404
    await client.delete("/_sim/faults")
    retry = await charge(client, "key-1")  # the key was released: the retry really charges
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers


async def test_error_after_commit_records_the_movement(client: httpx.AsyncClient) -> None:
    await set_faults(client, error_after_commit=1.0)
    response = await charge(client, "key-1", metadata={"payment_id": "p1"})
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"  # the same answer as before a commit
    movements = await audit(client)
    first = movements[0]
    assert (first["idempotency_key"], first["status"], first["metadata"]) == (
        "key-1",
        "succeeded",
        {"payment_id": "p1"},
    )
    lookup = await client.get("/v1/movements/by-key/key-1")
    assert lookup.status_code == 200
    await client.delete("/_sim/faults")
    retry = await charge(client, "key-1", metadata={"payment_id": "p1"})
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == movements[0]["id"]


async def test_ambiguous_errors_sometimes_commit(client: httpx.AsyncClient) -> None:
    await set_faults(client, ambiguous_error=1.0, seed=3)
    responses = [await charge(client, f"key-{n}") for n in range(20)]
    assert {r.status_code for r in responses} == {502}
    assert responses[0].headers["content-type"].startswith("text/html")
    committed = {m["idempotency_key"] for m in await audit(client)}
    assert 0 < len(committed) < 20


async def test_outage_returns_503_then_recovers(client: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await set_faults(client, outage_seconds=5))["outage_seconds"] == 5
    down = await charge(client, "key-1")
    assert down.status_code == 503
    assert down.headers["retry-after"] == "5"
    assert (await client.get("/v1/movements/by-key/key-1")).status_code == 503
    assert (await client.get("/healthz")).status_code == 200  # ops routes are not the PSP API
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    clock.advance(2)
    assert (await client.get("/_sim/faults")).json()["outage_seconds"] == 3
    assert await audit(client) == []
    clock.advance(3.1)
    assert (await charge(client, "key-1")).status_code == 201


async def test_rate_limit_is_429_with_retry_after(client: httpx.AsyncClient) -> None:
    await set_faults(client, rate_limit=1.0)
    limited = await charge(client, "key-1")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert (await client.get("/v1/settlement-report")).status_code == 429
    assert await audit(client) == []


async def test_fault_config_merges_shows_and_resets(client: httpx.AsyncClient) -> None:
    defaults = (await client.get("/_sim/faults")).json()
    assert defaults["latency_ms"] == {"median": 0, "max": 0}
    assert defaults["seed"] == 1
    await set_faults(client, error_before_commit=0.05, latency_ms={"median": 10, "max": 20})
    merged = await set_faults(client, error_after_commit=0.05, seed=9)
    assert (merged["error_before_commit"], merged["error_after_commit"], merged["seed"]) == (0.05, 0.05, 9)
    assert merged["latency_ms"] == {"median": 10, "max": 20}
    for bad in (
        {"error_before_commit": 2},
        {"bogus": 1},
        {"error_before_commit": 0.7, "error_after_commit": 0.7},
    ):
        rejected = await client.post("/_sim/faults", json=bad)
        assert rejected.status_code == 422
        assert rejected.json()["code"] == "validation_error"
    assert (await client.get("/_sim/faults")).json() == merged  # a rejected body changes nothing
    assert (await client.delete("/_sim/faults")).json() == defaults


async def test_inject_orphan_shows_in_audit_settlement_and_lookup(client: httpx.AsyncClient) -> None:
    await charge(client, "ours")
    injected = await client.post(
        "/_sim/inject",
        json={"kind": "transfer", "amount": 999, "currency": "EUR", "idempotency_key": "theirs"},
    )
    assert injected.status_code == 201
    orphan = injected.json()
    assert [m["idempotency_key"] for m in await audit(client)] == ["ours", "theirs"]
    report = (await client.get("/v1/settlement-report")).json()
    assert orphan["id"] in {m["id"] for m in report["movements"]}
    assert (await client.get("/v1/movements/by-key/theirs")).json() == orphan
    # The orphan sits under its key as if its equivalent request had been made.
    replay = await transfer(client, "theirs", amount=999, payee="payee_orphan")
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await transfer(client, "theirs", amount=5)).status_code == 422
    anonymous = (
        await client.post("/_sim/inject", json={"amount": 1, "currency": "EUR", "status": "failed"})
    ).json()
    assert (anonymous["kind"], anonymous["failure_code"]) == ("charge", "card_declined")
    assert anonymous["idempotency_key"].startswith("orphan_")


async def test_reset_clears_everything(client: httpx.AsyncClient) -> None:
    await charge(client, "key-1")
    await set_faults(client, rate_limit=1.0)
    assert (await client.post("/_sim/reset")).status_code == 204
    assert await audit(client) == []
    assert (await client.get("/_sim/faults")).json()["rate_limit"] == 0
    assert (await charge(client, "key-1")).status_code == 201


async def test_metrics_count_requests_movements_and_faults(client: httpx.AsyncClient) -> None:
    await charge(client, "secret-key-123456")
    await charge(client, "k2", "tok_declined")
    await set_faults(client, rate_limit=1.0)
    await charge(client, "k3")
    text = (await client.get("/metrics")).text
    assert 'psp_sim_movements_total{kind="charge",status="succeeded"} 1.0' in text
    assert 'psp_sim_movements_total{kind="charge",status="failed"} 1.0' in text
    assert 'psp_sim_faults_injected_total{kind="rate_limit"} 1.0' in text
    assert 'psp_sim_requests_total{method="POST",route="/v1/charges",status="429"} 1.0' in text
    assert "psp_sim_request_duration_seconds_bucket" in text
    assert "secret-key" not in text


async def test_keys_are_not_logged_in_full(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="payments.psp_sim")
    await charge(client, "very-secret-idempotency-key", "tok_insufficient_funds")
    await client.get("/v1/movements/by-key/very-secret-idempotency-key")
    assert caplog.records
    assert "very-secret-idempotency-key" not in caplog.text
    assert "tok_insufficient_funds" not in caplog.text


async def test_concurrent_refunds_under_different_keys_cannot_overdraw(clock: FakeClock) -> None:
    # Both pass the early check, then sleep through their latency; the commit re-check stops the second.
    app = create_app(make_settings(latency_median_ms=50, latency_max_ms=50), clock=clock)
    async with asgi_client(app) as client:
        charge_id = (await charge(client, "c-1", amount=1000)).json()["id"]
        first, second = await asyncio.gather(
            refund(client, "r-1", charge_id, 700), refund(client, "r-2", charge_id, 700)
        )
        assert sorted([first.status_code, second.status_code]) == [201, 400]
        assert sum(m["amount"] for m in await audit(client) if m["kind"] == "refund") == 700


async def test_keys_with_slashes_can_be_looked_up(client: httpx.AsyncClient) -> None:
    await charge(client, "acc/1/pay/2")
    found = await client.get("/v1/movements/by-key/acc%2F1%2Fpay%2F2")
    assert found.status_code == 200
    assert found.json()["idempotency_key"] == "acc/1/pay/2"
