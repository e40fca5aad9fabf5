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
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from payments.gateway.pubsub import Subscription
from payments.readmodel.layout import NOTIFY_PREFIX

log = logging.getLogger(__name__)

T = TypeVar("T")


class ResultWaiter(Subscription):
    def __init__(self, redis: Redis, *, recheck_s: float) -> None:
        super().__init__(redis, name="opdone-listener")
        self._recheck_s = recheck_s
        self._waiters: dict[str, set[asyncio.Event]] = {}

    async def subscribe(self, pubsub: PubSub) -> None:
        await pubsub.psubscribe(NOTIFY_PREFIX + "*")

    def on_subscribed(self) -> None:
        # Anything published while we were not subscribed is gone: wake every waiter so it re-reads the
        # read model now rather than at its next recheck.
        self._wake_all()

    def on_message(self, msg: dict[str, Any]) -> None:
        self._wake(bytes(msg["channel"]).decode()[len(NOTIFY_PREFIX) :])

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
