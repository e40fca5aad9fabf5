"""In-memory record of movements and idempotency keys.

Concurrency model: one asyncio event loop. A key is claimed with a per-key ``asyncio.Lock`` that is never
waited on: a second request for a key whose lock is held gets ``IdempotencyKeyInUse`` (409) at once.
``commit`` has no ``await`` in it, so its checks and writes are atomic with respect to other requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from payments.psp_sim.errors import (
    ChargeNotRefundable,
    IdempotencyKeyInUse,
    NotFound,
    RefundExceedsCharge,
)
from payments.psp_sim.models import Movement


@dataclass(frozen=True)
class StoredResponse:
    """The exact status and bytes of the first response under a key, replayed byte for byte."""

    status_code: int
    body: bytes


@dataclass(frozen=True)
class KeyRecord:
    fingerprint: str
    movement_id: str
    response: StoredResponse


class Store:
    def __init__(self) -> None:
        self._movements: dict[str, Movement] = {}  # insertion order is commit order
        self._keys: dict[str, KeyRecord] = {}
        self._refunded: dict[str, int] = {}  # charge id -> minor units refunded so far
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[None]:
        """Hold ``key`` for the duration of the block, or raise ``IdempotencyKeyInUse`` if it is held."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        if lock.locked():
            raise IdempotencyKeyInUse("a request with this Idempotency-Key is in flight")
        await lock.acquire()  # uncontended: returns without yielding to the loop
        try:
            yield
        finally:
            lock.release()
            if self._locks.get(key) is lock:
                del self._locks[key]  # nobody waits on these locks, so the entry can go

    def record(self, key: str) -> KeyRecord | None:
        return self._keys.get(key)

    def check_refund(self, charge_id: str, amount: int) -> Movement:
        """The charge a refund of ``amount`` would draw on, if it may."""
        charge = self._movements.get(charge_id)
        if charge is None or charge.kind != "charge":
            raise NotFound("no such charge", charge_id=charge_id)
        if charge.status != "succeeded":
            raise ChargeNotRefundable("only a succeeded charge can be refunded", charge_id=charge_id)
        remaining = charge.amount - self._refunded.get(charge_id, 0)
        if amount > remaining:
            raise RefundExceedsCharge(
                f"refund of {amount} exceeds the {remaining} left on the charge", charge_id=charge_id
            )
        return charge

    def commit(self, movement: Movement, fingerprint: str, response: StoredResponse) -> None:
        """Record a movement and the response stored under its key.

        A refund is re-checked here because two refunds of one charge under different keys may both have
        passed the early check while sleeping through their latency.
        """
        if movement.kind == "refund" and movement.status == "succeeded" and movement.charge_id is not None:
            self.check_refund(movement.charge_id, movement.amount)
            self._refunded[movement.charge_id] = self._refunded.get(movement.charge_id, 0) + movement.amount
        self._insert(movement)
        self._keys[movement.idempotency_key] = KeyRecord(fingerprint, movement.id, response)

    def _insert(self, movement: Movement) -> None:
        # The log is the witness of every audit: an id must never silently replace an earlier movement.
        if movement.id in self._movements:
            raise RuntimeError(f"movement id {movement.id} is already in the log")
        self._movements[movement.id] = movement

    def commit_orphan(self, movement: Movement, fingerprint: str, response: StoredResponse) -> None:
        """Record an injected movement without the refund check: orphans need not add up."""
        if movement.kind == "refund" and movement.status == "succeeded" and movement.charge_id is not None:
            self._refunded[movement.charge_id] = self._refunded.get(movement.charge_id, 0) + movement.amount
        self._insert(movement)
        self._keys[movement.idempotency_key] = KeyRecord(fingerprint, movement.id, response)

    def by_key(self, key: str) -> Movement | None:
        record = self._keys.get(key)
        return None if record is None else self._movements.get(record.movement_id)

    def has_key(self, key: str) -> bool:
        return key in self._keys or key in self._locks

    def movements(self, since: datetime | None = None, until: datetime | None = None) -> list[Movement]:
        """Movements in commit order, ``since <= created_at < until`` when given."""
        return [
            m
            for m in self._movements.values()
            if (since is None or m.created_at >= since) and (until is None or m.created_at < until)
        ]

    def clear(self) -> None:
        """Forget everything except claims of requests still in flight (they release their own locks)."""
        self._movements.clear()
        self._keys.clear()
        self._refunded.clear()
