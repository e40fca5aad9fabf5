"""API-key authentication.

Keys are random (``pk_`` + 32 url-safe characters) and stored only as ``apikey:<sha256 hex>`` → JSON
principal ``{"user_id": ..., "role": "admin"|"member"}``, so a Redis dump does not leak usable keys and a
fast hash is enough (the keys have ~190 bits of entropy; nothing to brute-force).

Principals are cached in process memory: fresh for ``principal_cache_s``, and served stale for up to
``principal_stale_s`` while Redis is unreachable so that intake keeps working in degraded mode for
recently seen clients. Unknown keys are never cached. A key with a Redis TTL (a rotated key in its grace
period, ``payments.gateway.keys``) is never served from the cache past that TTL, stale or not.

Revocation (``payments keys revoke``/``rotate``) reaches running gateways through :class:`RevocationListener`:
the key's hash is published on :data:`REVOKED_CHANNEL` and every subscribed gateway drops it from its
cache, so the next request re-reads Redis: in practice within milliseconds. A message published while a
gateway was not subscribed (starting, or reconnecting to Redis) is lost, as pub/sub keeps nothing; the
cache entry then lives out its ``principal_cache_s`` (60 s by default), which is the documented upper
bound. The cache is deliberately not cleared on (re)subscription: right after Redis lost its data the
cached principals are what keeps clients authenticated until the keys are provisioned again. A gateway
cut off from Redis cannot learn of any revocation and serves what it cached (``principal_stale_s``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from payments.gateway.errors import DependencyUnavailable, GatewayError
from payments.gateway.pubsub import Subscription
from payments.schemas.commands import Identifier
from payments.schemas.errors import ErrorCode

log = logging.getLogger(__name__)

KEY_PREFIX = "pk_"
_CACHE_MAX_ENTRIES = 10_000
# Channel on which the sha256 hex of a revoked or rotated key is published (``payments.gateway.keys``).
REVOKED_CHANNEL = "apikeys:revoked"


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: Identifier
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def apikey_redis_key(api_key: str) -> str:
    return f"apikey:{hash_key(api_key)}"


def unauthenticated() -> GatewayError:
    return GatewayError(
        "a valid API key is required (Authorization: Bearer <key>)", code=ErrorCode.UNAUTHENTICATED
    )


class Authenticator:
    """Resolves API keys to principals through Redis, with the cache described in the module docstring."""

    def __init__(
        self,
        redis: Redis,
        *,
        fresh_s: float,
        stale_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._fresh_s = fresh_s
        self._stale_s = stale_s
        self._now = monotonic
        # digest -> (principal, monotonic time it was read, monotonic time its Redis TTL ends or inf)
        self._cache: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()

    def forget(self, digest: str) -> None:
        """Drop one key's cached principal (it was revoked or rotated)."""
        self._cache.pop(digest, None)

    async def authenticate(self, api_key: str | None) -> Principal:
        if api_key is None:
            raise unauthenticated()
        digest = hash_key(api_key)
        cached = self._cache.get(digest)
        now = self._now()
        if cached is not None and now >= cached[2]:
            cached = None  # past its TTL: Redis has deleted it, whatever Redis can tell us right now
        if cached is not None and now - cached[1] < self._fresh_s:
            return cached[0]
        try:
            # One round trip either way; PTTL is -1 for a key without expiry (the usual case).
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(f"apikey:{digest}")
            pipe.pttl(f"apikey:{digest}")
            raw, pttl = await pipe.execute()
        except RedisError as exc:
            if cached is not None and now - cached[1] < self._stale_s:
                log.warning("redis unreachable (%s); serving a cached principal", type(exc).__name__)
                return cached[0]
            raise DependencyUnavailable("cannot verify the API key right now") from exc
        if raw is None:
            self._cache.pop(digest, None)
            raise unauthenticated()
        try:
            principal = Principal.model_validate_json(raw)
        except ValidationError as exc:
            log.error("apikey:%s... holds an invalid principal", digest[:12])
            raise unauthenticated() from exc
        expires = now + pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else math.inf
        self._cache[digest] = (principal, now, expires)
        self._cache.move_to_end(digest)
        while len(self._cache) > _CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)
        return principal


class RevocationListener(Subscription):
    """Subscribes to :data:`REVOKED_CHANNEL` and makes ``auth`` forget what it announces (a background task
    per gateway process, like ``waiter.ResultWaiter``; see the module docstring for what it cannot see)."""

    def __init__(self, redis: Redis, auth: Authenticator) -> None:
        super().__init__(redis, name="apikey-revocations")
        self._auth = auth

    async def subscribe(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(REVOKED_CHANNEL)

    def on_message(self, msg: dict[str, Any]) -> None:
        self._auth.forget(bytes(msg["data"]).decode())
