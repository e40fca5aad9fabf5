"""The async HTTP load generator (aiohttp): closed loop (max throughput) and open loop (fixed rate).

It records, per request, when it was due, when its answer came and what it was. What "accepted" and
"completed" mean for each system is decided afterwards (``measure``); here an answer is just an answer.

Closed loop: ``concurrency`` workers, each sending its next request as soon as the previous one is
finished, until ``duration_s`` has passed (the last requests may finish after that). Finished means the
payment is final: the answer itself for a synchronous system; for ours, whose answer is a 202, the
worker also waits for the payment's terminal result (``feed``), like a user waiting for the outcome.
Closing the loop on the 202 instead would let intake outrun processing without bound and compare a
queue's growth with another system's completions. Open loop: requests
are due at a fixed rate (``schedule.FixedRate``) whatever the answers do; latency counts from the due
time, and a due request finding ``max_in_flight`` requests outstanding is dropped (status -1) rather than
queued inside the generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.config import Load, Mode
from bench.schedule import FixedRate
from bench.tracker import CompletionFeed
from bench.workload import PaymentCall

NO_ANSWER = 0  # connection error or time-out
DROPPED = -1  # open loop: not sent, the generator's in-flight cap was reached

now = time.monotonic  # CLOCK_MONOTONIC: the same clock in every process, so the tracker's times compare


@dataclass(slots=True)
class Sample:
    due: float  # when the request was due (open loop) or sent (closed loop)
    answered: float  # NaN: no answer
    status: int  # HTTP status, NO_ANSWER or DROPPED
    op_id: str | None  # the payment id of the answer, if it had one


@dataclass
class Counters:
    sent: int = 0
    answered: int = 0
    failed: int = 0  # no answer, 5xx, 409, dropped

    def describe(self) -> str:
        return f"sent {self.sent:>6}  answered {self.answered:>6}  failed {self.failed:>5}"


@dataclass
class LoadResult:
    mode: Mode
    t0: float
    t_end: float  # end of the load window (not of the last answer)
    samples: list[Sample] = field(default_factory=list)


def _op_id(raw: bytes) -> str | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    found = doc.get("id") or doc.get("payment_id")
    return found if isinstance(found, str) else None


async def _send(
    session: aiohttp.ClientSession, base_url: str, call: PaymentCall, due: float, live: Counters
) -> Sample:
    live.sent += 1
    try:
        async with session.post(base_url + call.path, data=call.body, headers=call.headers) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        live.failed += 1
        return Sample(due, math.nan, NO_ANSWER, None)
    answered = now()
    live.answered += 1
    if status >= 500 or status == 409:
        live.failed += 1
    return Sample(due, answered, status, _op_id(raw) if status < 500 else None)


Ticker = Callable[[float, Counters], None]  # (seconds elapsed, counters) -> None, for a progress bar


async def _tick(t0: float, live: Counters, on_tick: Ticker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        on_tick(now() - t0, live)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    on_tick(now() - t0, live)


async def _closed(
    session: aiohttp.ClientSession,
    base_url: str,
    calls: Callable[[int], PaymentCall],
    load: Load,
    result: LoadResult,
    live: Counters,
    feed: CompletionFeed | None,
    timeout_s: float,
) -> None:
    counter = itertools.count()

    async def worker() -> None:
        while (t := now()) < result.t_end:
            sample = await _send(session, base_url, calls(next(counter)), t, live)
            result.samples.append(sample)
            if feed is not None and sample.status == 202 and sample.op_id is not None:
                await feed.wait(sample.op_id, timeout_s)

    await asyncio.gather(*(worker() for _ in range(load.concurrency)))


async def _open(
    session: aiohttp.ClientSession,
    base_url: str,
    calls: Callable[[int], PaymentCall],
    load: Load,
    result: LoadResult,
    live: Counters,
) -> None:
    schedule = FixedRate(load.rate_per_s, load.duration_s)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(i: int, due: float) -> None:
        result.samples.append(await _send(session, base_url, calls(i), due, live))

    i = 0
    while i < schedule.total:
        due_now = schedule.due_by(result.t0, now())
        while i < due_now:
            due = schedule.due_at(result.t0, i)
            if len(in_flight) >= load.max_in_flight:
                result.samples.append(Sample(due, math.nan, DROPPED, None))
                live.failed += 1
            else:
                task = asyncio.create_task(one(i, due))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            i += 1
        if i < schedule.total:
            await asyncio.sleep(max(0.0, schedule.due_at(result.t0, i) - now()))
    if in_flight:
        await asyncio.wait(in_flight)  # each bounded by the session's total time-out


async def run_load(
    base_url: str,
    calls: Callable[[int], PaymentCall],
    load: Load,
    *,
    request_timeout_s: float,
    on_tick: Ticker | None = None,
    feed: CompletionFeed | None = None,
) -> LoadResult:
    """Drive ``load`` against ``base_url``; returns every request's sample. ``feed``: completions of an
    asynchronous system, which closed-loop workers wait for after a 202."""
    connections = load.concurrency if load.mode is Mode.CLOSED else load.max_in_flight
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    live = Counters()
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
    ) as session:
        t0 = now() + 0.01
        result = LoadResult(load.mode, t0, t0 + load.duration_s)
        stop = asyncio.Event()
        ticker = asyncio.create_task(_tick(t0, live, on_tick, stop)) if on_tick is not None else None
        if feed is not None:
            feed.attach()
        try:
            if load.mode is Mode.CLOSED:
                await _closed(session, base_url, calls, load, result, live, feed, request_timeout_s)
            else:
                await _open(session, base_url, calls, load, result, live)
        finally:
            if feed is not None:
                feed.detach()
            stop.set()
            if ticker is not None:
                await ticker
    return result
