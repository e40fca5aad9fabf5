"""Per-principal token bucket for POSTs (429 ``rate_limited`` with ``Retry-After``). Off by default.

One bucket per principal in Redis, ``rl:<principal>`` → hash ``{tokens, at}``, refilled at ``rate_per_s``
up to ``burst`` and updated in one Lua call (so every gateway process shares the bucket). The script reads
Redis's own clock (``TIME``), so gateway clocks need not agree. The key expires once a full bucket would
have refilled, so idle principals cost nothing.

Fails open: if Redis is unreachable the request goes through (counted as
``payments_gateway_redis_degraded_total{operation="rate_limit"}``), because availability of intake matters
more than the limit, and the processor's guarantees do not depend on it.
"""

from __future__ import annotations

import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.gateway.errors import GatewayError
from payments.gateway.metrics import GatewayMetrics
from payments.schemas.errors import ErrorCode

log = logging.getLogger(__name__)

# ``take(bucket, tokens per ms, burst)`` → allowed 0|1, ms until one token. A Lua function so that the
# intake's admission script (``gateway.idempotency``) takes the token in the same evaluation as its claim.
TAKE_FN_LUA = """
local function take(bucket, rate, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local v = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(v[1]) or burst
  local at = tonumber(v[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  local allowed = 0
  local wait_ms = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  else
    wait_ms = math.ceil((1 - tokens) / rate)
  end
  redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', bucket, math.ceil(burst / rate) + 1000)
  return allowed, wait_ms
end
"""

# KEYS[1] bucket; ARGV[1] tokens per ms, ARGV[2] burst. Returns {allowed 0|1, ms until one token}.
_TAKE_LUA = (
    TAKE_FN_LUA
    + """
local allowed, wait_ms = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {allowed, wait_ms}
"""
)


def bucket_key(principal: str) -> str:
    return f"rl:{principal}"


def rate_limited(wait_ms: int) -> GatewayError:
    return GatewayError(
        "too many requests; retry after the time in Retry-After",
        code=ErrorCode.RATE_LIMITED,
        retriable=True,
        retry_after_s=max(1, math.ceil(wait_ms / 1000)),
    )


class RateLimiter:
    def __init__(
        self, redis: Redis, metrics: GatewayMetrics, *, rate_per_s: float | None, burst: int
    ) -> None:
        self._metrics = metrics
        self._rate_per_ms = None if rate_per_s is None else rate_per_s / 1000
        self._burst = burst
        self._take = redis.register_script(_TAKE_LUA)

    @property
    def enabled(self) -> bool:
        return self._rate_per_ms is not None

    def bucket_args(self, principal: str) -> tuple[str, str, int] | None:
        """(bucket key, tokens per ms, burst) for a token taken inside another script; None = off."""
        if self._rate_per_ms is None:
            return None
        return bucket_key(principal), repr(self._rate_per_ms), self._burst

    def skipped(self, exc: Exception) -> None:
        """Fail open: Redis was unreachable when a token was to be taken."""
        self._metrics.redis_degraded.labels("rate_limit").inc()
        log.warning("rate limit skipped: redis unreachable (%s)", type(exc).__name__)

    async def check(self, principal: str) -> None:
        """Take one token for ``principal``; ``GatewayError(rate_limited)`` if the bucket is empty."""
        if self._rate_per_ms is None:
            return
        try:
            allowed, wait_ms = await self._take(
                keys=[bucket_key(principal)], args=[repr(self._rate_per_ms), self._burst]
            )
        except RedisError as exc:
            self.skipped(exc)
            return
        if not allowed:
            raise rate_limited(int(wait_ms))
