"""Helpers for the gateway's integration tests: a running app on the real Redis and broker, read-model
fixtures written through the projector's own writer, and a stand-in for the processor built on the pure
``decide()`` (the real processor is not started in these tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from payments.gateway.app import create_app
from payments.gateway.projector import ReadModelWriter
from payments.gateway.seed import create_api_key
from payments.gateway.settings import GatewaySettings
from payments.processor.decide import decide
from payments.schemas.commands import AdjustBalance, OpenAccount, RequestPayment, decode_command
from payments.schemas.state import AccountSnapshot, AccountStatus, ResultEvent, ResultType
from payments.settings import KafkaSettings, RedisSettings
from tests.support import read_all

NOW_MS = 1_767_225_600_000
Command = OpenAccount | AdjustBalance | RequestPayment


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
    kafka: KafkaSettings, redis_url: str, *, seed_users: bool = True, **overrides: Any
) -> AsyncIterator[Gateway]:
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
    if seed_users:
        r: Redis = Redis.from_url(redis_url)
        try:
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


def commands(kafka: KafkaSettings, *, expect: int | None = None, idle_s: float = 1.5) -> list[Command]:
    """Every command on this test's commands topic (waits ``idle_s`` for stragglers)."""
    return [
        decode_command(raw) for raw in read_all(kafka, kafka.topics.commands, expect=expect, idle_s=idle_s)
    ]


class FakeProcessor:
    """Stands in for the processor: consumes commands, applies the pure ``decide()`` to an in-memory state
    seeded from the test's accounts, and writes the results either straight into the read model (as the
    projector would) or, with ``results_topic``, to Kafka for a real projector to pick up."""

    def __init__(self, kafka: KafkaSettings, redis_url: str, *, results_topic: bool = False) -> None:
        self._kafka = kafka
        self._writer = writer(redis_url)
        self._accounts: dict[str, AccountSnapshot] = {}
        self._producer = Producer(kafka.client_config()) if results_topic else None
        self._consumer = Consumer(
            {
                **kafka.client_config(),
                "group.id": f"fake-processor-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        md = self._consumer.list_topics(kafka.topics.commands, timeout=10)
        parts = md.topics[kafka.topics.commands].partitions
        self._consumer.assign([TopicPartition(kafka.topics.commands, p, 0) for p in parts])

    def seed(self, snap: AccountSnapshot) -> None:
        self._accounts[snap.account_id] = snap

    def process_one(self, timeout_s: float = 20.0) -> ResultEvent:
        msg = self._consumer.poll(timeout_s)
        assert msg is not None, "no command arrived"
        assert msg.error() is None, msg.error()
        cmd = decode_command(msg.value() or b"")
        decision = decide(self._accounts.get(cmd.account_id), None, cmd)
        assert decision.account is not None
        assert len(decision.results) == 1
        self._accounts[cmd.account_id] = decision.account
        result = decision.results[0]
        if self._producer is not None:
            self._producer.produce(
                self._kafka.topics.results,
                key=cmd.account_id.encode(),
                value=result.model_dump_json().encode(),
            )
            self._producer.flush(10)
        else:
            self._writer.apply([result])
        return result

    async def process_one_async(self, timeout_s: float = 20.0) -> ResultEvent:
        return await asyncio.to_thread(self.process_one, timeout_s)

    def close(self) -> None:
        self._consumer.close()
