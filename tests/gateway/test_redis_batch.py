"""``EvalBatcher`` on the real Redis: one pipeline per tick, each caller its own reply or error, NOSCRIPT
recovered, a dead connection fails every caller of the batch."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from payments.devstack.ports import free_port
from payments.gateway.redis_batch import EvalBatcher

pytestmark = pytest.mark.integration

# KEYS[1] a counter; ARGV[1] 'fail' raises a script error.
SCRIPT = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
return redis.call('INCR', KEYS[1])
"""


async def test_one_tick_is_one_pipeline_and_errors_stay_per_caller(redis_db: str) -> None:
    r = Redis.from_url(redis_db)
    try:
        script = r.register_script(SCRIPT)
        await r.script_load(SCRIPT)
        batcher = EvalBatcher(r)
        before = int((await r.info("stats"))["total_connections_received"])
        calls = [
            batcher.evalsha(script.sha, script.script, ["batch:n"], ["fail" if i == 3 else "ok"])
            for i in range(10)
        ]
        replies = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(replies[3], ResponseError)
        assert sorted(x for x in replies if isinstance(x, int)) == list(range(1, 10))
        # ten evaluations, at most one new connection (the pipeline's), not ten
        assert int((await r.info("stats"))["total_connections_received"]) - before <= 1

        await r.script_flush()  # NOSCRIPT: loaded again, then answered
        again = await asyncio.gather(
            *(batcher.evalsha(script.sha, script.script, ["batch:n"], ["ok"]) for _ in range(3))
        )
        assert sorted(again) == [10, 11, 12]
        await r.script_flush()
        assert await batcher.evalsha(script.sha, script.script, ["batch:n"], ["ok"]) == 13
    finally:
        await r.aclose()


async def test_unreachable_redis_fails_every_caller() -> None:
    r = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        batcher = EvalBatcher(r)
        replies = await asyncio.gather(
            *(batcher.evalsha("0" * 40, SCRIPT, ["k"], ["ok"]) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(x, RedisError) for x in replies), replies
        assert any(isinstance(x, RedisConnectionError) for x in replies)
    finally:
        await r.aclose()
