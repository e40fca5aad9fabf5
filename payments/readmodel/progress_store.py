"""The projector's progress keys in Redis (layout in ``readmodel``): epoch, per-partition marks,
completeness and the ready flag, each change in one Lua call.

Why marks in Redis rather than Kafka's committed offsets alone: they live and die with the data. A Redis
that lost the read model (restart without persistence, ``FLUSHALL``) has lost the marks and the epoch too,
which the projector notices at its next batch or check and answers by re-projecting from the beginning;
a Kafka commit would still point past the lost data. Kafka offsets are still committed after each batch,
for lag monitoring only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline

from payments.readmodel.layout import COMPLETE_KEY, EPOCH_KEY, OFFSETS_KEY, READY_KEY
from payments.readmodel.progress import Verdict, parse_verdict

_KEYS = [EPOCH_KEY, OFFSETS_KEY, COMPLETE_KEY, READY_KEY]

# KEYS: epoch, offsets, complete, ready; ARGV[1] a fresh token. The current token; if there is none, ARGV[1]
# becomes it and completeness is reset: whatever marks survived (an operator deleting the epoch, say) are
# still true, but every partition must show again that it caught up before reads are served.
ENSURE_EPOCH_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4])
return ARGV[1]
"""

# KEYS: epoch, offsets, complete, ready; ARGV[1] the caller's epoch token, then triples (field, expected
# mark or '', new mark or ''). Checks before it writes: a different or missing epoch → {'lost'}; a mark
# missing or older than expected → {'behind', field, mark or '', ...}, and those partitions lose their
# completeness and the ready flag goes (the data is older than reads have shown); else the new marks are
# written → {'ok', ready 0/1}. Called after the batch's records in the same pipeline, so a mark never
# covers a record that is not written. Marks only move forward: during a rebalance the old owner of a
# partition may still finish a batch the new owner is behind, and both marks are true (everything below
# the higher one is written), while a lower write would look like a loss to the old owner.
SYNC_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'lost'} end
local behind = {}
for i = 2, #ARGV, 3 do
  if ARGV[i + 1] ~= '' then
    local cur = redis.call('HGET', KEYS[2], ARGV[i])
    if (not cur) or tonumber(cur) < tonumber(ARGV[i + 1]) then
      table.insert(behind, ARGV[i])
      table.insert(behind, cur or '')
    end
  end
end
if #behind > 0 then
  for j = 1, #behind, 2 do redis.call('HDEL', KEYS[3], behind[j]) end
  redis.call('DEL', KEYS[4])
  table.insert(behind, 1, 'behind')
  return behind
end
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] ~= '' then
    local cur = redis.call('HGET', KEYS[2], ARGV[i])
    if (not cur) or tonumber(cur) < tonumber(ARGV[i + 2]) then
      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
    end
  end
end
return {'ok', redis.call('EXISTS', KEYS[4])}
"""

# KEYS: epoch, offsets, complete, ready; ARGV[1] epoch token, ARGV[2] partitions in all (results + ledger),
# ARGV[3..] fields of partitions that caught up. -1 if the epoch is not the caller's (nothing written);
# else 1 if every partition is now complete (and ready is set), 0 if not yet.
COMPLETE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
for i = 3, #ARGV do redis.call('HSET', KEYS[3], ARGV[i], '1') end
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[4], ARGV[1])
  return 1
end
return 0
"""

SyncEntry = tuple[str, int | None, int | None]  # field, expected mark, new mark


def _blank(value: int | None) -> str | int:
    return "" if value is None else value


class ProgressStore:
    """Synchronous (the projector's loop is a plain thread). Raises ``RedisError`` when Redis fails."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._ensure = redis.register_script(ENSURE_EPOCH_LUA)
        self._sync = redis.register_script(SYNC_LUA)
        self._complete = redis.register_script(COMPLETE_LUA)

    def ensure_epoch(self, candidate: str) -> str:
        """The current epoch token, ``candidate`` if there was none."""
        return cast(bytes, self._ensure(keys=_KEYS, args=[candidate])).decode()

    def load(self, fields: Sequence[str]) -> tuple[dict[str, int | None], set[str]]:
        """The marks of ``fields`` (None where absent) and which of them are complete, in one round trip."""
        if not fields:
            return {}, set()
        pipe = self._redis.pipeline(transaction=True)
        pipe.hmget(OFFSETS_KEY, list(fields))
        pipe.hmget(COMPLETE_KEY, list(fields))
        marks, complete = cast("list[list[bytes | None]]", pipe.execute())
        return (
            {f: None if m is None else int(m) for f, m in zip(fields, marks, strict=True)},
            {f for f, c in zip(fields, complete, strict=True) if c is not None},
        )

    def queue_sync(self, pipe: Pipeline, epoch: str, entries: Sequence[SyncEntry]) -> None:
        """Append the check-and-mark call to ``pipe`` (after the batch's records); parse its reply with
        ``progress.parse_verdict``."""
        self._sync(keys=_KEYS, args=self._sync_args(epoch, entries), client=pipe)

    def sync(self, epoch: str, entries: Sequence[SyncEntry]) -> Verdict:
        """The check on its own (no batch): with no new marks it writes nothing unless something is
        behind."""
        reply = self._sync(keys=_KEYS, args=self._sync_args(epoch, entries))
        return parse_verdict(cast("list[Any]", reply))

    def complete(self, epoch: str, total_partitions: int, fields: Sequence[str]) -> int:
        """Record ``fields`` as caught up: -1 epoch lost, 1 the read model is now ready, 0 not yet."""
        return int(cast(int, self._complete(keys=_KEYS, args=[epoch, total_partitions, *fields])))

    @staticmethod
    def _sync_args(epoch: str, entries: Sequence[SyncEntry]) -> list[str | int]:
        args: list[str | int] = [epoch]
        for name, expected, new in entries:
            args += [name, _blank(expected), _blank(new)]
        return args
