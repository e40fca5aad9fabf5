"""Redis down: intake continues in degraded mode (no replay), reads answer 503, readiness says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from payments.devstack.redis import RedisServer
from payments.gateway.idempotency_keys import derive_payment_id
from payments.settings import KafkaSettings
from tests.gateway.support import commands, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 100, "currency": "EUR", "payee": "shop"}


async def test_intake_survives_redis_outage(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        acct, other = new_account_id(), new_account_id()
        put_account(server.url, acct)
        put_account(server.url, other)
        async with running_gateway(kafka_settings, server.url) as gw:
            url = f"/v1/accounts/{acct}/payments"
            # warm the principal cache while Redis is up
            assert (await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))).status_code == 200
            server.stop()

            hdrs = gw.auth("alice", **{"Idempotency-Key": "during-outage"})
            first = await gw.client.post(url, json=PAY, headers={**hdrs, "Prefer": "wait=1"})
            assert first.status_code == 202, first.text
            assert first.json()["id"] == derive_payment_id("alice", acct, "during-outage")
            # no replay without Redis: the retry is published again, with the same deterministic id
            again = await gw.client.post(url, json=PAY, headers=hdrs)
            assert again.status_code == 202
            assert "idempotent-replayed" not in again.headers
            # the same key on another account is another payment (another partition, another id)
            elsewhere = await gw.client.post(f"/v1/accounts/{other}/payments", json=PAY, headers=hdrs)
            assert elsewhere.status_code == 202
            assert elsewhere.json()["id"] == derive_payment_id("alice", other, "during-outage")
            assert elsewhere.json()["id"] != first.json()["id"]
            assert gw.metric("payments_gateway_idempotency_total", outcome="degraded") == 3
            assert gw.metric("payments_gateway_redis_degraded_total", operation="membership_precheck") == 3

            read = await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))
            assert (read.status_code, read.json()["code"]) == (503, "dependency_unavailable")
            assert "retry-after" in read.headers
            # a key never seen before cannot be verified
            unknown = await gw.client.get(f"/v1/accounts/{acct}", headers={"Authorization": "Bearer pk_x"})
            assert unknown.status_code == 503
            ready = await gw.client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"] is False
    finally:
        server.stop()
    by_account = sorted((c.account_id, c.command_id) for c in commands(kafka_settings, expect=3))
    # the processor dedupes the two on acct; the one on the other account is its own payment
    assert by_account == sorted(
        [(acct, derive_payment_id("alice", acct, "during-outage"))] * 2
        + [(other, derive_payment_id("alice", other, "during-outage"))]
    )
