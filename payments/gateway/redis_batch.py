"""Coalesces the Lua evaluations that concurrent requests issue in one event-loop tick into one pipeline.

Each request's admission is one EVALSHA; under load many requests reach it in the same tick. Sent one by
one, each pays a pool checkout, a socket write and a read wake-up of its own; collected until the loop has
run every ready callback (``call_soon`` runs after them) and sent as one non-transactional pipeline, the
batch pays them once. Replies keep their order, and each caller gets its own reply or its own error: one
script's error fails only its request; a connection error fails the whole batch (every request then takes
its degraded path, as it would have one by one).

``NOSCRIPT`` (the script cache was flushed, or Redis restarted) is answered by loading the script and
sending those evaluations again, like redis-py's ``Script`` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT


@dataclass(frozen=True)
class _Pending:
    sha: str
    script: Any  # the script's text, as redis-py's Script holds it
    keys: tuple[str, ...]
    args: tuple[EncodableT, ...]
    future: asyncio.Future[Any]


class EvalBatcher:
    def __init__(self, redis: Redis, *, max_batch: int = 128) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def evalsha(self, sha: str, script: Any, keys: list[str], args: list[EncodableT]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Pending(sha, script, tuple(keys), tuple(args), future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), self._max_batch):
            task = asyncio.create_task(self._send(batch[start : start + self._max_batch]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            replies = await self._execute(batch)
            missing = [p for p, r in zip(batch, replies, strict=True) if isinstance(r, NoScriptError)]
            if missing:
                for script in {p.script for p in missing}:
                    await self._redis.script_load(script)
                retried = dict(zip(map(id, missing), await self._execute(missing), strict=True))
                replies = [retried.get(id(p), r) for p, r in zip(batch, replies, strict=True)]
        except BaseException as exc:  # connection lost, time-out, cancelled: every caller learns it
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for p, reply in zip(batch, replies, strict=True):
            if p.future.done():
                continue
            if isinstance(reply, Exception):
                p.future.set_exception(reply)
            else:
                p.future.set_result(reply)

    async def _execute(self, batch: list[_Pending]) -> list[Any]:
        # Any: redis-py annotates ``evalsha``'s keys and args as ``str`` although it sends any encodable.
        if len(batch) == 1:  # no pipeline bookkeeping for a lone request
            p = batch[0]
            client: Any = self._redis
            try:
                return [await client.evalsha(p.sha, len(p.keys), *p.keys, *p.args)]
            except NoScriptError as exc:
                return [exc]
        pipe: Any = self._redis.pipeline(transaction=False)
        for p in batch:
            pipe.evalsha(p.sha, len(p.keys), *p.keys, *p.args)
        return list(await pipe.execute(raise_on_error=False))
