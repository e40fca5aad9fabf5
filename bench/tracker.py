"""When each payment of our system reached a terminal state: a separate process reading
``payments.results`` (read_committed), the same view the projector and every downstream consumer get.

A separate process, so that parsing results never competes with the load generator for the GIL. It stamps
each result with ``time.monotonic()`` when it arrives (CLOCK_MONOTONIC is shared by all processes, so the
stamps compare with the load generator's); a result is visible to read_committed consumers only once its
transaction committed, which is the moment the outcome is final for everyone.

Two pipes. Requests and answers: ``("expect", ids)`` then ``("pending",)`` → how many of ``ids`` have no
terminal result yet; ``("take",)`` → (terminal, decided) dicts of op id → monotonic time, and forget them;
``("stream", on)``; ``("stop",)``. While streaming is on, every batch of terminal results is also pushed
on the second pipe as a list of (op id, time), for a load generator whose workers wait for completion
(``CompletionFeed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

TERMINAL = frozenset({"payment_succeeded", "payment_failed", "payment_declined", "payment_rejected"})
DECIDED = "payment_reserved"  # the processor placed the hold: its decision, before the PSP call


def _assign_at_end(consumer: Consumer, topic: str) -> None:
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = sorted(metadata.topics[topic].partitions)
    at = []
    for p in partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        at.append(TopicPartition(topic, p, high))
    consumer.assign(at)


class _State:
    def __init__(self) -> None:
        self.terminal: dict[str, float] = {}
        self.decided: dict[str, float] = {}
        self.expected: set[str] = set()
        self.streaming = False

    def prune(self) -> int:
        self.expected = {op_id for op_id in self.expected if op_id not in self.terminal}
        return len(self.expected)


def _answer(state: _State, request: tuple[Any, ...], conn: Connection) -> bool:
    """Serve one request; False means stop."""
    if request[0] == "expect":
        state.expected = set(request[1])
        conn.send(state.prune())
    elif request[0] == "pending":
        conn.send(state.prune())
    elif request[0] == "take":
        state.prune()  # first: ids handed over now will not be seen again after the reset
        conn.send((state.terminal, state.decided))
        state.terminal, state.decided = {}, {}
    elif request[0] == "stream":
        state.streaming = bool(request[1])
        conn.send(state.streaming)
    else:
        return False
    return True


def _serve(bootstrap: str, topic: str, conn: Connection, stream: Connection) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-tracker",  # never commits: assign() only
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            # Under load every arriving result ends a fetch at once; when idle, 50 ms (not the default 500)
            # bounds how late a lone result is stamped, costing the broker 20 empty fetches a second.
            "fetch.wait.max.ms": 50,
        }
    )
    _assign_at_end(consumer, topic)
    conn.send("ready")
    state = _State()
    try:
        while True:
            msgs = consumer.consume(2000, 0.02)
            stamp = time.monotonic()
            fresh: list[tuple[str, float]] = []
            for m in msgs:
                value = m.value()
                if m.error() is not None or value is None:
                    continue
                doc = orjson.loads(value)
                op = doc.get("operation")
                if op is None:
                    continue
                kind = doc.get("type")
                if kind in TERMINAL and op["op_id"] not in state.terminal:
                    state.terminal[op["op_id"]] = stamp
                    fresh.append((op["op_id"], stamp))
                elif kind == DECIDED:
                    state.decided.setdefault(op["op_id"], stamp)
            if fresh and state.streaming:
                stream.send(fresh)
            while conn.poll():
                if not _answer(state, conn.recv(), conn):
                    return
    finally:
        consumer.close()


class CompletionTracker:
    def __init__(self, bootstrap: str, topic: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with librdkafka threads
        self._conn, child = ctx.Pipe()
        self.stream, stream_child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_serve, args=(bootstrap, topic, child, stream_child), name="bench-tracker", daemon=True
        )
        self._proc.start()
        if not self._conn.poll(60) or self._conn.recv() != "ready":
            self.stop()
            raise RuntimeError("the completion tracker did not start")

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def _ask(self, *request: Any) -> Any:
        self._conn.send(request)
        return self._conn.recv()

    def expect(self, op_ids: list[str]) -> None:
        self._ask("expect", op_ids)

    def pending(self) -> int:
        count: int = self._ask("pending")
        return count

    def take(self) -> tuple[dict[str, float], dict[str, float]]:
        terminal, decided = self._ask("take")
        return terminal, decided

    def streaming(self, on: bool) -> None:
        self._ask("stream", on)
        if not on:  # whatever was pushed meanwhile is stale now
            while self.stream.poll():
                self.stream.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(("stop",))
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


class CompletionFeed:
    """The load generator's end of the stream: ``await feed.wait(op_id, timeout)`` returns when the
    payment reached a terminal state (its monotonic time), or None after ``timeout`` seconds.

    Completions that arrive before anyone waits for them (the 202 can be slower than the whole pipeline
    at PSP latency 0) are remembered, so a late waiter returns at once.
    """

    def __init__(self, stream: Connection) -> None:
        self._stream = stream
        self.done: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._stream.fileno(), self._read)

    def detach(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._stream.fileno())
            self._loop = None
        for fut in self._waiters.values():
            fut.cancel()
        self._waiters.clear()

    def _read(self) -> None:
        while self._stream.poll():
            for op_id, stamp in self._stream.recv():
                self.done.setdefault(op_id, stamp)
                fut = self._waiters.pop(op_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(stamp)

    async def wait(self, op_id: str, timeout_s: float) -> float | None:
        if op_id in self.done:
            return self.done[op_id]
        assert self._loop is not None, "attach() first"
        fut = self._waiters.setdefault(op_id, self._loop.create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            return None
        finally:
            if self._waiters.get(op_id) is fut and not fut.done():
                del self._waiters[op_id]
