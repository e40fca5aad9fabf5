"""One Redis subscription held by a background task per gateway process, reconnecting with backoff.

Redis pub/sub is fire-and-forget: what is published while the subscription is down is lost, so each user
says what to do when it is (re)established (``on_subscribed``) as well as per message (``on_message``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)


class Subscription(ABC):
    """Subclasses subscribe in ``subscribe`` and receive every message of it in ``on_message``."""

    def __init__(self, redis: Redis, *, name: str) -> None:
        self._redis = redis
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.subscribed = False

    @abstractmethod
    async def subscribe(self, pubsub: PubSub) -> None: ...

    @abstractmethod
    def on_message(self, msg: dict[str, Any]) -> None:
        """A ``message``/``pmessage``; ``subscribe``/``psubscribe`` confirmations go to ``on_subscribed``."""

    def on_subscribed(self) -> None:  # noqa: B027  (optional hook: most subscribers need nothing here)
        """The subscription is (re)established; anything published while it was down is gone."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=self._name)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is None:
            return
        # redis-py's get_message(timeout=...) can swallow a cancellation that lands inside its own time-out
        # handling, so one cancel() may be lost and awaiting the task would hang forever (seen as a
        # 10-minute test hang). Cancel until it is done; the flag ends the loops too.
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
                await self.subscribe(pubsub)
                while not self._stopping:
                    msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                    if msg is None:
                        continue
                    if msg["type"] in ("subscribe", "psubscribe"):
                        self.subscribed = True
                        attempt = 0
                        self.on_subscribed()
                    elif msg["type"] in ("message", "pmessage"):
                        self.on_message(msg)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.subscribed = False
                delay = _RECONNECT_BACKOFF_S[min(attempt, len(_RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                log.warning("%s unavailable (%s); retrying in %.1fs", self._name, type(exc).__name__, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
