"""A publish that cannot be made durable answers 503 with Retry-After and releases the claim."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from payments.devstack.ports import free_port
from payments.settings import KafkaSettings
from tests.gateway.support import new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 100, "currency": "EUR", "payee": "shop"}


async def test_dead_broker_is_503_and_releases_the_key(kafka_settings: KafkaSettings, redis_db: str) -> None:
    dead = kafka_settings.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(dead, redis_db, publish_timeout_ms=1000) as gw:
        url = f"/v1/accounts/{acct}/payments"
        hdrs = gw.auth("alice", **{"Idempotency-Key": "k"})
        for _ in range(2):  # the second attempt is not a 409: the first released its claim
            started = time.monotonic()
            resp = await gw.client.post(url, json=PAY, headers=hdrs)
            assert time.monotonic() - started < 8
            assert resp.status_code == 503
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["code"] == "intake_unavailable"
            assert int(resp.headers["retry-after"]) >= 1
        assert gw.metric("payments_gateway_publish_failures_total", reason="timeout") == 2

        ready = await gw.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"redis": True, "kafka": False, "read_model": True}
    r: Redis = Redis.from_url(redis_db)
    try:
        assert await r.keys("idem:*") == []
    finally:
        await r.aclose()
