"""The Redis read model's key layout and the projector's guarded writes (the gateway reads it through
``payments.gateway.readmodel``).

Layout (written only by the projector, read only by the gateway):

* ``acct:<account_id>`` — hash ``{seq, data}``; ``data`` is the ``AccountSnapshot`` JSON of the result
  with sequence number ``seq`` (= the account ``version``). Overwritten only by a higher ``seq``.
* ``op:<op_id>`` — hash ``{seq, data}``; ``data`` is the ``Operation`` JSON (payment, top-up or
  adjustment, with its status history) as of account sequence ``seq``. Overwritten only by a higher
  ``seq`` (an operation belongs to one account, so seqs are comparable). Expires
  ``operation_retention_s`` after its last change.
* ``acctops:<account_id>:<kind>`` — sorted set of the account's operation ids of one kind (``payment``,
  ``top_up``, ``adjustment``), score = the seq of the operation's first status change. ``ZADD NX``, so a
  redelivered result never moves an entry. Expires with the operations (refreshed on every write); an
  entry whose ``op:`` key expired is skipped when listing.
* ``ledger:<account_id>`` — sorted set of the account's ledger transaction ids, score = ``seq``; and
  ``ledgertx:<account_id>`` — hash ``tx_id`` → ``LedgerTransaction`` JSON. Written with ``ZADD NX`` /
  ``HSETNX`` from ``payments.ledger``, so redelivery changes nothing. Kept without expiry (the ledger is
  the account's record); memory grows with the number of transactions.
* channel ``opdone:<id>`` — PUBLISHed ``<seq>`` whenever a result changed the model, on the channel of
  the result's ``command_id`` and, if different, of its operation's id, so ``Prefer: wait`` requests on a
  payment wake up when a later command (a PSP outcome, the reconciler's expiry) makes it final. Opening an
  account uses command id ``open:<account_id>``.

The version guard makes the projector's at-least-once delivery idempotent and keeps reads monotone
(invariant 10): a redelivered or older result never overwrites a newer one.

Completeness (written by the projector, see ``progress_store``; all of it vanishes with the data when Redis
loses it, which is the point):

* ``readmodel:epoch`` — a random token the projector creates when it finds none. A projector that finds
  another token (or none) where it expects its own knows Redis lost data.
* ``readmodel:offsets`` — hash ``<topic>:<partition>`` → the next offset to project: everything before it is
  in the read model. Written in the same pipeline as, and after, the batch it covers.
* ``readmodel:complete`` — hash ``<topic>:<partition>`` → ``1`` once the partition has caught up, in this
  epoch, to the end offset it had when its (re)build began.
* ``readmodel:ready`` — present once every partition of the results and ledger topics is complete.

The gateway answers reads only while ``readmodel:ready`` exists, checked in the same Lua call as the read
(atomically, no extra round trip); otherwise 503 ``read_model_rebuilding`` (``ReadModelRebuilding``), and
intake skips its membership pre-check as when Redis is unreachable. A positive flag, not a "rebuilding"
one: a ``FLUSHALL`` or a restart removes it together with the data, so no read sees the empty model as
complete, even before the projector notices the loss.
"""

from __future__ import annotations

from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import Operation, OperationKind, ResultEvent

NOTIFY_PREFIX = "opdone:"

EPOCH_KEY = "readmodel:epoch"
OFFSETS_KEY = "readmodel:offsets"
COMPLETE_KEY = "readmodel:complete"
READY_KEY = "readmodel:ready"

# KEYS[1] acct key, KEYS[2] op key, KEYS[3] op index key (2 and 3 absent when the result has no operation)
# ARGV[1] seq, ARGV[2] account json, ARGV[3] op json or "", ARGV[4] channel, ARGV[5] op ttl ms or "0",
# ARGV[6] the operation's channel or "", ARGV[7] op index score, ARGV[8] op id
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
  redis.call('ZADD', KEYS[3], 'NX', ARGV[7], ARGV[8])
  if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
end
if changed == 1 then
  redis.call('PUBLISH', ARGV[4], ARGV[1])
  if ARGV[6] ~= '' and ARGV[6] ~= ARGV[4] then redis.call('PUBLISH', ARGV[6], ARGV[1]) end
end
return changed
"""

# KEYS[1] ledger index, KEYS[2] ledger tx hash; ARGV[1] seq, ARGV[2] tx id, ARGV[3] tx json
# Returns 1 if the transaction was new, 0 for a redelivery.
APPLY_LEDGER_LUA = """
redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3])
return redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
"""


def account_key(account_id: str) -> str:
    return f"acct:{account_id}"


def operation_key(op_id: str) -> str:
    return f"op:{op_id}"


def operations_index_key(account_id: str, kind: OperationKind) -> str:
    return f"acctops:{account_id}:{kind.value}"


def ledger_index_key(account_id: str) -> str:
    return f"ledger:{account_id}"


def ledger_tx_key(account_id: str) -> str:
    return f"ledgertx:{account_id}"


def notify_channel(command_id: str) -> str:
    return NOTIFY_PREFIX + command_id


def open_command_id(account_id: str) -> str:
    return f"open:{account_id}"


def first_seq(op: Operation, fallback: int) -> int:
    """The seq at which ``op`` was created: its first status change (results always carry the history)."""
    return min((h.seq for h in op.history), default=fallback)


def apply_result_call(event: ResultEvent, op_ttl_ms: int) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of ``APPLY_RESULT_LUA`` for one result. Pure."""
    keys = [account_key(event.account_id)]
    op_json = ""
    op_channel = ""
    index_score: int | str = ""
    op_id = ""
    op = event.operation
    if op is not None:
        keys += [operation_key(op.op_id), operations_index_key(op.account_id, op.kind)]
        op_json = op.model_dump_json()
        op_channel = notify_channel(op.op_id)
        index_score = first_seq(op, event.seq)
        op_id = op.op_id
    args: list[str | int] = [
        event.seq,
        event.account.model_dump_json(),
        op_json,
        notify_channel(event.command_id),
        op_ttl_ms,
        op_channel,
        index_score,
        op_id,
    ]
    return keys, args


def apply_ledger_call(tx: LedgerTransaction) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of ``APPLY_LEDGER_LUA`` for one ledger transaction. Pure."""
    keys = [ledger_index_key(tx.account_id), ledger_tx_key(tx.account_id)]
    return keys, [tx.seq, tx.tx_id, tx.model_dump_json()]
