"""Our side of settlement: PSP operations from ``payments.results`` and their postings from
``payments.ledger``, kept up to date incrementally by one read_committed consumer.

The consumer never commits offsets: on a restart it reads both topics from the start again (bounded by
their retention). It keeps a few fields per payment and top-up, not whole records. At volumes where that
no longer fits in memory this becomes a compacted per-operation index; the matching logic does not change.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from payments.reconciler.settlement import PSP_OP_KINDS, OurOp, OurPosting
from payments.schemas.ledger import PSP_POSTING_KINDS, LedgerTransaction, LedgerTxKind
from payments.schemas.state import ResultEvent
from payments.settings import KafkaSettings
from payments.streaming.read import Record, TopicReader

log = logging.getLogger(__name__)


class Books:
    def __init__(self, kafka: KafkaSettings) -> None:
        self._results = kafka.topics.results
        self._ledger = kafka.topics.ledger
        self.ops: dict[str, OurOp] = {}
        self.postings: dict[str, list[OurPosting]] = {}
        self._reader = TopicReader(kafka, [self._results, self._ledger], name="settlement-books")

    def close(self) -> None:
        self._reader.close()

    def catch_up(self, timeout_s: float) -> bool:
        """Read every record committed when this is called (up to each partition's last stable offset).
        False if that took longer than ``timeout_s``."""
        for record in self._reader.read_to_end(timeout_s=timeout_s, committed=True):
            self._apply(record)
        return self._reader.complete

    def _apply(self, m: Record) -> None:
        raw = m.value
        if raw is None:
            return
        try:
            if m.topic == self._results:
                self._apply_result(ResultEvent.model_validate_json(raw))
            else:
                self._apply_ledger(LedgerTransaction.model_validate_json(raw))
        except ValidationError:
            log.error("unreadable record on %s partition=%s offset=%s", m.topic, m.partition, m.offset)

    def _apply_result(self, event: ResultEvent) -> None:
        op = event.operation
        if op is None or op.kind not in PSP_OP_KINDS:
            return
        self.ops[op.op_id] = OurOp(
            op_id=op.op_id,
            account_id=op.account_id,
            kind=op.kind.value,
            status=op.status.value,
            terminal=op.is_terminal,
            amount=op.amount,
            currency=op.currency,
        )

    def _apply_ledger(self, tx: LedgerTransaction) -> None:
        if tx.kind not in PSP_POSTING_KINDS:
            return
        self.postings.setdefault(tx.op_id, []).append(
            OurPosting(
                tx_id=tx.tx_id,
                op_id=tx.op_id,
                account_id=tx.account_id,
                kind=LedgerTxKind(tx.kind),
                amount=sum(p.amount for p in tx.postings),
                occurred_at=tx.occurred_at,
            )
        )
