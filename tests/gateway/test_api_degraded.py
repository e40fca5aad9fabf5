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
        acct = new_account_id()
        put_account(server.url, acct)
        async with running_gateway(kafka_settings, server.url) as gw:
            url = f"/v1/accounts/{acct}/payments"
            # warm the principal cache while Redis is up
            assert (await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))).status_code == 200
            server.stop()

            hdrs = gw.auth("alice", **{"Idempotency-Key": "during-outage"})
            first = await gw.client.post(url, json=PAY, headers={**hdrs, "Prefer": "wait=1"})
            assert first.status_code == 202, first.text
            assert first.json()["id"] == derive_payment_id("alice", "during-outage")
            # no replay without Redis: the retry is published again, with the same deterministic id
            again = await gw.client.post(url, json=PAY, headers=hdrs)
            assert again.status_code == 202
            assert "idempotent-replayed" not in again.headers
            assert gw.metric("payments_gateway_idempotency_total", outcome="degraded") == 2
            assert gw.metric("payments_gateway_redis_degraded_total", operation="membership_precheck") == 2

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
    ids = [c.command_id for c in commands(kafka_settings, expect=2)]
    assert ids == [derive_payment_id("alice", "during-outage")] * 2  # the processor dedupes these
