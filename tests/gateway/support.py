"""Helpers for the gateway's integration tests: a running app on the real Redis and broker, read-model
fixtures written through the projector's own writer, and a stand-in for the processor
(``fake_processor``; the real processor is not started in these tests)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from payments.gateway.app import create_app
from payments.gateway.seed import create_api_key
from payments.gateway.settings import GatewaySettings
from payments.readmodel.layout import READY_KEY
from payments.readmodel.projector import ReadModelWriter
from payments.schemas.commands import AnyCommand, decode_command
from payments.schemas.state import AccountSnapshot, AccountStatus, ResultEvent, ResultType
from payments.settings import KafkaSettings, RedisSettings
from tests.gateway.fake_processor import FakeProcessor
from tests.support import read_all

NOW_MS = 1_767_225_600_000


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    settings: GatewaySettings
    registry: CollectorRegistry
    keys: dict[str, str]  # user id -> API key: admin, alice, bob (members of ACCOUNT), carol (not)

    def auth(self, user: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}", **headers}

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running_gateway(
    kafka: KafkaSettings,
    redis_url: str,
    *,
    seed_users: bool = True,
    read_model_ready: bool = True,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """``read_model_ready``: declare the read model complete (``readmodel:ready``), as a projector does once
    it has caught up; these tests write the read model themselves, without one."""
    settings = GatewaySettings(kafka=kafka, redis=RedisSettings(url=redis_url), **overrides)
    registry = CollectorRegistry()
    app = create_app(
        settings,
        clock_ms=lambda: NOW_MS,
        registry=registry,
        # Local broker: reconnect quickly instead of librdkafka's production back-offs.
        producer_config={"reconnect.backoff.max.ms": 200},
    )
    keys: dict[str, str] = {}
    r: Redis = Redis.from_url(redis_url)
    try:
        if read_model_ready:
            await r.set(READY_KEY, "test")
        if seed_users:
            keys["admin"] = await create_api_key(r, "admin", "admin")
            for user in ("alice", "bob", "carol"):
                keys[user] = await create_api_key(r, user, "member")
    finally:
        await r.aclose()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        yield Gateway(app, client, settings, registry, keys)


def new_account_id() -> str:
    return f"acct_{uuid.uuid4().hex[:12]}"


def writer(redis_url: str) -> ReadModelWriter:
    return ReadModelWriter(redis.Redis.from_url(redis_url), operation_retention_s=None)


def put_account(
    redis_url: str,
    account_id: str,
    *,
    members: tuple[str, ...] = ("alice", "bob"),
    currency: str = "EUR",
    posted: int = 0,
    version: int = 1,
) -> AccountSnapshot:
    """Put an open account into the read model as the projector would (a result with seq = version)."""
    snap = AccountSnapshot(
        account_id=account_id,
        status=AccountStatus.OPEN,
        currency=currency,
        members=tuple(sorted(members)),
        posted=posted,
        version=version,
        opened_by_command=f"open:{account_id}",
    )
    writer(redis_url).apply([result_for(snap, f"open:{account_id}")])
    return snap


def result_for(
    snap: AccountSnapshot, command_id: str, rtype: ResultType = ResultType.ACCOUNT_OPENED
) -> ResultEvent:
    return ResultEvent(
        event_id=f"{snap.account_id}:{snap.version}",
        type=rtype,
        account_id=snap.account_id,
        seq=snap.version,
        occurred_at=NOW_MS,
        command_id=command_id,
        account=snap,
    )


def commands(kafka: KafkaSettings, *, expect: int | None = None, idle_s: float = 1.5) -> list[AnyCommand]:
    """Every command on this test's commands topic (waits ``idle_s`` for stragglers)."""
    return [
        decode_command(raw) for raw in read_all(kafka, kafka.topics.commands, expect=expect, idle_s=idle_s)
    ]


__all__ = ["FakeProcessor"]
