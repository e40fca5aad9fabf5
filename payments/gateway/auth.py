"""API-key authentication.

Keys are random (``pk_`` + 32 url-safe characters) and stored only as ``apikey:<sha256 hex>`` → JSON
principal ``{"user_id": ..., "role": "admin"|"member"}``, so a Redis dump does not leak usable keys and a
fast hash is enough (the keys have ~190 bits of entropy; nothing to brute-force).

Principals are cached in process memory: fresh for ``principal_cache_s`` (revoking a key therefore takes
effect within that time), and served stale for up to ``principal_stale_s`` while Redis is unreachable so
that intake keeps working in degraded mode for recently seen clients. Unknown keys are never cached.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.gateway.errors import DependencyUnavailable, GatewayError
from payments.schemas.commands import Identifier
from payments.schemas.errors import ErrorCode

log = logging.getLogger(__name__)

KEY_PREFIX = "pk_"
_CACHE_MAX_ENTRIES = 10_000


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
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def authenticate(self, api_key: str | None) -> Principal:
        if api_key is None:
            raise unauthenticated()
        digest = hash_key(api_key)
        cached = self._cache.get(digest)
        now = self._now()
        if cached is not None and now - cached[1] < self._fresh_s:
            return cached[0]
        try:
            raw = await self._redis.get(f"apikey:{digest}")
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
        self._cache[digest] = (principal, now)
        self._cache.move_to_end(digest)
        while len(self._cache) > _CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)
        return principal
