"""Webhook delivery to a real HTTP receiver: signatures, duplicates, reordering, delay and retries."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from payments.psp_sim.app import create_app
from payments.psp_sim.signing import verify
from tests.psp_sim.helpers import charge, set_faults, transfer
from tests.psp_sim.support import (
    WEBHOOK_SECRET,
    FakeClock,
    WebhookSink,
    asgi_client,
    live_server,
    make_settings,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def drained(client: httpx.AsyncClient, timeout_s: float = 5.0) -> dict[str, Any]:
    """The webhook status once nothing is queued or in flight."""
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = (await client.get("/_sim/webhooks")).json()
        if status["pending"] == 0:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.02)


def event_of(received: Any) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads(received.body)
    return event


async def test_signed_webhook_over_real_sockets(webhook_sink: WebhookSink, clock: FakeClock) -> None:
    app = create_app(make_settings(webhook_url=webhook_sink.url, webhook_secret=WEBHOOK_SECRET), clock=clock)
    with live_server(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            made = (
                await charge(client, "pay-1", metadata={"account_id": "acc_1", "payment_id": "pay-1"})
            ).json()
            declined = (await charge(client, "pay-2", "tok_declined")).json()
            received = await webhook_sink.wait_for(2)
    for delivery in received:
        verify([WEBHOOK_SECRET], delivery.headers, delivery.body, now=int(clock.now().timestamp()))
        assert delivery.headers["content-type"] == "application/json"
    events = {event_of(r)["data"]["id"]: event_of(r) for r in received}
    assert events[made["id"]]["type"] == "charge.succeeded"
    assert events[made["id"]]["data"] == made  # metadata and all, exactly as the API answered
    assert events[declined["id"]]["type"] == "charge.failed"
    assert {event["id"] for event in events.values()} == {r.headers["webhook-id"] for r in received}


async def test_duplicates_follow_the_rate(webhook_sink: WebhookSink, clock: FakeClock) -> None:
    app = create_app(make_settings(webhook_url=webhook_sink.url, webhook_secret=WEBHOOK_SECRET), clock=clock)
    async with asgi_client(app) as client:
        await set_faults(client, webhook_duplicate=1.0)
        for n in range(3):
            await transfer(client, f"t-{n}")
        await drained(client)
        await set_faults(client, webhook_duplicate=0.0)
        await transfer(client, "t-single")
        await drained(client)
        await set_faults(client, webhook_duplicate=0.5, seed=4)
        for n in range(20):
            await transfer(client, f"t-half-{n}")
        await drained(client)
    per_id = Counter(r.headers["webhook-id"] for r in webhook_sink.received)
    copies = [per_id[r.headers["webhook-id"]] for r in webhook_sink.received]
    assert copies[:6] == [2] * 6  # every event of the first three, twice with one webhook-id
    assert copies[6] == 1
    duplicated = sum(count == 2 for count in list(per_id.values())[4:])
    assert 4 <= duplicated <= 16, duplicated


async def test_reordered_event_arrives_after_a_later_one(webhook_sink: WebhookSink, clock: FakeClock) -> None:
    app = create_app(make_settings(webhook_url=webhook_sink.url, webhook_secret=WEBHOOK_SECRET), clock=clock)
    async with asgi_client(app) as client:
        await set_faults(client, webhook_reorder=1.0, webhook_reorder_hold_ms=500)
        first = (await transfer(client, "t-1")).json()
        await set_faults(client, webhook_reorder=0.0)
        second = (await transfer(client, "t-2")).json()
        received = await webhook_sink.wait_for(2)
    assert [event_of(r)["data"]["id"] for r in received] == [second["id"], first["id"]]


async def test_delay_postpones_delivery(webhook_sink: WebhookSink, clock: FakeClock) -> None:
    app = create_app(make_settings(webhook_url=webhook_sink.url, webhook_secret=WEBHOOK_SECRET), clock=clock)
    async with asgi_client(app) as client:
        await set_faults(client, webhook_delay_ms=250)
        started = time.monotonic()
        await transfer(client, "t-1")
        await webhook_sink.wait_for(1)
        assert time.monotonic() - started >= 0.25


async def test_failed_deliveries_are_retried_with_the_same_id(
    webhook_sink: WebhookSink, clock: FakeClock
) -> None:
    webhook_sink.statuses = [500, 503]
    app = create_app(make_settings(webhook_url=webhook_sink.url, webhook_secret=WEBHOOK_SECRET), clock=clock)
    async with asgi_client(app) as client:
        await transfer(client, "t-1")
        received = await webhook_sink.wait_for(3)
        status = await drained(client)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert [(d["attempt"], d["status_code"]) for d in status["deliveries"]] == [(1, 500), (2, 503), (3, 200)]
    for delivery in received:  # every attempt is signed on its own
        verify([WEBHOOK_SECRET], delivery.headers, delivery.body, now=int(clock.now().timestamp()))


async def test_gives_up_after_max_attempts(clock: FakeClock) -> None:
    # Nothing listens on port 9 of 127.0.0.1 (discard service); connection refused each time.
    settings = make_settings(
        webhook_url="http://127.0.0.1:9/hooks", webhook_secret=WEBHOOK_SECRET, webhook_max_attempts=3
    )
    async with asgi_client(create_app(settings, clock=clock)) as client:
        await transfer(client, "t-1")
        status = await drained(client)
    assert [(d["attempt"], d["status_code"]) for d in status["deliveries"]] == [
        (1, None),
        (2, None),
        (3, None),
    ]
    assert all(d["error"] for d in status["deliveries"])


async def test_endpoint_can_be_set_at_run_time(webhook_sink: WebhookSink, clock: FakeClock) -> None:
    async with asgi_client(create_app(make_settings(), clock=clock)) as client:
        await transfer(client, "before")  # no endpoint yet: no event
        bad = await client.put("/_sim/webhooks", json={"url": webhook_sink.url, "secret": "whsec_!!"})
        assert bad.status_code == 422
        set_ = await client.put("/_sim/webhooks", json={"url": webhook_sink.url, "secret": WEBHOOK_SECRET})
        assert set_.json()["url"] == webhook_sink.url
        assert WEBHOOK_SECRET not in set_.text
        await transfer(client, "after")
        received = await webhook_sink.wait_for(1)
        await drained(client)
    assert [event_of(r)["data"]["idempotency_key"] for r in received] == ["after"]
