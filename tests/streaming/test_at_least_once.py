"""The at-least-once worker on a real broker: ordered commits, the in-flight cap, graceful stop."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from payments.settings import KafkaSettings
from payments.streaming.at_least_once import AtLeastOnceSettings, AtLeastOnceWorker, Handler, Record
from tests.support import producer

pytestmark = [pytest.mark.integration]


def fill(kafka: KafkaSettings, n: int) -> None:
    prod = producer(kafka)
    for i in range(n):
        prod.produce(kafka.topics.psp_requests, key=f"k{i % 17}".encode(), value=str(i).encode())
    assert prod.flush(30) == 0


def committed(kafka: KafkaSettings, group: str) -> dict[int, int]:
    topic = kafka.topics.psp_requests
    c = Consumer({**kafka.consumer_config(), "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(kafka.partitions)]
        # An empty partition has nothing committed (-1001); read that as position 0.
        return {tp.partition: max(tp.offset, 0) for tp in c.committed(parts, timeout=10)}
    finally:
        c.close()


def ends(kafka: KafkaSettings) -> dict[int, int]:
    topic = kafka.topics.psp_requests
    c = Consumer({**kafka.consumer_config(), "group.id": "watermarks"})
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(kafka.partitions)
        }
    finally:
        c.close()


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def worker(kafka: KafkaSettings, group: str, handler: Handler, **s: object) -> AtLeastOnceWorker:
    return AtLeastOnceWorker(
        consumer_config=kafka.consumer_config(),
        topics=[kafka.topics.psp_requests],
        settings=AtLeastOnceSettings.model_validate({"group_id": group, "session_timeout_ms": 3000, **s}),
        handler=handler,
    )


async def test_commits_stop_at_a_record_still_in_flight(kafka_settings: KafkaSettings) -> None:
    fill(kafka_settings, 400)
    group = f"{kafka_settings.topics.psp_requests}.g1"
    stuck = asyncio.Event()
    stuck_at: list[Record] = []
    handled: Counter[int] = Counter()
    rng = random.Random(5)

    async def handle(rec: Record) -> None:
        if rec.value == b"200":  # one record that does not finish until released
            stuck_at.append(rec)
            await stuck.wait()
        else:
            await asyncio.sleep(rng.uniform(0, 0.05))  # the rest finish out of order
        handled[int(rec.value or b"-1")] += 1

    stop = asyncio.Event()
    w = worker(kafka_settings, group, handle, commit_interval_s=0.05)
    run = asyncio.create_task(w.run(stop))
    end = ends(kafka_settings)
    await until(lambda: len(handled) == 399, 30, "all but the stuck record")
    rec = stuck_at[0]
    want = {p: o for p, o in end.items() if p != rec.partition}
    await until(lambda: all(committed(kafka_settings, group)[p] == o for p, o in want.items()), 10, "commits")
    # Everything after the stuck record in its partition is done, yet the commit must not pass it.
    assert committed(kafka_settings, group)[rec.partition] == rec.offset
    stuck.set()
    await until(lambda: committed(kafka_settings, group) == end, 10, "the commit past the released record")
    stop.set()
    await asyncio.wait_for(run, 20)
    assert set(handled) == set(range(400))


async def test_in_flight_cap_pauses_without_skipping_and_stop_drains(kafka_settings: KafkaSettings) -> None:
    fill(kafka_settings, 300)
    group = f"{kafka_settings.topics.psp_requests}.g2"
    running = peak = 0
    handled: Counter[int] = Counter()

    async def handle(rec: Record) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        handled[int(rec.value or b"-1")] += 1

    stop = asyncio.Event()
    run = asyncio.create_task(worker(kafka_settings, group, handle, max_in_flight=10, poll_batch=4).run(stop))
    await until(lambda: len(handled) == 300, 60, "every record")
    stop.set()
    await asyncio.wait_for(run, 20)
    assert peak <= 10
    assert set(handled) == set(range(300))  # pausing and resuming skipped nothing
    assert committed(kafka_settings, group) == ends(kafka_settings)  # the graceful stop committed everything


async def test_partitions_moving_to_a_second_worker_lose_nothing(kafka_settings: KafkaSettings) -> None:
    fill(kafka_settings, 400)
    group = f"{kafka_settings.topics.psp_requests}.g3"
    handled: dict[str, Counter[int]] = {"a": Counter(), "b": Counter()}

    def handler(name: str) -> Handler:
        async def handle(rec: Record) -> None:
            await asyncio.sleep(0.03)
            handled[name][int(rec.value or b"-1")] += 1

        return handle

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(worker(kafka_settings, group, handler("a"), max_in_flight=10).run(stop_a))
    await until(lambda: len(handled["a"]) >= 60, 30, "worker a to make progress")
    # b joins: cooperative rebalancing revokes some of a's partitions (a commits their prefix) and hands
    # them to b, which resumes from that commit.
    run_b = asyncio.create_task(worker(kafka_settings, group, handler("b"), max_in_flight=10).run(stop_b))
    everything = set(range(400))
    await until(lambda: set(handled["a"]) | set(handled["b"]) == everything, 60, "every record")
    await until(lambda: committed(kafka_settings, group) == ends(kafka_settings), 10, "commits to the end")
    stop_a.set()
    stop_b.set()
    await asyncio.wait_for(asyncio.gather(run_a, run_b), 30)
    assert handled["b"], "the second worker never got a partition"
