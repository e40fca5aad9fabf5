"""The reconciler's I/O loop: looks up due open operations at the PSP and feeds the answers back.

The tracker (exactly-once runtime, its own thread) hands over a copy of the open operations it owns
between batches; the sweeper keeps a schedule per operation in memory. Losing that schedule on a restart
only means every open operation is looked at again: lookups are reads, and every command the sweeper
produces is idempotent in the processor (monotone outcomes, expiry only past the deadline), so the loop is
at-least-once without harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from payments.reconciler import metrics
from payments.reconciler.policy import (
    Action,
    AskLater,
    Expire,
    ReconcilePolicy,
    RecordOutcome,
    Redrive,
    first_check_at,
    next_check_at,
    resolve,
)
from payments.reconciler.psp_lookup import PspReadClient
from payments.reconciler.tracking import TrackedOp
from payments.schemas.commands import ExpireOperation, RecordPspOutcome, encode_command
from payments.schemas.psp import PspOutcomeSource, PspRequest, PspRequestKind
from payments.schemas.state import OperationKind
from payments.settings import TopicNames
from payments.streaming.producer import AsyncProducer

log = logging.getLogger(__name__)


class Handoff:
    """The latest copy of the open operations, from the runtime thread to the sweeper's loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[str, TrackedOp] = {}

    def __call__(self, view: Mapping[int, Mapping[str, object]]) -> None:
        """The runtime's punctuator: copies the owned partitions' open operations."""
        ops = {k: v for part in view.values() for k, v in part.items() if isinstance(v, TrackedOp)}
        with self._lock:
            self._ops = ops

    def latest(self) -> dict[str, TrackedOp]:
        with self._lock:
            return self._ops


@dataclass
class _Schedule:
    seq: int  # the result seq the schedule was made for: a newer status reschedules
    next_at: int
    checks: int = 0


@dataclass(frozen=True)
class SweeperDeps:
    client: PspReadClient
    producer: AsyncProducer
    topics: TopicNames
    policy: ReconcilePolicy
    now_ms: Callable[[], int]
    rng: random.Random
    max_concurrent: int = 32
    tick_s: float = 0.5


class Sweeper:
    def __init__(self, handoff: Handoff, deps: SweeperDeps) -> None:
        self._handoff = handoff
        self._d = deps
        self._schedule: dict[str, _Schedule] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._d.tick_s)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def tick(self) -> None:
        """Reschedule from the latest open set and start the lookups that are due."""
        ops = self._handoff.latest()
        now = self._d.now_ms()
        for op_id in self._schedule.keys() - ops.keys():
            del self._schedule[op_id]  # terminal now, or its partition moved to another instance
        oldest = None
        for op in ops.values():
            sched = self._schedule.get(op.op_id)
            if sched is None or sched.seq != op.seq:
                first = first_check_at(op, self._d.policy)
                # A status change (e.g. the psp-caller gave up: unknown) may bring the check forward,
                # never push back one that backoff already scheduled.
                at = first if sched is None else min(sched.next_at, first)
                self._schedule[op.op_id] = sched = _Schedule(op.seq, at, 0 if sched is None else sched.checks)
            oldest = op.since if oldest is None else min(oldest, op.since)
        metrics.OPEN.set(len(ops))
        metrics.OLDEST_AGE.set(0 if oldest is None else max(0, now - oldest) / 1000)
        due = sorted(
            (s.next_at, op_id)
            for op_id, s in self._schedule.items()
            if s.next_at <= now and op_id not in self._busy
        )
        for _, op_id in due[: max(0, self._d.max_concurrent - len(self._busy))]:
            self._busy.add(op_id)
            task = asyncio.get_running_loop().create_task(self._check(ops[op_id]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _check(self, op: TrackedOp) -> None:
        try:
            lookup = await self._d.client.lookup(op.op_id)
            metrics.LOOKUPS.labels(answer=lookup.kind.value).inc()
            now = self._d.now_ms()
            action = resolve(op, lookup, now, self._d.policy)
            await self._act(op, action, now)
            metrics.ACTIONS.labels(action=type(action).__name__).inc()
            if not isinstance(action, AskLater):
                log.info("op=%s… %s: %s", op.op_id[:12], op.status.value, _describe(action))
        except Exception:
            # One operation's failure (a delivery that timed out) must not stop the others: ask again later.
            log.exception("reconciling op=%s… failed", op.op_id[:12])
        finally:
            self._busy.discard(op.op_id)
            sched = self._schedule.get(op.op_id)
            # A newer status arrived while this lookup ran: tick() already scheduled that one, and this
            # answer (about the old status) must not push it back.
            if sched is not None and sched.seq == op.seq:
                sched.checks += 1
                sched.next_at = next_check_at(
                    op, sched.checks, self._d.now_ms(), self._d.rng.random(), self._d.policy
                )

    async def _act(self, op: TrackedOp, action: Action, now: int) -> None:
        key = op.account_id.encode()
        if isinstance(action, RecordOutcome):
            cmd: RecordPspOutcome | ExpireOperation = RecordPspOutcome(
                command_id=_command_id("rec", op.op_id, now),
                account_id=op.account_id,
                issued_at=now,
                op_id=op.op_id,
                status=action.status,
                source=PspOutcomeSource.RECONCILER,
                psp_movement_id=action.movement_id,
                psp_failure_code=action.failure_code,
                amount=action.amount,
            )
            await self._d.producer.send(self._d.topics.commands, key, encode_command(cmd))
        elif isinstance(action, Expire):
            cmd = ExpireOperation(
                command_id=_command_id("exp", op.op_id, now),
                account_id=op.account_id,
                issued_at=now,
                op_id=op.op_id,
            )
            await self._d.producer.send(self._d.topics.commands, key, encode_command(cmd))
        elif isinstance(action, Redrive):
            req = redrive_request(op, now)
            await self._d.producer.send(self._d.topics.psp_requests, key, req.model_dump_json().encode())


def redrive_request(op: TrackedOp, now_ms: int) -> PspRequest:
    """The same PSP request the processor issued: the psp-caller builds the same key and body from it."""
    return PspRequest(
        op_id=op.op_id,
        account_id=op.account_id,
        kind=PspRequestKind.TRANSFER if op.kind is OperationKind.PAYMENT else PspRequestKind.CHARGE,
        amount=op.amount,
        currency=op.currency,
        payee=op.payee,
        payment_method=op.payment_method,
        issued_at=now_ms,
        deadline_at=op.deadline_at if op.deadline_at is not None else now_ms,
        seq=op.seq,
    )


def _command_id(prefix: str, op_id: str, now_ms: int) -> str:
    # Traceable, not a dedupe key: the processor dedupes outcomes and expiries by the operation's state.
    return f"{prefix}:{now_ms}:{op_id}"[:128]


def _describe(action: Action) -> str:
    if isinstance(action, RecordOutcome):
        return f"PSP says {action.status.value}"
    if isinstance(action, Expire):
        return "no PSP record past the deadline: expired"
    return "no PSP record yet: re-driven with the same key"
