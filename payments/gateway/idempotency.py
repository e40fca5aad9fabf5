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

import itertools
import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from redis.typing import EncodableT

from payments.gateway.idempotency_keys import key_digest, record_key
from payments.gateway.ratelimit import TAKE_FN_LUA
from payments.gateway.redis_batch import EvalBatcher
from payments.readmodel.layout import READY_KEY

log = logging.getLogger(__name__)

# A claim's token only has to differ from every other claim's (it tells a lease's owner from a later
# claimant, it is no secret): a random per-process prefix and a counter, instead of an os.urandom system
# call per request.
_TOKEN_PREFIX = secrets.token_hex(8) + "-"
_TOKEN_SEQ = itertools.count()

# The whole admission of a new command in ONE evaluation (bench/README.md: each round trip was a measurable
# share of the gateway's CPU), in the order the API promises: membership pre-check (404/403, then the 400
# currency mismatch), then the key (422 mismatch, 409 in flight, replay), and only then a claim, so a
# failed pre-check never claims a key. All keys live in one Redis; a cluster would need one hash slot.
#
# KEYS[1] record, KEYS[2] read-model hash to peek at, KEYS[3] readmodel:ready, KEYS[4] the account's hash,
# KEYS[5] the fresh-key slot of the request's payment signature (see ``FreshKeyCheck``), KEYS[6] the
# principal's rate-limit bucket (``ratelimit``: a token is taken after the pre-check, before the claim).
# ARGV[1] fingerprint, ARGV[2] token, ARGV[3] lease ms, ARGV[4] pre-check: '' none, 'exists', 'member';
# ARGV[5] principal, ARGV[6] currency ('' = not checked), ARGV[7] key digest ('' = no fresh-key check),
# ARGV[8] fresh-key window ms, ARGV[9] '1' = peek at KEYS[2], ARGV[10] tokens per ms ('' = no limit),
# ARGV[11] burst.
# Replies: {'not_found'}, {'not_a_member'}, {'currency', account currency}, {'limited', pre, ms until
# a token}, or {outcome, pre, ...} with
# pre 'ok' | 'skipped' (none asked) | 'rebuilding' (read model incomplete: skipped, the processor decides):
# {'new', pre, suspected 0|1, peeked data or nil}, {'mismatch', pre}, {'inflight', pre, pttl ms},
# {'done', pre, status, headers, body}.
_ADMIT_LUA = (
    TAKE_FN_LUA
    + """
local pre = 'skipped'
if ARGV[4] ~= '' then
  if redis.call('EXISTS', KEYS[3]) == 0 then
    pre = 'rebuilding'
  else
    local raw = redis.call('HGET', KEYS[4], 'data')
    if not raw then return {'not_found'} end
    local acct = cjson.decode(raw)
    if acct['status'] ~= 'open' then return {'not_found'} end
    if ARGV[4] == 'member' then
      local member = false
      for _, m in ipairs(acct['members'] or {}) do
        if m == ARGV[5] then member = true break end
      end
      if not member then return {'not_a_member'} end
    end
    if ARGV[6] ~= '' and acct['currency'] ~= ARGV[6] then
      local c = acct['currency']
      if type(c) ~= 'string' then c = '' end
      return {'currency', c}
    end
    pre = 'ok'
  end
end
if ARGV[10] ~= '' then
  local allowed, wait_ms = take(KEYS[6], tonumber(ARGV[10]), tonumber(ARGV[11]))
  if allowed == 0 then return {'limited', pre, wait_ms} end
end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'inflight', 'fp', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  local suspected = 0
  if ARGV[7] ~= '' then
    local prev = redis.call('GET', KEYS[5])
    if prev and prev ~= ARGV[7] then suspected = 1 end
    redis.call('SET', KEYS[5], ARGV[7], 'PX', ARGV[8])
  end
  local peeked = false
  if ARGV[9] == '1' then peeked = redis.call('HGET', KEYS[2], 'data') end
  return {'new', pre, suspected, peeked}
end
local v = redis.call('HMGET', KEYS[1], 'fp', 'status', 'headers', 'body')
if v[1] ~= ARGV[1] then return {'mismatch', pre} end
if state == 'inflight' then return {'inflight', pre, tostring(redis.call('PTTL', KEYS[1]))} end
return {'done', pre, v[2], v[3], v[4]}
"""
)

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
    REFUSED = "refused"  # the folded pre-check failed (``Claim.precheck`` says how); nothing was claimed
    RATE_LIMITED = "rate_limited"  # no token in the principal's bucket (``retry_after_ms``); nothing claimed


class Precheck(StrEnum):
    """What became of the membership pre-check folded into the claim (``AccountCheck``)."""

    OK = "ok"
    SKIPPED = "skipped"  # none was asked for
    REBUILDING = "rebuilding"  # readmodel:ready absent: skipped, the processor decides
    DEGRADED = "degraded"  # Redis unreachable: skipped, the processor decides
    NOT_FOUND = "not_found"  # 404: no open account with this id
    NOT_A_MEMBER = "not_a_member"  # 403
    CURRENCY_MISMATCH = "currency"  # 400: ``Claim.account_currency`` is the account's


@dataclass(frozen=True)
class AccountCheck:
    """The membership pre-check, run inside the claim's evaluation before anything is claimed: the
    read-model hash ``account_key`` must hold an open account (else 404), with the principal among its
    members if ``require_member`` (else 403), in ``currency`` if given (else 400)."""

    account_key: str
    require_member: bool
    currency: str | None


@dataclass(frozen=True)
class RateCheck:
    """A token to take from ``bucket`` (``ratelimit.RateLimiter.bucket_args``) before claiming."""

    bucket: str
    rate_per_ms: str
    burst: int


@dataclass(frozen=True)
class FreshKeyCheck:
    """Detects a retry sent under a fresh key: ``slot`` names the request's payment signature (a hash of
    principal, account, amount, currency and payee); a NEW claim finding another key's digest there within
    ``window_ms`` is suspected. The slot holds a digest of the key, never the key."""

    slot: str
    window_ms: int


_PRECHECK_REFUSALS = {
    b"not_found": Precheck.NOT_FOUND,
    b"not_a_member": Precheck.NOT_A_MEMBER,
    b"currency": Precheck.CURRENCY_MISMATCH,
}


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
    precheck: Precheck = Precheck.SKIPPED
    account_currency: str = ""  # with Precheck.CURRENCY_MISMATCH
    suspected_fresh_key: bool = False  # a NEW claim whose FreshKeyCheck found another key's digest

    @staticmethod
    def degraded() -> Claim:
        return Claim(ClaimKind.DEGRADED)

    @property
    def owned(self) -> bool:
        return self.kind is ClaimKind.NEW


class IdempotencyStore:
    def __init__(
        self, redis: Redis, *, lease_s: float, retention_s: int, batcher: EvalBatcher | None = None
    ) -> None:
        """``batcher``: send the claims through it (coalesced per event-loop tick) instead of one by one."""
        self._batcher = batcher
        self._lease_ms = int(lease_s * 1000)
        self._retention_ms = retention_s * 1000
        self._claim = redis.register_script(_ADMIT_LUA)
        self._complete = redis.register_script(_COMPLETE_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def claim(
        self,
        principal: str,
        key: str,
        fingerprint: str,
        *,
        peek: str | None = None,
        account: AccountCheck | None = None,
        fresh: FreshKeyCheck | None = None,
        rate: RateCheck | None = None,
    ) -> Claim:
        """One round trip: ``account``'s pre-check, then the claim. ``peek``: a read-model hash whose
        ``data`` a NEW claim returns too (``Claim.peeked``)."""
        full_digest = key_digest(key)
        record = record_key(principal, full_digest)
        token = f"{_TOKEN_PREFIX}{next(_TOKEN_SEQ):x}"
        digest = full_digest[:12]  # logs show this prefix only, never the key
        keys = [
            record,
            peek or record,  # unused names repeat the record: every key an evaluation touches is declared
            READY_KEY,
            account.account_key if account is not None else record,
            fresh.slot if fresh is not None else record,
            rate.bucket if rate is not None else record,
        ]
        args: list[EncodableT] = [
            fingerprint,
            token,
            self._lease_ms,
            "" if account is None else ("member" if account.require_member else "exists"),
            principal,
            (account.currency or "") if account is not None else "",
            full_digest[:32] if fresh is not None else "",
            fresh.window_ms if fresh is not None else 0,
            "1" if peek is not None else "0",
            rate.rate_per_ms if rate is not None else "",
            rate.burst if rate is not None else 0,
        ]
        try:
            reply = await self._eval(self._claim, keys, args)
        except RedisError as exc:
            log.warning(
                "idempotency degraded: redis unreachable (%s); key %s... of %s accepted without a record",
                type(exc).__name__,
                digest,
                principal,
            )
            return Claim(
                ClaimKind.DEGRADED, precheck=Precheck.SKIPPED if account is None else Precheck.DEGRADED
            )
        return _parse_claim(reply, record=record, token=token, digest=digest, peek=peek is not None)

    async def _eval(self, script: AsyncScript, keys: list[str], args: list[EncodableT]) -> Any:
        if self._batcher is not None:
            return await self._batcher.evalsha(script.sha, script.script, keys, args)
        return await script(keys=keys, args=args)

    async def complete(self, claim: Claim, response: StoredResponse) -> None:
        """Store the response actually sent. Best effort: if Redis fails now, the lease expires and a retry
        re-publishes, which the processor dedupes."""
        if not claim.owned:
            return
        try:
            ok = await self._eval(
                self._complete,
                [claim.record],
                [
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
            await self._eval(self._release, [claim.record], [claim.token])
        except RedisError as exc:
            # The lease TTL frees the key anyway; until then retries get 409.
            log.warning("could not release key %s... (%s)", claim.digest, type(exc).__name__)


def _parse_claim(reply: list[Any], *, record: str, token: str, digest: str, peek: bool) -> Claim:
    kind = bytes(reply[0])
    if kind == b"limited":
        pre = Precheck(bytes(reply[1]).decode())
        return Claim(ClaimKind.RATE_LIMITED, retry_after_ms=int(reply[2]), digest=digest, precheck=pre)
    refused = _PRECHECK_REFUSALS.get(kind)
    if refused is not None:
        currency = bytes(reply[1]).decode() if len(reply) > 1 and reply[1] is not None else ""
        return Claim(ClaimKind.REFUSED, precheck=refused, account_currency=currency, digest=digest)
    pre = Precheck(bytes(reply[1]).decode())
    if kind == b"new":
        peeked = bytes(reply[3]) if len(reply) > 3 and reply[3] is not None else None
        return Claim(
            ClaimKind.NEW,
            record=record,
            token=token,
            digest=digest,
            peeked_at_claim=peek,
            peeked=peeked,
            precheck=pre,
            suspected_fresh_key=int(reply[2]) == 1,
        )
    if kind == b"mismatch":
        return Claim(ClaimKind.MISMATCH, record=record, digest=digest, precheck=pre)
    if kind == b"inflight":
        return Claim(
            ClaimKind.CONFLICT, record=record, retry_after_ms=int(reply[2]), digest=digest, precheck=pre
        )
    headers = tuple((str(k), str(v)) for k, v in orjson.loads(reply[3]))
    stored = StoredResponse(status=int(reply[2]), headers=headers, body=bytes(reply[4]))
    return Claim(ClaimKind.REPLAY, record=record, stored=stored, digest=digest, precheck=pre)
