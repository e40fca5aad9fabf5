"""Which processor state has outlived its retention (bounded state). Pure: no clock, no Kafka.

An operation stays in the processor's state while it can still change or be asked about: until it ended
(terminal) and then ``retention_ms`` more, measured from its last change. After that its changelog key is
tombstoned (by the runtime's pruning, ``streaming/runtime.py``), so memory and restore time grow with the
operations of the retention window, not with all history. Accounts are never pruned.

What forgetting an operation means, and why the default retention is safe:

* a command under a forgotten id is decided as if the id were new. The gateway replays an idempotency key
  for ``PAYMENTS_IDEMPOTENCY_RETENTION_S`` (24 h); the processor's dedupe must outlive that window and the
  commands topic's retention (30 days: a command can only be re-read while the topic holds it), hence a
  default of 35 days and a floor of 24 h in production settings;
* a PSP outcome for a forgotten operation is a no-op, exactly as for an operation that never existed
  here; the settlement reconciliation reports a PSP movement without our posting as a discrepancy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from payments.processor.transformer import OPERATION_PREFIX
from payments.schemas.state import Operation

DEFAULT_RETENTION_MS = 35 * 24 * 3600 * 1000


def expired(value: object, now_ms: int, retention_ms: int) -> bool:
    """True for an operation that ended at least ``retention_ms`` before ``now_ms``."""
    return isinstance(value, Operation) and value.is_terminal and value.updated_at <= now_ms - retention_ms


def expired_keys(state: Mapping[str, object], now_ms: int, retention_ms: int) -> Iterator[str]:
    """The operation keys of ``state`` past their retention, lazily (the caller takes a bounded number)."""
    for key, value in state.items():
        if key.startswith(OPERATION_PREFIX) and expired(value, now_ms, retention_ms):
            yield key


class RetentionPruner:
    """The runtime's ``Pruner`` for the processor: ended operations older than the retention."""

    def __init__(self, retention_ms: int) -> None:
        self._retention_ms = retention_ms

    def __call__(self, state: Mapping[str, object], now_ms: int) -> Iterator[str]:
        # Lazy: the runtime takes at most its per-round budget, all of it before deleting anything.
        return expired_keys(state, now_ms, self._retention_ms)
