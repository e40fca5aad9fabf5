"""``POST /v1/psp/webhooks``: Standard Webhooks signatures (two secrets during a rotation), the outcome
published once per webhook-id, and nothing published for anything unauthentic."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from payments.devstack.ports import free_port
from payments.devstack.redis import RedisServer
from payments.schemas.commands import RecordPspOutcome
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus
from payments.settings import KafkaSettings
from payments.standard_webhooks import encode_secret, signed_headers
from tests.gateway.support import NOW_MS, Gateway, commands, running_gateway

pytestmark = pytest.mark.integration

NEW_SECRET = encode_secret(b"the new webhook secret, 32 bytes")
OLD_SECRET = encode_secret(b"the old webhook secret, 32 bytes")
STRANGER = encode_secret(b"not a secret the gateway knows!!")
NOW_S = NOW_MS // 1000
URL = "/v1/psp/webhooks"
OP = "pay_0123456789abcdef0123456789"


def event(type_: str = "transfer.succeeded", event_id: str = "evt_1", **data: Any) -> bytes:
    kind, _, status = type_.partition(".")
    movement = {
        "id": "tr_77",
        "kind": kind,
        "status": status,
        "failure_code": None,
        "amount": 1250,
        "currency": "EUR",
        "idempotency_key": OP,
        "created_at": "2026-01-01T00:00:00Z",
        "metadata": {"account_id": "acct_w1", "op_id": OP},
        "payee": "shop",
        **data,
    }
    return orjson.dumps(
        {"id": event_id, "type": type_, "timestamp": "2026-01-01T00:00:00Z", "data": movement}
    )


async def deliver(
    gw: Gateway, body: bytes, msg_id: str = "msg_1", *, secret: str = OLD_SECRET, at: int = NOW_S
) -> Any:
    headers = {"content-type": "application/json", **signed_headers([secret], msg_id, at, body)}
    return await gw.client.post(URL, content=body, headers=headers)


def gateway(kafka: KafkaSettings, redis_url: str, **overrides: Any) -> Any:
    return running_gateway(kafka, redis_url, webhook_secrets=[NEW_SECRET, OLD_SECRET], **overrides)


async def test_published_once_per_webhook_id(kafka_settings: KafkaSettings, redis_db: str) -> None:
    async with gateway(kafka_settings, redis_db) as gw:
        # signed with the second (old) secret while the rotation is under way
        first = await deliver(gw, event())
        assert first.status_code == 200, first.text
        assert first.json() == {"webhook_id": "msg_1", "status": "published", "command_id": "whk.msg_1"}
        # the PSP retries (new timestamp, same id) and duplicates it: answered, not published again
        for at in (NOW_S, NOW_S + 60):
            again = await deliver(gw, event(), at=at)
            assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        # a failure for another payment, signed with the new secret
        failed = await deliver(
            gw,
            event("charge.failed", failure_code="card_declined", idempotency_key="top_1", id="ch_9"),
            "msg_2",
            secret=NEW_SECRET,
        )
        assert (failed.status_code, failed.json()["status"]) == (200, "published")
        assert gw.metric("payments_gateway_webhooks_total", outcome="published") == 2
        assert gw.metric("payments_gateway_webhooks_total", outcome="duplicate") == 2
    published = commands(kafka_settings, expect=2)
    assert published == [
        RecordPspOutcome(
            command_id="whk.msg_1", account_id="acct_w1", issued_at=NOW_MS, op_id=OP,
            status=PspOutcomeStatus.SUCCEEDED, source=PspOutcomeSource.WEBHOOK, psp_movement_id="tr_77",
            psp_failure_code=None, amount=1250,
        ),
        RecordPspOutcome(
            command_id="whk.msg_2", account_id="acct_w1", issued_at=NOW_MS, op_id="top_1",
            status=PspOutcomeStatus.FAILED, source=PspOutcomeSource.WEBHOOK, psp_movement_id="ch_9",
            psp_failure_code="card_declined", amount=1250,
        ),
    ]  # fmt: skip


async def test_unauthentic_webhooks_are_400_and_publish_nothing(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    body = event()
    good = signed_headers([OLD_SECRET], "msg_1", NOW_S, body)
    async with gateway(kafka_settings, redis_db) as gw:
        cases: list[tuple[bytes, dict[str, str]]] = [
            (body, signed_headers([STRANGER], "msg_1", NOW_S, body)),  # wrong secret
            (body, signed_headers([OLD_SECRET], "msg_1", NOW_S - 301, body)),  # stale
            (body, signed_headers([OLD_SECRET], "msg_1", NOW_S + 301, body)),  # from the future
            (body.replace(b"1250", b"9999"), good),  # tampered body
            (body, {**good, "webhook-id": "msg_other"}),  # tampered id
            (body, {k: v for k, v in good.items() if k != "webhook-signature"}),  # missing headers
            (body, {k: v for k, v in good.items() if k != "webhook-timestamp"}),
            (body, {**good, "webhook-timestamp": "yesterday"}),
            (body, {}),
        ]
        for content, headers in cases:
            resp = await gw.client.post(URL, content=content, headers=headers)
            assert resp.status_code == 400, (headers, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["code"] == "webhook_signature_invalid"
        assert gw.metric("payments_gateway_webhooks_total", outcome="invalid_signature") == len(cases)
        # an API key is no substitute for a signature
        resp = await gw.client.post(URL, content=body, headers=gw.auth("admin"))
        assert resp.status_code == 400
    async with running_gateway(kafka_settings, redis_db, seed_users=False) as gw:  # no secrets configured
        resp = await gw.client.post(URL, content=body, headers=good)
        assert (resp.status_code, resp.json()["code"]) == (400, "webhook_signature_invalid")
    assert commands(kafka_settings) == []
    r: Redis = Redis.from_url(redis_db)
    try:
        assert await r.keys("whk:*") == []
    finally:
        await r.aclose()


async def test_events_we_do_not_act_on_are_acknowledged(kafka_settings: KafkaSettings, redis_db: str) -> None:
    async with gateway(kafka_settings, redis_db) as gw:
        refund = await deliver(gw, event("refund.succeeded", charge_id="ch_1"), "msg_r")
        assert (refund.status_code, refund.json()["status"]) == (202, "ignored")
        orphan = await deliver(gw, event(metadata={}), "msg_o")
        assert (orphan.status_code, orphan.json()) == (
            202,
            {"webhook_id": "msg_o", "status": "ignored", "command_id": None},
        )
        malformed = await deliver(gw, b"not json", "msg_m")
        assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_json")
        invalid = await deliver(gw, event(amount="1250"), "msg_i")
        assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_error")
        assert gw.metric("payments_gateway_webhooks_total", outcome="ignored_type") == 1
        assert gw.metric("payments_gateway_webhooks_total", outcome="ignored_orphan") == 1
        assert gw.metric("payments_gateway_webhooks_total", outcome="malformed") == 2
    assert commands(kafka_settings) == []


async def test_publish_failure_is_503_and_not_remembered(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    dead = kafka_settings.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    async with gateway(dead, redis_db, publish_timeout_ms=1000) as gw:
        resp = await deliver(gw, event())
        assert (resp.status_code, resp.json()["code"]) == (503, "intake_unavailable")
        assert int(resp.headers["retry-after"]) >= 1
        assert gw.metric("payments_gateway_webhooks_total", outcome="publish_failed") == 1
    r: Redis = Redis.from_url(redis_db)
    try:
        assert await r.keys("whk:*") == []  # so the PSP's retry is published, not taken for a duplicate
    finally:
        await r.aclose()
    async with gateway(kafka_settings, redis_db) as gw:
        retry = await deliver(gw, event())
        assert (retry.status_code, retry.json()["status"]) == (200, "published")
    assert len(commands(kafka_settings, expect=1)) == 1


async def test_redis_down_still_verifies_and_publishes(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        async with gateway(kafka_settings, server.url) as gw:
            server.stop()
            bad = await deliver(gw, event(), secret=STRANGER)
            assert bad.status_code == 400
            for _ in range(2):  # no dedupe record without Redis: published again (harmless, monotone)
                resp = await deliver(gw, event())
                assert (resp.status_code, resp.json()["status"]) == (200, "published")
    finally:
        server.stop()
    assert [c.command_id for c in commands(kafka_settings, expect=2)] == ["whk.msg_1"] * 2


async def test_concurrent_duplicates_publish_once(kafka_settings: KafkaSettings, redis_db: str) -> None:
    async with gateway(kafka_settings, redis_db) as gw:
        answers = await asyncio.gather(*(deliver(gw, event(), "msg_dup") for _ in range(20)))
        by_status = Counter(
            (a.status_code, a.json()["status"] if a.status_code == 200 else a.json()["code"]) for a in answers
        )
        assert by_status[(200, "published")] == 1
        assert set(by_status) <= {(200, "published"), (200, "duplicate"), (409, "idempotency_key_in_use")}
        for a in answers:
            if a.status_code == 409:
                assert int(a.headers["retry-after"]) >= 1
        # the PSP's retry of a 409 finds it published
        retry = await deliver(gw, event(), "msg_dup")
        assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    assert [c.command_id for c in commands(kafka_settings, expect=1)] == ["whk.msg_dup"]
