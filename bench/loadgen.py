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
from typing import Any

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
    aborted: bool = False  # open loop: stopped early by its AbortRule (samples are then incomplete)


@dataclass(frozen=True)
class AbortRule:
    """Open loop: stop a run as soon as its outcome is certain, so that a rate past a system's capacity
    costs a second or two instead of its whole length plus every request's time-out, and leaves a smaller
    backlog behind. ``broken(late, planned)`` decides from the count of requests due in the measured
    window that are already slower than ``bound_s`` (answered late, answered without a final status, or
    still outstanding past it) and the number due in that window."""

    bound_s: float
    is_final: Callable[[int], bool]  # a status that completes the request
    broken: Callable[[int, int], bool]
    interval_s: float = 0.1


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


async def _watch(
    rule: AbortRule,
    load: Load,
    result: LoadResult,
    in_flight: dict[asyncio.Task[None], float],
    abort: asyncio.Event,
) -> None:
    """Every ``rule.interval_s``: count the measured window's late requests; set ``abort`` once the bound
    is certainly broken. Answered samples are scanned once each (an index into the list)."""
    start, end = result.t0 + load.warmup_s, result.t_end
    planned = FixedRate(load.rate_per_s, load.duration_s)
    in_window = planned.due_by(result.t0, end - 1e-9) - planned.due_by(result.t0, start - 1e-9)
    late_answered, seen = 0, 0
    while not abort.is_set():
        samples = result.samples
        for s in samples[seen:]:
            if start <= s.due < end and (not rule.is_final(s.status) or s.answered - s.due > rule.bound_s):
                late_answered += 1
        seen = len(samples)
        t = now()
        late = late_answered + sum(
            1 for due in in_flight.values() if start <= due < end and t - due > rule.bound_s
        )
        if rule.broken(late, in_window):
            abort.set()
            return
        await asyncio.sleep(rule.interval_s)


async def _open(
    session: aiohttp.ClientSession,
    base_url: str,
    calls: Callable[[int], PaymentCall],
    load: Load,
    result: LoadResult,
    live: Counters,
    rule: AbortRule | None = None,
) -> None:
    schedule = FixedRate(load.rate_per_s, load.duration_s)
    in_flight: dict[asyncio.Task[None], float] = {}  # task -> due time
    abort, drained = asyncio.Event(), asyncio.Event()
    scheduled = False

    def finished(task: asyncio.Task[None]) -> None:
        in_flight.pop(task, None)
        if scheduled and not in_flight:
            drained.set()

    async def one(i: int, due: float) -> None:
        result.samples.append(await _send(session, base_url, calls(i), due, live))

    watcher = asyncio.create_task(_watch(rule, load, result, in_flight, abort)) if rule is not None else None
    i = 0
    while i < schedule.total and not abort.is_set():
        due_now = schedule.due_by(result.t0, now())
        while i < due_now:
            due = schedule.due_at(result.t0, i)
            if len(in_flight) >= load.max_in_flight:
                result.samples.append(Sample(due, math.nan, DROPPED, None))
                live.failed += 1
            else:
                task = asyncio.create_task(one(i, due))
                in_flight[task] = due
                task.add_done_callback(finished)
            i += 1
        if i < schedule.total:
            # A plain sleep (no task per wake-up): the watcher's verdict is seen at the next due time.
            await asyncio.sleep(max(0.0, schedule.due_at(result.t0, i) - now()))
    scheduled = True
    if not in_flight:
        drained.set()
    # Each request is bounded by the session's total time-out; the watcher's verdict may end this sooner.
    ends = [asyncio.create_task(drained.wait()), asyncio.create_task(abort.wait())]
    await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    helpers: list[asyncio.Task[Any]] = [*ends, *([watcher] if watcher is not None else [])]
    for helper in helpers:
        helper.cancel()
    await asyncio.gather(*helpers, return_exceptions=True)
    if abort.is_set():
        result.aborted = True
        pending = list(in_flight)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def run_load(
    base_url: str,
    calls: Callable[[int], PaymentCall],
    load: Load,
    *,
    request_timeout_s: float,
    on_tick: Ticker | None = None,
    feed: CompletionFeed | None = None,
    abort: AbortRule | None = None,
) -> LoadResult:
    """Drive ``load`` against ``base_url``; returns every request's sample. ``feed``: completions of an
    asynchronous system, which closed-loop workers wait for after a 202; ``abort``: open loop, stop early
    once the run has certainly failed."""
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
                await _open(session, base_url, calls, load, result, live, abort)
        finally:
            if feed is not None:
                feed.detach()
            stop.set()
            if ticker is not None:
                await ticker
    return result
