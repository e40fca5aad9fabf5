"""Our side of settlement: PSP operations from ``payments.results`` and their postings from
``payments.ledger``, kept up to date incrementally by one read_committed consumer.

The consumer never commits offsets: on a restart it reads both topics from the start again (bounded by
their retention). It keeps a few fields per payment and top-up, not whole records. At volumes where that
no longer fits in memory this becomes a compacted per-operation index; the matching logic does not change.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, IsolationLevel, KafkaError, Message, TopicPartition

# The documented import path; confluent-kafka's own type hints re-export these without marking them public.
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from pydantic import ValidationError

from payments.reconciler.settlement import LATE_SUCCESS_KIND, PSP_OP_KINDS, OurOp, OurPosting
from payments.schemas.ledger import LedgerTransaction
from payments.schemas.state import ResultEvent
from payments.settings import KafkaSettings

log = logging.getLogger(__name__)

_POSTING_KINDS = PSP_OP_KINDS | {LATE_SUCCESS_KIND}


class Books:
    def __init__(self, kafka: KafkaSettings) -> None:
        self._results = kafka.topics.results
        self._ledger = kafka.topics.ledger
        self.ops: dict[str, OurOp] = {}
        self.postings: dict[str, list[OurPosting]] = {}
        self._consumer = Consumer(
            {
                **kafka.consumer_config(),
                "group.id": f"settlement-books-{uuid.uuid4().hex}",  # never committed, never joined
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        admin_config: dict[str, Any] = {**kafka.consumer_config()}
        self._admin = AdminClient(admin_config)
        self._partitions: list[TopicPartition] = []
        for topic in (self._results, self._ledger):
            meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
            self._partitions += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        self._consumer.assign(self._partitions)

    def close(self) -> None:
        self._consumer.close()

    def catch_up(self, timeout_s: float) -> bool:
        """Read every record committed when this is called (up to each partition's last stable offset).
        False if that took longer than ``timeout_s``."""
        # One batched ListOffsets for every partition. (A consumer's per-partition watermark query waits
        # behind its own long-poll fetch: about 0.5 s each, a minute for 2 x 64 partitions.)
        futures = self._admin.list_offsets(
            {
                TopicPartition(tp.topic, tp.partition): OffsetSpec.latest()  # type: ignore[no-untyped-call]
                for tp in self._partitions
            },
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=10,
        )
        ends = {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
        pending = {k for k, end in ends.items() if end > 0}
        for tp in self._consumer.position([TopicPartition(t, p) for t, p in pending]):
            if tp.offset >= ends[(tp.topic, tp.partition)]:
                pending.discard((tp.topic, tp.partition))
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for m in self._consumer.consume(5000, 0.2):
                err = m.error()
                where = (m.topic() or "", m.partition() or 0)
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if (m.offset() or 0) >= ends.get(where, 0):
                            pending.discard(where)
                        continue
                    raise RuntimeError(f"reading {where[0]}: {err}")
                self._apply(m)
            for tp in self._consumer.position([TopicPartition(t, p) for t, p in pending]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    pending.discard((tp.topic, tp.partition))
        return not pending

    def _apply(self, m: Message) -> None:
        raw = m.value()
        if raw is None:
            return
        try:
            if m.topic() == self._results:
                self._apply_result(ResultEvent.model_validate_json(raw))
            else:
                self._apply_ledger(LedgerTransaction.model_validate_json(raw))
        except ValidationError:
            log.error("unreadable record on %s partition=%s offset=%s", m.topic(), m.partition(), m.offset())

    def _apply_result(self, event: ResultEvent) -> None:
        op = event.operation
        if op is None or op.kind.value not in PSP_OP_KINDS:
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
        if tx.kind not in _POSTING_KINDS:
            return
        self.postings.setdefault(tx.op_id, []).append(
            OurPosting(
                tx_id=tx.tx_id,
                op_id=tx.op_id,
                account_id=tx.account_id,
                kind=tx.kind,
                amount=sum(p.amount for p in tx.postings),
                occurred_at=tx.occurred_at,
            )
        )
