"""The gateway's read-only view of the Redis read model (layout and writes: ``payments.readmodel.layout``)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from payments.gateway.cursors import Cursor
from payments.gateway.errors import ReadModelRebuilding
from payments.readmodel.layout import (
    READY_KEY,
    account_key,
    ledger_index_key,
    ledger_tx_key,
    operation_key,
    operations_index_key,
)
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import AccountSnapshot, Operation, OperationKind

# KEYS[1] a sorted set, KEYS[2] the ready flag; ARGV[1] cursor score or "" (first page), ARGV[2] cursor
# member, ARGV[3] count. Resumes right after the cursor's entry by rank: entries are only ever added (at the
# end, in seq order), so the rank of the cursor's entry, read now, is where the previous page ended. If the
# entry is gone (its key expired meanwhile) it resumes after the cursor's score. Returns member, score,
# member, score, ...; nil while the read model is not ready.
PAGE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local n = tonumber(ARGV[3])
local start = 0
if ARGV[1] ~= '' then
  local r = redis.call('ZRANK', KEYS[1], ARGV[2])
  if not r then
    return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, n)
  end
  start = r + 1
end
return redis.call('ZRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
"""


# KEYS[1] the ready flag, KEYS[2] a read-model hash: {0} while the read model is not ready, else {1, data}
# (data nil if absent). One call, so the check costs no round trip and no FLUSHALL or rebuild can fall
# between the check and the read.
READ_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
return {1, redis.call('HGET', KEYS[2], 'data')}
"""


def _entries(reply: list[bytes]) -> list[tuple[str, int]]:
    """``[member, score, ...]`` → ``[(member, seq), ...]``."""
    return [(reply[i].decode(), int(float(reply[i + 1]))) for i in range(0, len(reply), 2)]


class ReadModel:
    """The gateway's read-only view. Raises ``redis.exceptions.RedisError`` when Redis is unreachable and
    ``ReadModelRebuilding`` while the read model is incomplete (``readmodel:ready`` absent)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._page = redis.register_script(PAGE_LUA)
        self._read = redis.register_script(READ_LUA)

    async def _data(self, key: str) -> bytes | None:
        reply = await self._read(keys=[READY_KEY, key])
        if not reply[0]:
            raise ReadModelRebuilding()
        return cast("bytes | None", reply[1] if len(reply) > 1 else None)

    async def account(self, account_id: str) -> AccountSnapshot | None:
        raw = await self._data(account_key(account_id))
        return None if raw is None else AccountSnapshot.model_validate_json(raw)

    async def operation(self, op_id: str) -> Operation | None:
        raw = await self._data(operation_key(op_id))
        return None if raw is None else Operation.model_validate_json(raw)

    async def _page_entries(self, key: str, after: Cursor | None, count: int) -> list[tuple[str, int]]:
        args: list[str | int] = ["", "", count] if after is None else [after.seq, after.member, count]
        reply = await self._page(keys=[key, READY_KEY], args=args)
        if reply is None:
            raise ReadModelRebuilding()
        return _entries(list(reply))

    async def operations_page(
        self, account_id: str, kind: OperationKind, after: Cursor | None, count: int
    ) -> tuple[list[Operation], list[tuple[str, int]]]:
        """Up to ``count`` index entries after ``after`` and the operations still in the read model among
        them (in index order; an operation whose key expired is left out)."""
        entries = await self._page_entries(operations_index_key(account_id, kind), after, count)
        if not entries:
            return [], []
        # MULTI/EXEC (still one round trip): the ready check and the reads see the same Redis, so a loss
        # between the index page and these reads cannot pass for expired operations.
        pipe = self._redis.pipeline(transaction=True)
        for op_id, _ in entries:
            pipe.hget(operation_key(op_id), "data")
        pipe.exists(READY_KEY)
        *raws, ready = await pipe.execute()
        if not ready:
            raise ReadModelRebuilding()
        ops = [Operation.model_validate_json(raw) for raw in raws if raw is not None]
        return [op for op in ops if op.account_id == account_id and op.kind is kind], entries

    async def ledger_page(
        self, account_id: str, after: Cursor | None, count: int
    ) -> tuple[list[LedgerTransaction], list[tuple[str, int]]]:
        """Up to ``count`` ledger transactions of the account after ``after``, ascending by seq."""
        entries = await self._page_entries(ledger_index_key(account_id), after, count)
        if not entries:
            return [], []
        pipe = self._redis.pipeline(transaction=True)  # as in operations_page
        pipe.hmget(ledger_tx_key(account_id), [tx_id for tx_id, _ in entries])
        pipe.exists(READY_KEY)
        raws, ready = await pipe.execute()
        if not ready:
            raise ReadModelRebuilding()
        return [LedgerTransaction.model_validate_json(raw) for raw in raws if raw is not None], entries
