"""Periodic settlement: fetch the PSP's report, catch our books up, match, publish what is new.

Each mismatch is published once: records on ``payments.discrepancies`` are keyed by a deterministic id, the
job loads the ids already published when it starts, and publishes a run's new discrepancies together with
the run record in one Kafka transaction under a fixed ``transactional.id``, so a second settlement job
fences the first instead of both publishing the same mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from payments.audit.reader import read_topic
from payments.pspclient.http import PspStatusError, PspTransportError
from payments.reconciler import metrics
from payments.reconciler.books import Books
from payments.reconciler.psp_lookup import PspReadClient
from payments.reconciler.settlement import Finding, match
from payments.schemas.psp_movement import PspMovement, PspSettlementReport
from payments.schemas.settlement import Discrepancy, SettlementRun, run_key
from payments.settings import KafkaSettings
from payments.streaming.transactional import TransactionalProducer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettlementSettings:
    interval_s: float = 60.0
    # A PSP success (or one of our postings) younger than this is not judged yet: its outcome may still
    # be on its way through the psp-caller, a webhook or the reconciler (ms).
    grace_ms: int = 120_000
    catch_up_timeout_s: float = 60.0
    transactional_id: str = "payments-settlement"


def parse_report(body: Any) -> tuple[list[PspMovement], int]:
    """The report's movements and its generation time (ms). Raises ValueError on a malformed report."""
    try:
        report = PspSettlementReport.model_validate(body)
    except ValidationError as exc:
        # Locations only: the values may hold idempotency keys, which are not for the logs.
        raise ValueError(f"malformed settlement report: {[e['loc'] for e in exc.errors()][:5]}") from exc
    return list(report.movements), report.generated_at_ms


def to_discrepancy(f: Finding, run_id: str, now_ms: int) -> Discrepancy:
    return Discrepancy(
        discrepancy_id=f.discrepancy_id,
        kind=f.kind,
        op_id=f.op_id,
        account_id=f.account_id,
        psp_movement_id=f.psp_movement_id,
        psp_amount=f.psp_amount,
        ledger_amount=f.ledger_amount,
        currency=f.currency,
        detail=f.detail,
        run_id=run_id,
        detected_at=now_ms,
    )


class SettlementJob:
    def __init__(
        self,
        kafka: KafkaSettings,
        client: PspReadClient,
        settings: SettlementSettings,
        now_ms: Callable[[], int],
    ) -> None:
        self._kafka = kafka
        self._client = client
        self._s = settings
        self._now_ms = now_ms
        self._books: Books | None = None
        self._known: set[str] = set()
        self._producer: TransactionalProducer | None = None

    def start(self) -> None:
        """Blocking: fence an earlier job, load what it published, open our books."""
        self._producer = TransactionalProducer(self._kafka, self._s.transactional_id, init_timeout_s=60)
        # After init_transactions no earlier incarnation can commit more, so this read is complete.
        for key, _ in read_topic(self._kafka, self._kafka.topics.discrepancies, stall_s=10):
            name = key.decode()
            if not name.startswith("run:"):
                self._known.add(name)
        self._books = Books(self._kafka)
        log.info("settlement: %d discrepancies already published", len(self._known))

    def close(self) -> None:
        if self._books is not None:
            self._books.close()
        if self._producer is not None:
            self._producer.close(10)

    async def run_forever(self, stop: asyncio.Event) -> None:
        while self._books is None:
            try:
                await asyncio.to_thread(self.start)
            except Exception as exc:
                # Typically a fresh topic whose partitions have no leader yet: the job waits, the
                # reconciler's lookups go on meanwhile.
                log.warning("settlement not started yet (%s); retrying", exc)
                if stop.is_set():
                    return
                await asyncio.sleep(min(self._s.interval_s, 5.0))
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception:
                    metrics.SETTLEMENT_RUNS.labels(result="skipped").inc()
                    log.exception("settlement run failed; trying again next interval")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._s.interval_s)
        finally:
            await asyncio.to_thread(self.close)

    async def run_once(self) -> SettlementRun | None:
        """One run; None if it was skipped (PSP unreachable, books not caught up)."""
        books = self._books
        assert books is not None, "start() first"
        started = self._now_ms()
        try:
            # First the PSP, then our topics: every movement's intent is then on results already.
            rows, generated_at = parse_report(await self._client.settlement_report())
        except (PspTransportError, PspStatusError, ValueError) as exc:
            metrics.SETTLEMENT_RUNS.labels(result="skipped").inc()
            log.warning("settlement skipped: no PSP report (%s)", type(exc).__name__)
            return None
        if not await asyncio.to_thread(books.catch_up, self._s.catch_up_timeout_s):
            metrics.SETTLEMENT_RUNS.labels(result="skipped").inc()
            log.warning("settlement skipped: our topics could not be read to the end in time")
            return None
        report = match(books.ops, books.postings, rows, judge_before_ms=generated_at - self._s.grace_ms)
        run_id = f"st-{started}"
        found = {f.discrepancy_id: f for f in report.findings}
        new = [to_discrepancy(f, run_id, self._now_ms()) for i, f in found.items() if i not in self._known]
        run = SettlementRun(
            run_id=run_id,
            started_at=started,
            finished_at=self._now_ms(),
            movements=report.movements,
            matched=report.matched,
            pending=report.pending,
            new_discrepancies=len(new),
            known_discrepancies=len(found) - len(new),
            clean=not found,
        )
        await asyncio.to_thread(self._publish, new, run)
        self._known.update(d.discrepancy_id for d in new)
        metrics.SETTLEMENT_RUNS.labels(result="clean" if run.clean else "dirty").inc()
        metrics.OPEN_DISCREPANCIES.set(len(found))
        for d in new:
            metrics.DISCREPANCIES.labels(kind=d.kind.value).inc()
            log.warning("settlement discrepancy %s: %s", d.kind.value, d.detail)
        log.info(
            "settlement %s: %d movements, %d matched, %d pending, %d new and %d known discrepancies",
            run_id, run.movements, run.matched, run.pending, run.new_discrepancies, run.known_discrepancies,
        )  # fmt: skip
        return run

    def _publish(self, new: Iterable[Discrepancy], run: SettlementRun) -> None:
        producer = self._producer
        assert producer is not None
        topic = self._kafka.topics.discrepancies
        records = [(topic, d.discrepancy_id.encode(), d.model_dump_json().encode()) for d in new]
        records.append((topic, run_key(run.run_id).encode(), run.model_dump_json().encode()))
        producer.publish(records, timeout_s=30)
