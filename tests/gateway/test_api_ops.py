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
        assert ready.json() == {
            "status": "ready",
            "checks": {"redis": True, "kafka": True, "read_model": True},
        }
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
        ("/v1/accounts/{account_id}/payments", "get"),
        ("/v1/payments/{payment_id}", "get"),
        ("/v1/accounts/{account_id}/top-ups", "post"),
        ("/v1/accounts/{account_id}/top-ups", "get"),
        ("/v1/top-ups/{top_up_id}", "get"),
        ("/v1/accounts/{account_id}/members", "post"),
        ("/v1/accounts/{account_id}/members/{user_id}", "delete"),
        ("/v1/accounts/{account_id}/ledger", "get"),
        ("/v1/psp/webhooks", "post"),
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
    assert pay["responses"]["402"]["content"]["application/problem+json"]["examples"].keys() == {
        "insufficient_funds",
        "psp_declined",
        "operation_expired",
    }
    listing = paths["/v1/accounts/{account_id}/ledger"]["get"]
    bad_cursor = listing["responses"]["400"]["content"]["application/problem+json"]["examples"]
    assert bad_cursor["validation_error"]["value"]["status"] == 400
    assert {p["name"] for p in listing["parameters"]} == {"account_id", "limit", "cursor"}
    webhook = paths["/v1/psp/webhooks"]["post"]
    assert not webhook.get("security")  # authenticated by signature, not an API key
    assert (
        "webhook_signature_invalid"
        in webhook["responses"]["400"]["content"]["application/problem+json"]["examples"]
    )
    schemas = doc["components"]["schemas"]
    for name in (
        "PaymentRequest", "PaymentOut", "AccountOut", "AdjustmentRequest", "OpenAccountRequest",
        "TopUpRequest", "TopUpOut", "MemberRequest", "MemberChangeOut", "LedgerEntryOut", "PaymentPage",
        "TopUpPage", "LedgerPage", "WebhookAck",
    ):  # fmt: skip
        assert schemas[name].get("examples"), name
    # every route answers with a documented model in its success status
    for path, operations in paths.items():
        for method, op in operations.items():
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, (path, method)
            if path != "/metrics":
                assert any(
                    "schema" in c for s in ok for c in op["responses"][s].get("content", {}).values()
                ), (
                    path,
                    method,
                )
