"""Per-principal token bucket on POSTs: 429 ``rate_limited`` with ``Retry-After``; on by default in the
production profile, off in development (the test session's profile, see tests/conftest.py)."""

from __future__ import annotations

import pytest

from payments.settings import KafkaSettings
from tests.gateway.support import new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration

PAY = {"amount": 5, "currency": "EUR", "payee": "shop"}


async def test_bucket_per_principal(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    url = f"/v1/accounts/{acct}/payments"
    # 1 token per 100 s, burst 2: the third POST within the test is refused
    async with running_gateway(kafka_settings, redis_db, rate_limit_per_s=0.01, rate_limit_burst=2) as gw:
        for i in range(2):
            resp = await gw.client.post(
                url, json=PAY, headers=gw.auth("alice", **{"Idempotency-Key": f"k{i}"})
            )
            assert resp.status_code == 202
        limited = await gw.client.post(url, json=PAY, headers=gw.auth("alice", **{"Idempotency-Key": "k2"}))
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 100
        # other principals have their own bucket; reads are not limited
        other = await gw.client.post(url, json=PAY, headers=gw.auth("bob", **{"Idempotency-Key": "k2"}))
        assert other.status_code == 202
        assert (await gw.client.get(f"/v1/accounts/{acct}", headers=gw.auth("alice"))).status_code == 200
        # every POST route draws from the same bucket
        top_up = await gw.client.post(
            f"/v1/accounts/{acct}/top-ups",
            json={"amount": 5, "currency": "EUR", "payment_method": "tok_ok"},
            headers=gw.auth("alice", **{"Idempotency-Key": "k2"}),
        )
        assert top_up.status_code == 429


async def test_on_by_default_in_production(kafka_settings: KafkaSettings, redis_db: str) -> None:
    async with running_gateway(kafka_settings, redis_db, env="production") as gw:
        limiter = gw.app.state.services.rate_limiter
        assert limiter.enabled
        assert gw.settings.rate_limit_per_s == 100.0
        assert gw.settings.rate_limit_burst == 200


async def test_off_in_the_development_profile(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    put_account(redis_db, acct)
    async with running_gateway(kafka_settings, redis_db, env="development") as gw:
        for i in range(60):
            resp = await gw.client.post(
                f"/v1/accounts/{acct}/payments",
                json=PAY,
                headers=gw.auth("alice", **{"Idempotency-Key": f"{i}"}),
            )
            assert resp.status_code == 202
