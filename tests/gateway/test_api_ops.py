"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import pytest

from payments.settings import KafkaSettings
from tests.gateway.support import new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration


async def test_health_ready_metrics(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db) as gw:
        assert (await gw.client.get("/healthz")).json() == {"status": "ok", "checks": {}}
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"redis": True, "kafka": True}}
        await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))
        await gw.client.get("/v1/accounts/acct_x", headers=gw.auth("alice"))
        text = (await gw.client.get("/metrics")).text
    assert (
        'payments_gateway_requests_total{method="GET",route="/v1/accounts/{account_id}",status="200"} 1.0'
        in text
    )
    assert (
        'payments_gateway_requests_total{method="GET",route="/v1/accounts/{account_id}",status="404"} 1.0'
        in text
    )
    assert "payments_gateway_request_duration_seconds_bucket" in text
    assert 'payments_gateway_idempotency_total{outcome="degraded"} 0.0' in text


async def test_openapi_documents_every_route(kafka_settings: KafkaSettings, redis_db: str) -> None:
    async with running_gateway(kafka_settings, redis_db, seed_users=False) as gw:
        doc = (await gw.client.get("/openapi.json")).json()
        assert (await gw.client.get("/docs")).status_code == 200
    paths = doc["paths"]
    expected = {
        ("/v1/accounts", "post"),
        ("/v1/accounts/{account_id}", "get"),
        ("/v1/accounts/{account_id}/adjustments", "post"),
        ("/v1/accounts/{account_id}/payments", "post"),
        ("/v1/payments/{payment_id}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    }
    assert {(p, m) for p, ops in paths.items() for m in ops} == expected
    pay = paths["/v1/accounts/{account_id}/payments"]["post"]
    assert {"201", "202", "402", "409", "422", "503"} <= set(pay["responses"])
    assert "examples" in pay["responses"]["402"]["content"]["application/problem+json"]
    headers = {p["name"] for p in pay["parameters"] if p["in"] == "header"}
    assert {"Idempotency-Key", "prefer"} <= {h if h == "Idempotency-Key" else h.lower() for h in headers}
    schemas = doc["components"]["schemas"]
    for name in ("PaymentRequest", "PaymentOut", "AccountOut", "AdjustmentRequest", "OpenAccountRequest"):
        assert schemas[name].get("examples"), name
