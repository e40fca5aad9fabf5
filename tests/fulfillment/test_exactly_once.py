"""``payments fulfillment-example`` as a real process on a real broker: killed with SIGKILL mid-stream and
restarted, it applies every result exactly once; re-deliveries are skipped; aborted results never show.

The results are produced the way the processor produces them: by a transactional producer, keyed by
account, dense seqs per account. One transaction is aborted after its records reached the log (phantom
results that a read_uncommitted consumer would apply), one committed transaction re-publishes copies of
results already published (what a replay or a mirrored topic delivers).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka import Producer

from payments.schemas.state import ResultEvent, ResultType
from payments.settings import KafkaSettings
from tests.fulfillment.results import encode, history, interleave, phantom
from tests.support import Service, producer, service_env

pytestmark = pytest.mark.integration

ACCOUNTS = 50
PER_ACCOUNT = 60  # 3,000 results
CHUNK = 50  # results per producer transaction
DUPLICATES = 100


def _service(kafka: KafkaSettings, db: Path, tmp_path: Path, *args: str) -> Service:
    group = f"fulfillment-{uuid.uuid4().hex[:8]}"
    # 3 s: a SIGKILLed member leaves the group that long after its last heartbeat, delaying each restart.
    env = service_env(kafka, "", PAYMENTS_SESSION_TIMEOUT_MS="3000", PAYMENTS_LOG_LEVEL="INFO")
    return Service(
        ["fulfillment-example", "--db", str(db), "--group-id", group, *args],
        env,
        tmp_path / "fulfillment.log",
    )


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return conn.execute(sql).fetchall()


def _scalar(db: Path, sql: str) -> int:
    """0 until the service has created the store."""
    if not db.exists():
        return 0
    try:
        (value,) = _rows(db, sql)[0]
    except sqlite3.OperationalError:  # no such table yet
        return 0
    assert value is None or isinstance(value, int)
    return value or 0


def _applied(db: Path) -> int:
    return _scalar(db, "SELECT COUNT(*) FROM applied_results")


def _progressed(db: Path, since: int) -> bool:
    return _applied(db) > since


def _skipped(db: Path) -> int:
    return _scalar(db, "SELECT SUM(duplicates_skipped) FROM consumer_progress")


def _wait(cond: Callable[[], bool], svc: Service, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert svc.alive(), f"service died waiting for {what}:\n{svc.log_path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}:\n{svc.log_path.read_text()[-3000:]}"
        )
        time.sleep(0.1)


def _txn_producer(kafka: KafkaSettings) -> Producer:
    prod = Producer(
        {
            **kafka.client_config(),  # murmur2_random, like the processor
            "transactional.id": f"fulfillment-test-{uuid.uuid4().hex}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    prod.init_transactions(30)
    return prod


def _transaction(prod: Producer, topic: str, events: Sequence[ResultEvent], *, commit: bool = True) -> None:
    prod.begin_transaction()
    for e in events:
        prod.produce(topic, key=e.account_id.encode(), value=encode(e))
    if commit:
        prod.commit_transaction(30)
    else:
        assert prod.flush(30) == 0  # the phantoms are in the log before the abort marker
        prod.abort_transaction(30)


class _Feed:
    """Publishes the stream in transactions at a steady pace (~15 s), with one aborted transaction of
    phantoms and one committed transaction of duplicate copies along the way."""

    def __init__(self, kafka: KafkaSettings, rng: random.Random) -> None:
        self.topic = kafka.topics.results
        self.histories = [history(f"acct-{i:02d}", PER_ACCOUNT, rng) for i in range(ACCOUNTS)]
        self.stream = interleave(self.histories, rng)
        self._rng = rng
        self._prod = _txn_producer(kafka)
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.done.set()

    def _run(self) -> None:
        sent = 0
        for i in range(0, len(self.stream), CHUNK):
            chunk = self.stream[i : i + CHUNK]
            _transaction(self._prod, self.topic, chunk)
            sent += len(chunk)
            if i == 20 * CHUNK:
                _transaction(self._prod, self.topic, self._phantoms(sent), commit=False)
            if i == 40 * CHUNK:
                copies = self._rng.sample(self.stream[:sent], DUPLICATES)
                _transaction(self._prod, self.topic, copies)
            time.sleep(0.25)
        assert self._prod.flush(30) == 0

    def _phantoms(self, sent: int) -> list[ResultEvent]:
        """Each real account's next unpublished seq (taken later by the real result), and accounts that
        exist only in the aborted transaction."""
        published = defaultdict(int)
        for e in self.stream[:sent]:
            published[e.account_id] = e.seq
        nxt = [
            h[published[h[0].account_id]] for h in self.histories if published[h[0].account_id] < PER_ACCOUNT
        ]
        bogus = [e for j in range(3) for e in history(f"aborted-{j}", 3, self._rng)]
        return [phantom(e) for e in nxt[:10]] + bogus


def test_killed_mid_stream_and_restarted_applies_every_result_exactly_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    rng = random.Random(20260512)
    db = tmp_path / "fulfillment.sqlite3"
    feed = _Feed(kafka_settings, rng)
    total = ACCOUNTS * PER_ACCOUNT
    svc = _service(kafka_settings, db, tmp_path).start()
    feeder = threading.Thread(target=feed.run, daemon=True)
    feeder.start()
    at_kill: list[int] = []
    try:
        while len(at_kill) < 3:
            progress_from = _applied(db)
            _wait(partial(_progressed, db, progress_from), svc, "progress since the (re)start")
            if _applied(db) >= total:
                break
            time.sleep(rng.uniform(0.0, 0.4))  # land anywhere: mid-poll, mid-batch, mid-commit
            svc.kill9()
            at_kill.append(_applied(db))
            svc.start()
        feeder.join(60)
        assert feed.error is None
        _wait(lambda: _applied(db) >= total and _skipped(db) >= DUPLICATES, svc, "every result")
        time.sleep(1.0)  # anything extra (a double application) would show up now
        assert len(at_kill) >= 2, f"killed only at {at_kill}: the stream ended too early"
        assert all(n < total for n in at_kill)
        _assert_exactly_once(db, feed)
        assert _skipped(db) == DUPLICATES  # offsets stored with the effects: no re-delivery after kills

        # Lose the stored positions (as after a rebalance onto a consumer that re-reads): the whole topic
        # is delivered again and every result is recognised by its seq and skipped.
        svc.signal(signal.SIGTERM)
        assert svc.proc is not None
        assert svc.proc.wait(30) == 0, svc.log_path.read_text()[-3000:]
        with closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("DELETE FROM kafka_offsets")
        svc.start()
        again = DUPLICATES + total + DUPLICATES  # the copies, plus every record of the topic once more
        _wait(lambda: _skipped(db) >= again, svc, "the re-read of the whole topic")
        time.sleep(1.0)
        assert _skipped(db) == again
        _assert_exactly_once(db, feed)
    finally:
        svc.stop()


def _assert_exactly_once(db: Path, feed: _Feed) -> None:
    applied = _rows(
        db, "SELECT event_id, command_id, account_id, seq, verdict FROM applied_results ORDER BY id"
    )
    expected = {(e.event_id, e.command_id) for e in feed.stream}
    assert len(applied) == len(expected)
    assert {(str(r[0]), str(r[1])) for r in applied} == expected  # no phantom, none missing, none twice
    assert {r[4] for r in applied} == {"apply"}
    seqs: dict[str, list[int]] = defaultdict(list)
    for _, _, account, seq, _ in applied:
        assert isinstance(seq, int)
        seqs[str(account)].append(seq)
    assert seqs == {h[0].account_id: list(range(1, PER_ACCOUNT + 1)) for h in feed.histories}
    assert _rows(db, "SELECT COUNT(*), MIN(last_seq), MAX(last_seq) FROM consumer_progress") == [
        (ACCOUNTS, PER_ACCOUNT, PER_ACCOUNT)
    ]

    succeeded = [e for e in feed.stream if e.type is ResultType.PAYMENT_SUCCEEDED]
    fulfilled = _rows(db, "SELECT event_id FROM fulfillments")
    assert sorted(str(r[0]) for r in fulfilled) == sorted(e.event_id for e in succeeded)
    view = {
        str(r[0]): r[1:]
        for r in _rows(
            db,
            "SELECT account_id, version, results_applied, fulfilled_count, fulfilled_amount FROM account_view",
        )
    }
    for h in feed.histories:
        done = [e.operation.amount for e in h if e.type is ResultType.PAYMENT_SUCCEEDED and e.operation]
        assert view[h[0].account_id] == (PER_ACCOUNT, PER_ACCOUNT, len(done), sum(done))


@pytest.mark.parametrize("bad", ["gap", "undecodable"])
def test_stops_at_a_result_it_cannot_apply_and_points_its_offset_there(
    bad: str, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    topic = kafka_settings.topics.results
    events = history("acct-gap", 4, random.Random(7))
    records = [encode(events[0]), encode(events[1])]
    records.append(encode(events[3]) if bad == "gap" else b'{"v": 2, "event_id": "acct-gap:3"}')
    prod = producer(kafka_settings)
    for value in records:  # one partition, offsets 0, 1, 2 (no transaction markers)
        prod.produce(topic, key=b"acct-gap", value=value)
    assert prod.flush(30) == 0
    db = tmp_path / "fulfillment.sqlite3"
    expected_log = (
        "sequence gap on account acct-gap: expected seq 3, got 4" if bad == "gap" else "undecodable result at"
    )
    # The baseline policy changes nothing here: the account is known once seq 1 is applied.
    for args in ((), ("--gap-policy", "baseline")):
        svc = _service(kafka_settings, db, tmp_path, *args).start()
        try:
            assert svc.proc is not None
            assert svc.proc.wait(60) == 1, svc.log_path.read_text()[-3000:]
        finally:
            svc.stop()
        log = svc.log_path.read_text()
        assert log.count(expected_log) == (1 if not args else 2), log[-3000:]
        assert _rows(db, "SELECT account_id, last_seq FROM consumer_progress") == [("acct-gap", 2)]
        assert _rows(db, "SELECT next_offset FROM kafka_offsets") == [(2,)]
