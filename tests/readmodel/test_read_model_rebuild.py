"""Redis loses the read model (FLUSHALL; a restart without persistence): the projector notices, rebuilds
it from Kafka, and meanwhile the gateway answers reads with 503 ``read_model_rebuilding`` — never a 404 for
an account that exists, never an older version than one it showed — and keeps taking payments.

Real broker, real redis-server, a real projector; the processor is the gateway tests' stand-in writing its
results and ledger transactions to Kafka (``FakeProcessor(results_topic=True)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import redis

from payments.devstack.redis import RedisServer
from payments.gateway.auth import Principal, Role, apikey_redis_key
from payments.readmodel.layout import READY_KEY
from payments.schemas.commands import AdjustBalance, AnyCommand, OpenAccount, RequestPayment
from payments.schemas.state import AccountSnapshot, AccountStatus, OperationKind, ResultEvent, ResultType
from payments.settings import KafkaSettings
from tests.gateway.support import NOW_MS, FakeProcessor, Gateway, new_account_id, running_gateway
from tests.readmodel.test_projector import projecting, until
from tests.support import producer, send

pytestmark = pytest.mark.integration

# Small batches and a quick idle check: the rebuild takes a while (the window the test reads through) and
# an idle projector notices the loss quickly.
PROJECTOR: dict[str, Any] = {"batch_max_records": 25, "check_interval_s": 0.2}
FILLER_ACCOUNTS = 600


async def until_async(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _history(fake: FakeProcessor, kafka: KafkaSettings, accounts: list[str]) -> None:
    """Per account: opened, funded, three payments (each reserved then succeeded, with ledger postings)."""
    prod = producer(kafka)
    n = 0
    for acct in accounts:
        cmds: list[AnyCommand] = [
            OpenAccount(command_id=f"open:{acct}", account_id=acct, issued_at=NOW_MS, currency="EUR",
                        members=("alice", "bob"), principal="admin"),
            AdjustBalance(command_id=f"adj_{acct}", account_id=acct, issued_at=NOW_MS, amount=10_000,
                          currency="EUR", reason="funding", principal="admin"),
            *(RequestPayment(command_id=f"pay_{i}_{acct}", account_id=acct, issued_at=NOW_MS, amount=100 + i,
                             currency="EUR", payee="shop", principal="alice", fingerprint="f" * 64)
              for i in range(3)),
        ]  # fmt: skip
        for cmd in cmds:
            send(prod, kafka.topics.commands, cmd)
            n += 1
    assert prod.flush(10) == 0
    for _ in range(n):
        await fake.process_one_async()


def _filler(kafka: KafkaSettings) -> None:
    """Results of many other accounts, so that re-projecting takes more than a moment."""
    prod = producer(kafka)
    for i in range(FILLER_ACCOUNTS):
        acct = f"acct_filler{i:05d}"
        snap = AccountSnapshot(account_id=acct, status=AccountStatus.OPEN, currency="EUR", members=("x",),
                               version=1, opened_by_command=f"open:{acct}")  # fmt: skip
        event = ResultEvent(event_id=f"{acct}:1", type=ResultType.ACCOUNT_OPENED, account_id=acct, seq=1,
                            occurred_at=NOW_MS, command_id=f"open:{acct}", account=snap)  # fmt: skip
        prod.produce(kafka.topics.results, key=acct.encode(), value=event.model_dump_json().encode())
        prod.poll(0)
    assert prod.flush(10) == 0


def _reprovision_keys(r: redis.Redis, gw: Gateway) -> None:
    """API keys live in Redis too: after a loss an operator provisions them again (here: the same ones)."""
    for user, key in gw.keys.items():
        role = Role.ADMIN if user == "admin" else Role.MEMBER
        r.set(apikey_redis_key(key), Principal(user_id=user, role=role).model_dump_json())


class Reads:
    """Reads every account and payment of the test through the API and checks each answer against what
    was shown before: 200 at a version (status) at least as new, or 503 ``read_model_rebuilding``."""

    def __init__(self, gw: Gateway, fake: FakeProcessor, accounts: list[str]) -> None:
        self.gw = gw
        self.accounts = accounts
        self.versions = {a: 0 for a in accounts}
        self.payments = [op.op_id for op in fake.ops.values() if op.kind is OperationKind.PAYMENT]
        self.rebuilding = 0
        self.unavailable = 0

    def _refused(self, body: dict[str, str], status: int) -> None:
        assert status == 503, body
        if body["code"] == "read_model_rebuilding":
            self.rebuilding += 1
        else:
            assert body["code"] == "dependency_unavailable", body  # Redis itself down (restart)
            self.unavailable += 1

    async def once(self) -> None:
        for acct in self.accounts:
            resp = await self.gw.client.get(f"/v1/accounts/{acct}", headers=self.gw.auth("alice"))
            if resp.status_code != 200:
                self._refused(resp.json(), resp.status_code)
                continue
            version = resp.json()["version"]
            assert version >= self.versions[acct], f"{acct} went back from {self.versions[acct]} to {version}"
            self.versions[acct] = version
        for op_id in self.payments:
            resp = await self.gw.client.get(f"/v1/payments/{op_id}", headers=self.gw.auth("bob"))
            if resp.status_code != 200:
                self._refused(resp.json(), resp.status_code)
                continue
            assert resp.json()["status"] == "succeeded", resp.text  # terminal: it can only show that

    async def complete(self, fake: FakeProcessor, acct: str) -> bool:
        """The account, its payments and its ledger are all shown at their latest."""
        resp = await self.gw.client.get(f"/v1/accounts/{acct}", headers=self.gw.auth("alice"))
        if resp.status_code != 200 or resp.json()["version"] != fake.accounts[acct].version:
            return False
        pays = await self.gw.client.get(f"/v1/accounts/{acct}/payments", headers=self.gw.auth("alice"))
        ledger = await self.gw.client.get(f"/v1/accounts/{acct}/ledger", headers=self.gw.auth("alice"))
        ops = [o for o in fake.ops.values() if o.account_id == acct and o.kind is OperationKind.PAYMENT]
        txs = [t for t in fake.emitted if not isinstance(t, ResultEvent) and t.account_id == acct]
        return (
            pays.status_code == 200
            and sorted((p["id"], p["status"]) for p in pays.json()["items"])
            == sorted((o.op_id, o.status.value) for o in ops)
            and ledger.status_code == 200
            and len(ledger.json()["items"]) == len(txs)
        )


async def test_flushall_rebuilds_and_reads_never_regress(
    kafka_settings: KafkaSettings, redis_db: str
) -> None:
    accounts = [new_account_id() for _ in range(3)]
    fake = FakeProcessor(kafka_settings, redis_db, results_topic=True)
    r: redis.Redis = redis.Redis.from_url(redis_db)
    try:
        with projecting(kafka_settings, redis_db, **PROJECTOR) as registry:
            # a new deployment on empty topics is ready as soon as the projector has its partitions
            until(lambda: r.exists(READY_KEY) == 1, timeout_s=30)
            _filler(kafka_settings)
            async with running_gateway(kafka_settings, redis_db, read_model_ready=False) as gw:
                await _history(fake, kafka_settings, accounts)
                reads = Reads(gw, fake, accounts)
                await until_async(lambda: _all(reads.complete(fake, a) for a in accounts))
                await reads.once()
                assert reads.rebuilding == 0

                r.flushall()
                _reprovision_keys(r, gw)
                # a payment to an existing account during the rebuild: accepted, not 404
                during = await gw.client.post(
                    f"/v1/accounts/{accounts[0]}/payments",
                    json={"amount": 5, "currency": "EUR", "payee": "shop"},
                    headers=gw.auth("bob", **{"Idempotency-Key": "during-rebuild"}),
                )
                assert during.status_code == 202, during.text
                assert not r.exists(READY_KEY), "the rebuild ended before the test could look"
                assert gw.metric(
                    "payments_gateway_read_model_rebuilding_total", operation="membership_precheck"
                )
                deadline = time.monotonic() + 90
                while not r.exists(READY_KEY):
                    assert time.monotonic() < deadline, "not rebuilt in time"
                    await reads.once()
                await reads.once()
                assert reads.rebuilding > 0

                await fake.process_one_async()  # the payment taken during the rebuild
                await until_async(lambda: _all(reads.complete(fake, a) for a in accounts))
                await reads.once()
            assert registry.get_sample_value("payments_projector_rebuilds_total", {"reason": "lost"}) == 1
            assert registry.get_sample_value("payments_projector_read_model_ready") == 1
            assert registry.get_sample_value("payments_projector_rebuilding_partitions") == 0
    finally:
        fake.close()
        r.close()


async def test_redis_restart_rebuilds(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")  # in memory only: a restart comes back empty
    server.start()
    accounts = [new_account_id() for _ in range(2)]
    fake = FakeProcessor(kafka_settings, server.url, results_topic=True)
    try:
        with projecting(kafka_settings, server.url, **PROJECTOR) as registry:
            _filler(kafka_settings)
            async with running_gateway(kafka_settings, server.url, read_model_ready=False) as gw:
                await _history(fake, kafka_settings, accounts)
                reads = Reads(gw, fake, accounts)
                await until_async(lambda: _all(reads.complete(fake, a) for a in accounts))
                await reads.once()

                server.stop()
                await reads.once()  # Redis down: 503 dependency_unavailable
                assert reads.unavailable > 0
                server.start()  # same port, no data
                r: redis.Redis = redis.Redis.from_url(server.url)
                try:
                    _reprovision_keys(r, gw)
                    deadline = time.monotonic() + 90
                    while not r.exists(READY_KEY):
                        assert time.monotonic() < deadline, "not rebuilt in time"
                        await reads.once()
                finally:
                    r.close()
                assert reads.rebuilding > 0
                # every read on the way was 503 or at least as new as before; now all is back
                await until_async(lambda: _all(reads.complete(fake, a) for a in accounts))
                await reads.once()
            assert registry.get_sample_value("payments_projector_rebuilds_total", {"reason": "lost"}) == 1
    finally:
        fake.close()
        server.stop()


async def _all(checks: Iterable[Awaitable[bool]]) -> bool:
    """Every check true; lazily, so that the first false one ends it."""
    for check in checks:
        if not await check:
            return False
    return True
