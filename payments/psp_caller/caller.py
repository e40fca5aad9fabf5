"""The psp-caller's record handler: one ``PspRequest`` in, PSP called, ``RecordPspOutcome`` out.

At-least-once contract (see ``streaming.at_least_once``): ``handle`` returns only after the outcome is
durable on the commands topic, so the request's offset is committed only then. Running it twice for one
request is harmless: the PSP dedupes on the op id, and the processor applies outcomes monotonically.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from payments.psp_caller import metrics
from payments.psp_caller.retry import RetryDeps, call_until_final
from payments.pspclient.money import Answer, InvalidPspRequest, PspClient, build_call
from payments.schemas.commands import RecordPspOutcome, encode_command
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus, PspRequest
from payments.streaming.at_least_once import Record
from payments.streaming.producer import AsyncProducer

log = logging.getLogger(__name__)

_MAX_COMMAND_ID = 128  # RecordPspOutcome.command_id limit


@dataclass(frozen=True)
class CallerDeps:
    client: PspClient
    producer: AsyncProducer
    retry: RetryDeps
    commands_topic: str
    monotonic: Callable[[], float] = time.monotonic  # for latency metrics only


class PspCaller:
    def __init__(self, deps: CallerDeps) -> None:
        self._d = deps

    async def handle(self, record: Record) -> None:
        req = self._decode(record)
        if req is None:
            return
        metrics.IN_FLIGHT.inc()
        started = self._d.monotonic()
        try:
            await self._handle(req)
        finally:
            metrics.IN_FLIGHT.dec()
        metrics.OPERATION_SECONDS.labels(req.kind.value).observe(self._d.monotonic() - started)

    async def _handle(self, req: PspRequest) -> None:
        try:
            # Proves before any call that an outcome can be recorded for this op (ids match the command
            # schema): money must never move for an operation whose outcome we could not report.
            self._outcome(req, PspOutcomeStatus.PROCESSING)
        except ValidationError as exc:
            self._skip("invalid_ids", req.op_id, exc)
            return
        try:
            call = build_call(req)
        except InvalidPspRequest as exc:
            log.error("op=%s cannot be sent to the PSP (%s); reporting unknown", req.op_id, exc)
            await self._publish(self._outcome(req, PspOutcomeStatus.UNKNOWN), "invalid_request")
            return

        kind = req.kind.value

        async def attempt() -> Answer:
            t0 = self._d.monotonic()
            answer = await self._d.client.attempt(call)  # same key, same body, every time
            metrics.ATTEMPT_SECONDS.labels(kind).observe(self._d.monotonic() - t0)
            metrics.ATTEMPTS.labels(kind, answer.kind.value).inc()
            log.debug(
                "op=%s attempt: %s status=%s %s", req.op_id, answer.kind, answer.status_code, answer.detail
            )
            return answer

        async def on_retrying() -> None:
            # The first attempt gave no final answer: tell clients the PSP leg is slow, once.
            await self._publish(self._outcome(req, PspOutcomeStatus.PROCESSING), "retrying")

        final = await call_until_final(
            attempt, deadline_ms=req.deadline_at, deps=self._d.retry, on_retrying=on_retrying, op=req.op_id
        )
        answer = final.answer
        outcome = self._outcome(
            req,
            final.status,
            movement_id=answer.movement_id if answer else None,
            failure_code=answer.failure_code if answer else None,
            amount=answer.amount if answer else None,
        )
        await self._publish(outcome, final.reason)
        # One line per operation that needed retries or stays unresolved; the happy path is in the metrics.
        level = (
            logging.INFO if final.attempts > 1 or final.status is PspOutcomeStatus.UNKNOWN else logging.DEBUG
        )
        log.log(
            level, "op=%s %s after %d attempt(s) (%s)", req.op_id, final.status, final.attempts, final.reason
        )

    def _decode(self, record: Record) -> PspRequest | None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if record.value is None:
            self._skip("undecodable", where, None)
            return None
        try:
            return PspRequest.model_validate_json(record.value)
        except ValidationError as exc:
            self._skip("undecodable", where, exc)
            return None

    def _skip(self, reason: str, what: str, exc: ValidationError | None) -> None:
        # Field locations and error types only: pydantic's messages would echo the input (card tokens).
        errors = [] if exc is None else [(".".join(map(str, e["loc"])), e["type"]) for e in exc.errors()]
        log.error("skipping PSP request %s (%s): %s", what, reason, errors or "empty value")
        metrics.SKIPPED.labels(reason).inc()

    def _outcome(
        self,
        req: PspRequest,
        status: PspOutcomeStatus,
        *,
        movement_id: str | None = None,
        failure_code: str | None = None,
        amount: int | None = None,
    ) -> RecordPspOutcome:
        return RecordPspOutcome(
            command_id=command_id(req.op_id, status),
            account_id=req.account_id,
            issued_at=self._d.retry.now_ms(),
            op_id=req.op_id,
            status=status,
            source=PspOutcomeSource.PSP_CALLER,
            psp_movement_id=movement_id,
            psp_failure_code=failure_code,
            amount=amount,
        )

    async def _publish(self, outcome: RecordPspOutcome, reason: str) -> None:
        await self._d.producer.send(
            self._d.commands_topic, outcome.account_id.encode(), encode_command(outcome)
        )
        metrics.OUTCOMES.labels(outcome.status.value, reason).inc()


def command_id(op_id: str, status: PspOutcomeStatus) -> str:
    """``<op_id>.psp.<status>``; a digest of the op id instead when that would exceed the length limit."""
    plain = f"{op_id}.psp.{status.value}"
    if len(plain) <= _MAX_COMMAND_ID:
        return plain
    return f"{hashlib.sha256(op_id.encode()).hexdigest()[:48]}.psp.{status.value}"
