"""Idempotency records in Redis: claim / replay / in-flight / mismatch in ONE Lua round trip.

Record ``idem:<principal>:<sha256(key)>`` is a hash:

* in flight: ``{state: "inflight", fp, token}`` with a lease TTL (``inflight_lease_s``, default 30 s). The
  random ``token`` proves ownership, so a request whose lease expired cannot overwrite or delete the record
  of a newer claimant.
* done: ``{state: "done", fp, status, headers, body}`` with the retention TTL (default 24 h, counted from
  when the response was stored): the exact status, the headers that matter (JSON list of pairs) and the
  body bytes, replayed byte for byte with ``Idempotent-Replayed: true``.

A different fingerprint under the same key is a mismatch (422) whatever the state; the fingerprint is
checked first so that a client reusing a key for another payload learns that, not "try later".

Degraded mode: if Redis is unreachable the claim returns ``Claim.degraded()`` and the caller proceeds
WITHOUT a record. Intake stays available because every operation id is derived from (principal, account,
key), so the processor dedupes a retried command (same fingerprint → no-op, different → recorded
mismatch). What is lost meanwhile: byte-identical replay and the 409 for concurrent duplicates (both
answered from the read model or as a fresh 202 instead). The ``payments_gateway_idempotency_total{outcome="degraded"}`` metric and
a warning log line report every such request.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.gateway.idempotency_keys import key_digest, redis_key

log = logging.getLogger(__name__)

# KEYS[1] record, KEYS[2] (optional) a read-model hash to peek at; ARGV[1] fingerprint, ARGV[2] token,
# ARGV[3] lease ms. A new claim also returns the ``data`` field of KEYS[2] (nil if absent): the caller
# looks there next anyway, and one round trip instead of two is a measurable share of the gateway's CPU
# (bench/README.md). Both keys live in one Redis; a cluster would need them in one hash slot.
_CLAIM_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'inflight', 'fp', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if #KEYS > 1 then return {'new', redis.call('HGET', KEYS[2], 'data')} end
  return {'new'}
end
local v = redis.call('HMGET', KEYS[1], 'fp', 'status', 'headers', 'body')
if v[1] ~= ARGV[1] then return {'mismatch'} end
if state == 'inflight' then return {'inflight', tostring(redis.call('PTTL', KEYS[1]))} end
return {'done', v[2], v[3], v[4]}
"""

# KEYS[1] record; ARGV[1] token, ARGV[2] status, ARGV[3] headers json, ARGV[4] body, ARGV[5] retention ms
_COMPLETE_LUA = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4])
redis.call('HDEL', KEYS[1], 'token')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] record; ARGV[1] token
_RELEASE_LUA = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


class ClaimKind(StrEnum):
    NEW = "new"
    REPLAY = "replay"
    CONFLICT = "conflict"  # in flight elsewhere → 409
    MISMATCH = "mismatch"  # another payload under the same key → 422
    DEGRADED = "degraded"  # Redis unreachable → proceed without a record


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    record: str = ""
    token: str = ""
    stored: StoredResponse | None = None
    retry_after_ms: int = 0
    digest: str = field(default="", repr=False)
    # A NEW claim made with ``peek``: True, and ``peeked`` is the peeked hash's ``data`` (None if absent).
    peeked_at_claim: bool = False
    peeked: bytes | None = field(default=None, repr=False)

    @staticmethod
    def degraded() -> Claim:
        return Claim(ClaimKind.DEGRADED)

    @property
    def owned(self) -> bool:
        return self.kind is ClaimKind.NEW


class IdempotencyStore:
    def __init__(self, redis: Redis, *, lease_s: float, retention_s: int) -> None:
        self._lease_ms = int(lease_s * 1000)
        self._retention_ms = retention_s * 1000
        self._claim = redis.register_script(_CLAIM_LUA)
        self._complete = redis.register_script(_COMPLETE_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def claim(self, principal: str, key: str, fingerprint: str, *, peek: str | None = None) -> Claim:
        """``peek``: a read-model hash whose ``data`` a NEW claim returns too (``Claim.peeked``)."""
        record = redis_key(principal, key)
        token = secrets.token_hex(16)
        digest = key_digest(key)[:12]  # logs show this prefix only, never the key
        keys = [record] if peek is None else [record, peek]
        try:
            reply = await self._claim(keys=keys, args=[fingerprint, token, self._lease_ms])
        except RedisError as exc:
            log.warning(
                "idempotency degraded: redis unreachable (%s); key %s... of %s accepted without a record",
                type(exc).__name__,
                digest,
                principal,
            )
            return Claim.degraded()
        kind = reply[0].decode()
        if kind == "new":
            peeked = bytes(reply[1]) if len(reply) > 1 and reply[1] is not None else None
            return Claim(
                ClaimKind.NEW,
                record=record,
                token=token,
                digest=digest,
                peeked_at_claim=peek is not None,
                peeked=peeked,
            )
        if kind == "mismatch":
            return Claim(ClaimKind.MISMATCH, record=record, digest=digest)
        if kind == "inflight":
            return Claim(ClaimKind.CONFLICT, record=record, retry_after_ms=int(reply[1]), digest=digest)
        headers = tuple((str(k), str(v)) for k, v in orjson.loads(reply[2]))
        stored = StoredResponse(status=int(reply[1]), headers=headers, body=bytes(reply[3]))
        return Claim(ClaimKind.REPLAY, record=record, stored=stored, digest=digest)

    async def complete(self, claim: Claim, response: StoredResponse) -> None:
        """Store the response actually sent. Best effort: if Redis fails now, the lease expires and a retry
        re-publishes, which the processor dedupes."""
        if not claim.owned:
            return
        try:
            ok = await self._complete(
                keys=[claim.record],
                args=[
                    claim.token,
                    response.status,
                    orjson.dumps([list(h) for h in response.headers]),
                    response.body,
                    self._retention_ms,
                ],
            )
        except RedisError as exc:
            log.warning("could not store the response of key %s... (%s)", claim.digest, type(exc).__name__)
            return
        if not ok:
            log.warning("lease of key %s... expired before the response was stored", claim.digest)

    async def release(self, claim: Claim) -> None:
        """Forget a claim whose request had no side effect (or failed to make one durable)."""
        if not claim.owned:
            return
        try:
            await self._release(keys=[claim.record], args=[claim.token])
        except RedisError as exc:
            # The lease TTL frees the key anyway; until then retries get 409.
            log.warning("could not release key %s... (%s)", claim.digest, type(exc).__name__)
