"""The projector's progress scripts on a real Redis (no broker): epoch, marks, completeness, ready."""

from __future__ import annotations

from typing import cast

import pytest
import redis

from payments.readmodel.layout import COMPLETE_KEY, READY_KEY
from payments.readmodel.progress import Verdict, VerdictKind
from payments.readmodel.progress_store import ProgressStore

pytestmark = pytest.mark.integration

A, B = "t.results:0", "t.ledger:0"


def test_epoch_is_created_once_and_resets_completeness(redis_db: str) -> None:
    r: redis.Redis = redis.Redis.from_url(redis_db)
    store = ProgressStore(r)
    r.hset(COMPLETE_KEY, A, "1")
    r.set(READY_KEY, "old")
    assert store.ensure_epoch("e1") == "e1"
    assert not r.exists(COMPLETE_KEY, READY_KEY)  # a new epoch: every partition must catch up again
    store.complete("e1", 2, [A])
    assert store.ensure_epoch("e2") == "e1"  # another instance adopts the existing one...
    assert cast("bytes | None", r.hget(COMPLETE_KEY, A)) == b"1"  # ...and resets nothing
    r.close()


def test_marks_advance_only_under_the_callers_epoch(redis_db: str) -> None:
    r: redis.Redis = redis.Redis.from_url(redis_db)
    store = ProgressStore(r)
    store.ensure_epoch("e1")
    assert store.sync("e1", [(A, None, 10), (B, None, 3)]) == Verdict(VerdictKind.OK, ready=False)
    assert store.load([A, B, "t.results:1"]) == ({A: 10, B: 3, "t.results:1": None}, set())
    assert store.sync("e1", [(A, 10, 12)]).kind is VerdictKind.OK
    r.flushall()
    assert store.sync("e1", [(A, 12, 20)]) == Verdict(VerdictKind.LOST)  # Redis lost it all
    assert store.load([A]) == ({A: None}, set())  # and nothing was written
    store.ensure_epoch("e2")
    assert store.sync("e1", [(A, None, 1)]) == Verdict(VerdictKind.LOST)  # another instance's new epoch
    r.close()


def test_marks_older_than_written_drop_readiness(redis_db: str) -> None:
    r: redis.Redis = redis.Redis.from_url(redis_db)
    store = ProgressStore(r)
    store.ensure_epoch("e1")
    store.sync("e1", [(A, None, 10), (B, None, 3)])
    assert store.complete("e1", 2, [A, B]) == 1
    assert r.exists(READY_KEY)
    assert store.sync("e1", [(A, 10, None), (B, 3, None)]) == Verdict(VerdictKind.OK, ready=True)
    # Redis came back from an older copy: A's mark is 5 where 10 was written, B's is gone
    r.hset("readmodel:offsets", A, "5")
    r.hdel("readmodel:offsets", B)
    verdict = store.sync("e1", [(A, 10, 14), (B, 3, None)])
    assert verdict == Verdict(VerdictKind.BEHIND, behind={A: 5, B: None})
    assert not r.exists(READY_KEY)  # reads stop until they caught up again
    assert r.hgetall(COMPLETE_KEY) == {}
    assert store.load([A]) == ({A: 5}, set())  # the batch's mark was not written
    r.close()


def test_ready_needs_every_partition_of_every_instance(redis_db: str) -> None:
    r: redis.Redis = redis.Redis.from_url(redis_db)
    store = ProgressStore(r)
    store.ensure_epoch("e1")
    assert store.complete("e1", 3, [A]) == 0  # instance 1
    assert store.complete("e1", 3, [B]) == 0  # instance 2
    assert not r.exists(READY_KEY)
    assert store.complete("e1", 3, ["t.results:1"]) == 1  # instance 1 again, its last partition
    assert r.get(READY_KEY) == b"e1"
    assert store.complete("stale", 3, [A]) == -1
    r.close()


def test_marks_only_move_forward(redis_db: str) -> None:
    """An old owner finishing a batch after a rebalance and the new owner behind it: both are true, the
    higher mark stays, and neither looks like a loss to the other."""
    r: redis.Redis = redis.Redis.from_url(redis_db)
    store = ProgressStore(r)
    store.ensure_epoch("e1")
    store.sync("e1", [(A, None, 100)])
    assert store.sync("e1", [(A, 100, 150)]).kind is VerdictKind.OK  # the old owner
    assert store.sync("e1", [(A, 100, 120)]).kind is VerdictKind.OK  # the new owner, from 100
    assert store.load([A]) == ({A: 150}, set())
    assert store.sync("e1", [(A, 150, None)]).kind is VerdictKind.OK  # the old owner's next check
    r.close()
