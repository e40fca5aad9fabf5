"""Carrying out the fault schedule against a :class:`RunStack`, on time, while the workload runs.

Blocking levers (a broker or redis-server start takes seconds) run in threads so the clients and the
schedule keep going. A fault whose target is already down, paused or otherwise faulted is skipped and
recorded as such: two faults on one thing at once would make the schedule's hold times meaningless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from payments.chaos.model import Fault, FaultKind
from payments.chaos.stack import RunStack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Injected:
    fault: Fault
    started_s: float | None  # None: skipped
    ended_s: float | None
    note: str = ""


class Injector:
    def __init__(self, stack: RunStack, t0: float) -> None:
        self._stack = stack
        self._t0 = t0
        self._busy: set[str] = set()  # services, "broker", "redis", "psp" with a fault in force
        self.done: list[Injected] = []

    def _now(self) -> float:
        return time.monotonic() - self._t0

    async def run(self, faults: tuple[Fault, ...]) -> None:
        tasks = []
        for fault in faults:
            await asyncio.sleep(max(0.0, fault.at_s - self._now()))
            tasks.append(asyncio.create_task(self._one(fault)))
        await asyncio.gather(*tasks)

    def _resource(self, fault: Fault) -> str:
        if fault.kind in (FaultKind.KILL, FaultKind.PAUSE):
            assert fault.target is not None
            return fault.target
        if fault.kind is FaultKind.BROKER_RESTART:
            return "broker"
        if fault.kind in (FaultKind.REDIS_RESTART, FaultKind.REDIS_FLUSHALL):
            return "redis"
        return "psp"

    async def _one(self, fault: Fault) -> None:
        resource = self._resource(fault)
        if resource in self._busy:
            self.done.append(Injected(fault, None, None, f"skipped: {resource} already faulted"))
            return
        self._busy.add(resource)
        started = self._now()
        note = ""
        try:
            note = await self._apply(fault)
        except Exception as exc:
            note = f"lever failed: {type(exc).__name__}: {exc}"
            log.warning("fault %s: %s", fault.describe(), note)
        finally:
            self._busy.discard(resource)
        self.done.append(Injected(fault, started, self._now(), note))

    async def _apply(self, fault: Fault) -> str:
        s = self._stack
        if fault.kind is FaultKind.KILL:
            assert fault.target is not None
            s.kill(fault.target)
            await asyncio.sleep(fault.hold_s)
            s.restart(fault.target)
        elif fault.kind is FaultKind.PAUSE:
            assert fault.target is not None
            s.pause(fault.target)
            await asyncio.sleep(fault.hold_s)
            s.resume(fault.target)
        elif fault.kind is FaultKind.BROKER_RESTART:
            await asyncio.to_thread(s.infra.broker.halt, hard=fault.hard)
            await asyncio.sleep(fault.hold_s)
            await asyncio.to_thread(s.infra.broker.start)
        elif fault.kind is FaultKind.REDIS_RESTART:
            await asyncio.to_thread(s.infra.redis.stop)
            await asyncio.sleep(fault.hold_s)
            await asyncio.to_thread(s.infra.redis.start)
            await asyncio.to_thread(s.provision_keys)
        elif fault.kind is FaultKind.REDIS_FLUSHALL:
            await asyncio.to_thread(s.flushall)
            await asyncio.to_thread(s.provision_keys)
        elif fault.kind is FaultKind.PSP_OUTAGE:
            await asyncio.to_thread(s.set_psp_faults, {"outage_seconds": fault.hold_s})
            await asyncio.sleep(fault.hold_s)
        else:
            await asyncio.to_thread(s.set_psp_faults, dict(fault.psp))
            await asyncio.sleep(fault.hold_s)
            await asyncio.to_thread(s.set_psp_faults, None)
        return ""
