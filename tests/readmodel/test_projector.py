"""The projector: results topic → Redis read model, version-guarded, committed after the write."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
import redis
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from payments.readmodel.metrics import ProjectorMetrics
from payments.readmodel.projector import Projector
from payments.readmodel.settings import ProjectorSettings
from payments.schemas.ledger import LedgerTransaction, Posting
from payments.schemas.state import (
    AccountSnapshot,
    AccountStatus,
    Operation,
    OperationKind,
    OperationStatus,
    ResultEvent,
    ResultType,
    StatusChange,
)
from payments.settings import KafkaSettings, RedisSettings
from tests.gateway.support import FakeProcessor, new_account_id, put_account, running_gateway

pytestmark = pytest.mark.integration


@contextmanager
def projecting(
    kafka: KafkaSettings, redis_url: str, group: str | None = None, **overrides: Any
) -> Iterator[CollectorRegistry]:
    settings = ProjectorSettings(
        kafka=kafka,
        redis=RedisSettings(url=redis_url),
        group_id=group or f"projector-{uuid.uuid4().hex}",
        **overrides,
    )
    registry = CollectorRegistry()
    client: redis.Redis = redis.Redis.from_url(redis_url)
    projector = Projector(
        settings, client, ProjectorMetrics(registry), consumer_config={"session.timeout.ms": 6000}
    )
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        stop.set()
        thread.join(30)
        client.close()


def until(predicate: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _event(acct: str, seq: int, *, posted: int, op_status: OperationStatus | None = None) -> ResultEvent:
    snap = AccountSnapshot(
        account_id=acct,
        status=AccountStatus.OPEN,
        currency="EUR",
        members=("alice",),
        posted=posted,
        version=seq,
    )
    op = None
    if op_status is not None:
        op = Operation(
            op_id=f"pay_{acct}",
            kind=OperationKind.PAYMENT,
            account_id=acct,
            principal="alice",
            amount=10,
            currency="EUR",
            payee="shop",
            fingerprint="f" * 64,
            status=op_status,
            created_at=seq,
            updated_at=seq,
            history=(StatusChange(status=op_status, at=seq, seq=seq),),
        )
    rtype = ResultType.PAYMENT_SUCCEEDED if op else ResultType.ACCOUNT_OPENED
    return ResultEvent(
        event_id=f"{acct}:{seq}",
        type=rtype,
        account_id=acct,
        seq=seq,
        occurred_at=seq,
        command_id=op.op_id if op else f"open:{acct}",
        account=snap,
        operation=op,
    )


def _produce(kafka: KafkaSettings, *events: ResultEvent | bytes) -> None:
    producer = Producer(kafka.client_config())
    for e in events:
        key = e.account_id.encode() if isinstance(e, ResultEvent) else b"poison"
        value = e.model_dump_json().encode() if isinstance(e, ResultEvent) else e
        producer.produce(kafka.topics.results, key=key, value=value)
    assert producer.flush(10) == 0


def _field(r: redis.Redis, key: str, name: str) -> bytes | None:
    # redis-py's inline types cover sync and async clients at once; this client is sync and bytes-valued.
    return cast("bytes | None", r.hget(key, name))


def _account(r: redis.Redis, acct: str) -> AccountSnapshot:
    return AccountSnapshot.model_validate_json(_field(r, f"acct:{acct}", "data") or b"")


def _operation(r: redis.Redis, op_id: str) -> Operation:
    return Operation.model_validate_json(_field(r, f"op:{op_id}", "data") or b"")


def test_projects_results_with_a_version_guard(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    r: redis.Redis = redis.Redis.from_url(redis_db)
    pubsub = r.pubsub()  # type: ignore[no-untyped-call]  # unannotated in redis-py
    pubsub.subscribe(f"opdone:pay_{acct}")
    with projecting(kafka_settings, redis_db) as registry:
        _produce(
            kafka_settings,
            _event(acct, 1, posted=0),
            b"not json",
            _event(acct, 2, posted=-10, op_status=OperationStatus.SUCCEEDED),
        )
        until(lambda: _field(r, f"acct:{acct}", "seq") == b"2")
        op = _operation(r, f"pay_{acct}")
        assert op.status is OperationStatus.SUCCEEDED
        assert _field(r, f"op:pay_{acct}", "seq") == b"2"
        assert _account(r, acct).posted == -10

        # a redelivered older result changes nothing (and notifies nobody)
        _produce(kafka_settings, _event(acct, 1, posted=999, op_status=OperationStatus.DECLINED))

        def stale() -> float:
            return registry.get_sample_value("payments_projector_results_total", {"outcome": "stale"}) or 0

        until(lambda: stale() == 1)
        assert _field(r, f"acct:{acct}", "seq") == b"2"
        assert _account(r, acct).posted == -10
        assert _operation(r, f"pay_{acct}").status is OperationStatus.SUCCEEDED
        # The poison record is on another partition than the account's: nothing orders it before them.
        until(lambda: registry.get_sample_value("payments_projector_poison_total") == 1)
        assert registry.get_sample_value("payments_projector_results_total", {"outcome": "applied"}) == 2

    notes = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if msg is not None:
            notes.append(msg["data"])
    assert notes == [b"2"]
    pubsub.close()
    r.close()


def test_restart_resumes_from_the_redis_marks(kafka_settings: KafkaSettings, redis_db: str) -> None:
    """A restarted projector starts where the read model is (its marks in Redis), whatever Kafka says: the
    second one is in a new group, without any committed offset."""
    acct = new_account_id()
    r: redis.Redis = redis.Redis.from_url(redis_db)
    with projecting(kafka_settings, redis_db):
        _produce(kafka_settings, _event(acct, 1, posted=0))
        until(lambda: _field(r, f"acct:{acct}", "seq") == b"1")
    with projecting(kafka_settings, redis_db) as registry:
        _produce(kafka_settings, _event(acct, 2, posted=7))
        until(lambda: _field(r, f"acct:{acct}", "seq") == b"2")
        assert registry.get_sample_value("payments_projector_results_total", {"outcome": "applied"}) == 1
        assert registry.get_sample_value("payments_projector_results_total", {"outcome": "stale"}) == 0
    r.close()


def test_restart_after_redis_lost_its_data_rebuilds(kafka_settings: KafkaSettings, redis_db: str) -> None:
    """The same group, its offsets committed past seq 1, but Redis empty: the projector starts from the
    beginning (no mark), so seq 1 is back before anything newer arrives."""
    acct = new_account_id()
    group = f"projector-{uuid.uuid4().hex}"
    r: redis.Redis = redis.Redis.from_url(redis_db)
    with projecting(kafka_settings, redis_db, group):
        _produce(kafka_settings, _event(acct, 1, posted=0))
        until(lambda: _field(r, f"acct:{acct}", "seq") == b"1")
    r.flushdb()
    with projecting(kafka_settings, redis_db, group):
        until(lambda: _field(r, f"acct:{acct}", "seq") == b"1")
        until(lambda: r.exists("readmodel:ready") == 1)
    r.close()


async def test_prefer_wait_through_the_results_topic(kafka_settings: KafkaSettings, redis_db: str) -> None:
    """Gateway → commands topic → (stand-in processor) → results topic → projector → Redis → wake-up."""
    acct = new_account_id()
    fake = FakeProcessor(kafka_settings, redis_db, results_topic=True)
    fake.seed(put_account(redis_db, acct, posted=100))
    try:
        with projecting(kafka_settings, redis_db):
            async with running_gateway(kafka_settings, redis_db) as gw:
                task = asyncio.create_task(
                    gw.client.post(
                        f"/v1/accounts/{acct}/payments",
                        json={"amount": 40, "currency": "EUR", "payee": "shop"},
                        headers=gw.auth("bob", **{"Idempotency-Key": "e2e", "Prefer": "wait=10"}),
                    )
                )
                await fake.process_one_async()
                resp = await task
                assert resp.status_code == 201, resp.text
                got = await gw.client.get(f"/v1/payments/{resp.json()['id']}", headers=gw.auth("alice"))
                assert got.json() == resp.json()
    finally:
        fake.close()


def _tx(acct: str, seq: int, tx_id: str) -> LedgerTransaction:
    return LedgerTransaction(
        tx_id=tx_id, account_id=acct, seq=seq, op_id=f"pay_{acct}", kind="payment", currency="EUR",
        occurred_at=seq, postings=(Posting(debit=f"customer:{acct}", credit="clearing:psp-payouts", amount=10),),
    )  # fmt: skip


def _produce_ledger(kafka: KafkaSettings, *records: LedgerTransaction | bytes) -> None:
    producer = Producer(kafka.client_config())
    for tx in records:
        key = tx.account_id.encode() if isinstance(tx, LedgerTransaction) else b"poison"
        value = tx.model_dump_json().encode() if isinstance(tx, LedgerTransaction) else tx
        producer.produce(kafka.topics.ledger, key=key, value=value)
    assert producer.flush(10) == 0


def test_indexes_ledger_and_operations_idempotently(kafka_settings: KafkaSettings, redis_db: str) -> None:
    acct = new_account_id()
    r: redis.Redis = redis.Redis.from_url(redis_db)
    with projecting(kafka_settings, redis_db) as registry:

        def ledger(outcome: str) -> float:
            return registry.get_sample_value("payments_projector_ledger_total", {"outcome": outcome}) or 0

        _produce_ledger(kafka_settings, _tx(acct, 3, "t3"), _tx(acct, 2, "t2"), b"not json")
        _produce(
            kafka_settings,
            _event(acct, 1, posted=0),
            _event(acct, 2, posted=0, op_status=OperationStatus.RESERVED),
            _event(acct, 3, posted=-10, op_status=OperationStatus.SUCCEEDED),
        )
        until(lambda: ledger("indexed") == 2 and _field(r, f"acct:{acct}", "seq") == b"3")
        # redelivered after a crash before the commit: nothing moves
        _produce_ledger(kafka_settings, _tx(acct, 2, "t2"), _tx(acct, 3, "t3"))
        _produce(kafka_settings, _event(acct, 2, posted=0, op_status=OperationStatus.RESERVED))
        until(lambda: ledger("duplicate") == 2)
        assert registry.get_sample_value("payments_projector_poison_total") == 1
    assert r.zrange(f"ledger:{acct}", 0, -1, withscores=True) == [(b"t2", 2.0), (b"t3", 3.0)]
    stored = LedgerTransaction.model_validate_json(cast("bytes", r.hget(f"ledgertx:{acct}", "t3")))
    assert stored == _tx(acct, 3, "t3")
    # the operation is indexed under the seq of its first status change (2), once
    assert r.zrange(f"acctops:{acct}:payment", 0, -1, withscores=True) == [(f"pay_{acct}".encode(), 2.0)]
    assert _operation(r, f"pay_{acct}").status is OperationStatus.SUCCEEDED
    r.close()


def test_notifies_the_operations_channel_too(kafka_settings: KafkaSettings, redis_db: str) -> None:
    """A PSP outcome is another command: its result wakes both its own channel and the payment's."""
    acct = new_account_id()
    r: redis.Redis = redis.Redis.from_url(redis_db)
    pubsub = r.pubsub()  # type: ignore[no-untyped-call]  # unannotated in redis-py
    pubsub.subscribe(f"opdone:pay_{acct}", f"opdone:whk.evt_{acct}")
    outcome = _event(acct, 2, posted=-10, op_status=OperationStatus.SUCCEEDED)
    outcome = outcome.model_copy(update={"command_id": f"whk.evt_{acct}"})
    with projecting(kafka_settings, redis_db):
        _produce(kafka_settings, outcome)
        until(lambda: _field(r, f"acct:{acct}", "seq") == b"2")
    notes = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if msg is not None:
            notes.append((msg["channel"], msg["data"]))
    assert sorted(notes) == sorted(
        [(f"opdone:pay_{acct}".encode(), b"2"), (f"opdone:whk.evt_{acct}".encode(), b"2")]
    )
    pubsub.close()
    r.close()


def test_rebuild_completes_on_transactional_topics(kafka_settings: KafkaSettings, redis_db: str) -> None:
    """The processor writes in transactions: a partition's last offset is a commit (or abort) marker,
    never delivered as a record, so catching up is told by the end-of-partition event, after a rebuild
    too. Aborted records never reach the read model."""
    acct = new_account_id()
    r: redis.Redis = redis.Redis.from_url(redis_db)
    producer = Producer({**kafka_settings.client_config(), "transactional.id": f"tx-{uuid.uuid4().hex}"})
    producer.init_transactions(10)
    for seqs, commit in (((1, 2), True), ((3,), False)):
        producer.begin_transaction()
        for seq in seqs:
            event = _event(acct, seq, posted=seq)
            producer.produce(kafka_settings.topics.results, key=acct.encode(), value=event.model_dump_json())
        if commit:
            producer.commit_transaction(10)
        else:
            producer.abort_transaction(10)
    with projecting(kafka_settings, redis_db, check_interval_s=0.2) as registry:
        until(lambda: r.exists("readmodel:ready") == 1 and _field(r, f"acct:{acct}", "seq") == b"2")
        r.flushall()
        until(lambda: r.exists("readmodel:ready") == 0)
        until(lambda: r.exists("readmodel:ready") == 1)
        assert _field(r, f"acct:{acct}", "seq") == b"2"
        assert registry.get_sample_value("payments_projector_rebuilds_total", {"reason": "lost"}) == 1
    r.close()
