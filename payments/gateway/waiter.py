"""Waiting for a command's result to reach the read model (``Prefer: wait`` and account opening).

One pattern subscription (``PSUBSCRIBE opdone:*``) per gateway process, held by a background task,
fans notifications out to in-process waiters by command id. A waiter registers BEFORE it first reads the
read model, so a notification published between its read and its sleep is never missed; it also re-reads
every ``recheck_s`` because Redis pub/sub is fire-and-forget (a notification published while the
subscription was reconnecting is simply lost).

Trade-off: every gateway process receives every notification (a few dozen bytes per result). That is
cheap up to tens of thousands of results per second; beyond that, per-gateway channels would be the next
step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.readmodel.layout import NOTIFY_PREFIX

log = logging.getLogger(__name__)

T = TypeVar("T")

_RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)


class ResultWaiter:
    def __init__(self, redis: Redis, *, recheck_s: float) -> None:
        self._redis = redis
        self._recheck_s = recheck_s
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="opdone-listener")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            # redis-py's get_message(timeout=...) can swallow a cancellation that lands inside its own
            # time-out handling, so one cancel() may be lost and awaiting the task would hang forever
            # (seen as a 10-minute test hang). Cancel until it is done; the flag ends the loops too.
            for _ in range(100):
                self._task.cancel()
                done, _ = await asyncio.wait({self._task}, timeout=0.2)
                if done:
                    break
            with contextlib.suppress(asyncio.CancelledError):
                if self._task.done():
                    self._task.result()
            self._task = None

    async def _listen(self) -> None:
        attempt = 0
        while not self._stopping:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(NOTIFY_PREFIX + "*")
                while not self._stopping:
                    msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                    if msg is None:
                        continue
                    if msg["type"] == "psubscribe":
                        self.subscribed = True
                        attempt = 0
                        # Anything published while we were not subscribed is gone: wake every waiter
                        # so it re-reads the read model now rather than at its next recheck.
                        self._wake_all()
                    elif msg["type"] == "pmessage":
                        self._wake(bytes(msg["channel"]).decode()[len(NOTIFY_PREFIX) :])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.subscribed = False
                delay = _RECONNECT_BACKOFF_S[min(attempt, len(_RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                log.warning("result notifications unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

    def _wake(self, command_id: str) -> None:
        for event in self._waiters.get(command_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def wait_for(
        self, command_id: str, check: Callable[[], Awaitable[T | None]], timeout_s: float
    ) -> T | None:
        """Poll ``check`` on every notification for ``command_id`` (and every ``recheck_s``) until it returns
        a value or ``timeout_s`` passes. A Redis error in ``check`` counts as "not yet"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        event = asyncio.Event()
        self._waiters.setdefault(command_id, set()).add(event)
        try:
            while True:
                event.clear()  # before the read: a notification arriving during it sets the event again
                try:
                    value = await check()
                except RedisError:
                    value = None
                if value is not None:
                    return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, self._recheck_s))
        finally:
            events = self._waiters.get(command_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[command_id]
