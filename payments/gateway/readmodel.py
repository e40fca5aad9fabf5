"""The Redis read model: its key layout, the projector's guarded write, and the gateway's reads.

Layout (written only by the projector, read only by the gateway):

* ``acct:<account_id>`` — hash ``{seq, data}``; ``data`` is the ``AccountSnapshot`` JSON of the result
  with sequence number ``seq`` (= the account ``version``). Overwritten only by a higher ``seq``.
* ``op:<op_id>`` — hash ``{seq, data}``; ``data`` is the ``Operation`` JSON (payment or adjustment, with
  its status history) as of account sequence ``seq``. Overwritten only by a higher ``seq`` (an operation
  belongs to one account, so seqs are comparable). Expires ``operation_retention_s`` after its last change.
* channel ``opdone:<command_id>`` — PUBLISHed ``<seq>`` whenever a result changed the model, so requests
  with ``Prefer: wait`` wake up. Opening an account uses command id ``open:<account_id>``.

The version guard makes the projector's at-least-once delivery idempotent and keeps reads monotone
(invariant 10): a redelivered or older result never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from payments.schemas.state import AccountSnapshot, Operation, ResultEvent

NOTIFY_PREFIX = "opdone:"

# KEYS[1] acct key, KEYS[2] op key (absent when the result has no operation)
# ARGV[1] seq, ARGV[2] account json, ARGV[3] op json or "", ARGV[4] channel, ARGV[5] op ttl ms or "0"
APPLY_RESULT_LUA = """
local seq = tonumber(ARGV[1])
local changed = 0
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if seq > cur then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'data', ARGV[2])
  changed = 1
end
if #KEYS > 1 then
  local opcur = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
  if seq > opcur then
    redis.call('HSET', KEYS[2], 'seq', ARGV[1], 'data', ARGV[3])
    if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
    changed = 1
  end
end
if changed == 1 then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
return changed
"""


def account_key(account_id: str) -> str:
    return f"acct:{account_id}"


def operation_key(op_id: str) -> str:
    return f"op:{op_id}"


def notify_channel(command_id: str) -> str:
    return NOTIFY_PREFIX + command_id


def open_command_id(account_id: str) -> str:
    return f"open:{account_id}"


def apply_result_call(event: ResultEvent, op_ttl_ms: int) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of ``APPLY_RESULT_LUA`` for one result. Pure."""
    keys = [account_key(event.account_id)]
    op_json = ""
    if event.operation is not None:
        keys.append(operation_key(event.operation.op_id))
        op_json = event.operation.model_dump_json()
    args: list[str | int] = [
        event.seq,
        event.account.model_dump_json(),
        op_json,
        notify_channel(event.command_id),
        op_ttl_ms,
    ]
    return keys, args


def _hget(redis: Redis, key: str) -> Awaitable[bytes | None]:
    # redis-py annotates commands for its sync and async clients at once; this client is async and returns
    # bytes (decode_responses is off).
    return cast("Awaitable[bytes | None]", redis.hget(key, "data"))


class ReadModel:
    """The gateway's read-only view. Raises ``redis.exceptions.RedisError`` when Redis is unreachable."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def account(self, account_id: str) -> AccountSnapshot | None:
        raw = await _hget(self._redis, account_key(account_id))
        return None if raw is None else AccountSnapshot.model_validate_json(raw)

    async def operation(self, op_id: str) -> Operation | None:
        raw = await _hget(self._redis, operation_key(op_id))
        return None if raw is None else Operation.model_validate_json(raw)
