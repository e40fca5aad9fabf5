"""One chaos run: plan, start, load under faults, heal, converge, judge."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from payments.audit.checks import PspMovement, audit
from payments.audit.main import fetch_psp_movements, read_evidence
from payments.audit.reader import read_topic
from payments.chaos.client import Workload, open_accounts, read_accounts
from payments.chaos.inject import Injected, Injector
from payments.chaos.judge import CHECKS, Finding, expected_op_id, from_audit, judge
from payments.chaos.model import Attempt, FaultKind, Plan, Read, Told
from payments.chaos.plan import MEMBERS
from payments.chaos.settings import ChaosSettings
from payments.chaos.stack import Infra, RunStack
from payments.chaos.tail import ResultsTail
from payments.schemas.state import Operation

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    seed: int
    scenario: str
    plan_fingerprint: str
    duration_s: float
    ops_planned: int = 0
    attempts: int = 0
    told: dict[str, int] = field(default_factory=dict)  # attempts by what they were told
    ops_acknowledged: int = 0
    ops_unknown_to_client: int = 0  # never got a definitive answer
    operations_in_topics: int = 0
    faults: list[str] = field(default_factory=list)
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    healed: list[str] = field(default_factory=list)
    supervisor_restarts: list[str] = field(default_factory=list)  # services that exited on their own
    convergence_s: float | None = None  # heal -> every operation terminal; None: never within the bound
    reads: int = 0
    results: int = 0
    ledger_transactions: int = 0
    psp_movements: int = 0
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # the run itself could not be carried out (not a verdict on the system)
    wall_s: float = 0.0

    @property
    def violations(self) -> int:
        return len(self.findings)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.findings

    def render(self) -> str:
        lines = [
            f"seed {self.seed} · scenario {self.scenario} · {self.duration_s:g}s load · plan {self.plan_fingerprint}",
            f"  ops planned {self.ops_planned}, attempts {self.attempts} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.told.items()))})",
            f"  acknowledged {self.ops_acknowledged}, unknown to the client {self.ops_unknown_to_client}, "
            f"operations in the topics {self.operations_in_topics}",
            f"  faults injected {sum(self.faults_by_kind.values())}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.faults_by_kind.items())),
        ]
        lines += [f"    {f}" for f in self.faults]
        conv = "never (bound reached)" if self.convergence_s is None else f"{self.convergence_s:.1f}s"
        lines.append(f"  healed: {', '.join(self.healed) or 'nothing left'}; converged in {conv}")
        if self.supervisor_restarts:
            lines.append(f"  restarted by the supervisor: {'; '.join(self.supervisor_restarts)}")
        lines.append(
            f"  evidence: {self.results} results, {self.ledger_transactions} ledger transactions, "
            f"{self.psp_movements} PSP movements, {self.reads} account reads"
        )
        by_check: dict[str, list[Finding]] = {}
        for f in self.findings:
            by_check.setdefault(f.check, []).append(f)
        for check in CHECKS:
            found = by_check.get(check, [])
            lines.append(f"  {check:<22} {'PASS' if not found else f'FAIL ({len(found)})'}")
            lines += [f"      {f.subject}: {f.detail}" for f in found[:5]]
        if self.error:
            lines.append(f"  RUN ERROR: {self.error}")
        lines.append(
            f"  => {'PASS' if self.passed else 'FAIL'} ({self.violations} violations, {self.wall_s:.0f}s wall)"
        )
        return "\n".join(lines)


def _fault_lines(done: list[Injected]) -> tuple[list[str], dict[str, int]]:
    lines, kinds = [], Counter[str]()
    for d in sorted(done, key=lambda d: d.fault.at_s):
        if d.started_s is None:
            lines.append(f"{d.fault.describe()} -- {d.note}")
            continue
        kinds[d.fault.kind.value] += 1
        lines.append(d.fault.describe() + (f" -- {d.note}" if d.note else ""))
    return lines, dict(kinds)


@dataclass(frozen=True)
class Loaded:
    account_ids: list[str]
    attempts: list[Attempt]
    reads: list[Read]
    healed_at: float  # time.monotonic() when every fault had been healed


async def _load(plan: Plan, stack: RunStack, settings: ChaosSettings, report: RunReport) -> Loaded:
    account_ids = await open_accounts(stack.gateway_url, stack.keys["admin"], plan.accounts)
    t0 = time.monotonic()

    def now() -> float:
        return time.monotonic() - t0

    injector = Injector(stack, t0)
    workload = Workload(
        stack.gateway_url, stack.keys, account_ids, t0=t0,
        attempt_timeout_s=settings.client_timeout_s,
        retry_until_s=plan.duration_s + settings.retry_window_s, seed=plan.seed,
    )  # fmt: skip
    stop_reads = asyncio.Event()
    readers = asyncio.create_task(
        read_accounts(
            stack.gateway_url, stack.keys["admin"], account_ids, settings.read_every_s, stop_reads, now
        )
    )
    faults = asyncio.create_task(injector.run(plan.faults))
    clients = asyncio.create_task(workload.run(plan.ops))
    supervisor = asyncio.create_task(_supervise(stack, now))
    # Every fault ends itself (holds are bounded); waiting for them keeps heal() from racing a lever
    # that is still bringing the broker back.
    await faults
    await asyncio.sleep(max(0.0, plan.duration_s - now()))
    # Whatever is still broken (a lever that failed) is healed now: retries and convergence need it.
    report.healed = await asyncio.to_thread(stack.heal)
    await asyncio.to_thread(stack.wait_ready)
    healed_at = time.monotonic()
    await clients
    supervisor.cancel()
    await workload.close()
    stop_reads.set()
    reads = await readers
    report.faults, report.faults_by_kind = _fault_lines(injector.done)
    return Loaded(account_ids, workload.attempts, reads, healed_at)


async def _supervise(stack: RunStack, now: Callable[[], float]) -> None:
    while True:
        await asyncio.sleep(0.5)
        stack.supervise(now())


def run_one(infra: Infra, plan: Plan, settings: ChaosSettings, run_dir: Path) -> RunReport:
    started = time.monotonic()
    report = RunReport(
        plan.seed, plan.scenario, plan.fingerprint(), plan.duration_s, ops_planned=len(plan.ops)
    )
    stack = RunStack(infra, run_dir, settings, plan.seed)
    try:
        stack.start(MEMBERS)
        tail = ResultsTail(stack.kafka)
        tail.start()
        try:
            loaded = asyncio.run(_load(plan, stack, settings, report))
            account_ids, attempts, reads = loaded.account_ids, loaded.attempts, loaded.reads
            acked = {
                expected_op_id(op, account_ids)
                for op in plan.ops
                if any(
                    a.op_index == op.index
                    and not a.conflict_probe
                    and a.told in (Told.ACCEPTED, Told.SUCCEEDED, Told.DECLINED)
                    for a in attempts
                )
            }
            report.convergence_s = _converge(stack, tail, acked, settings, since=loaded.healed_at)
        finally:
            tail.stop()
        ev = read_evidence(stack.kafka)
        movements = fetch_psp_movements(stack.psp_url)
        audited = audit(ev.results, ev.ledger, ev.state, psp_movements=movements, require_terminal=True)
        ops = ev.operations()
        losses = sum(
            report.faults_by_kind.get(k.value, 0) for k in (FaultKind.REDIS_RESTART, FaultKind.REDIS_FLUSHALL)
        )
        report.findings = from_audit(audited.violations) + judge(
            plan, account_ids, attempts, reads, ops, movements, redis_losses=losses
        )
        if report.findings:
            subjects = {f.subject for f in report.findings}
            commands = [
                raw.decode()
                for _, raw in read_topic(stack.kafka, stack.kafka.topics.commands)
                if raw and any(s.encode() in raw for s in subjects)
            ]
            _dump(run_dir / "logs" / "evidence.json", movements, ops, attempts, commands)
        report.attempts = len(attempts)
        report.told = dict(Counter(a.told.value for a in attempts))
        report.ops_acknowledged = len(acked)
        definitive = {
            a.op_index
            for a in attempts
            if a.told in (Told.ACCEPTED, Told.SUCCEEDED, Told.DECLINED, Told.REJECTED)
        }
        report.ops_unknown_to_client = len(plan.ops) - len(definitive)
        report.operations_in_topics = len(ops)
        report.reads = len(reads)
        report.results, report.ledger_transactions = len(ev.results), len(ev.ledger)
        report.psp_movements = len(movements)
    except Exception as exc:
        log.exception("run %s/%s failed", plan.scenario, plan.seed)
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        report.supervisor_restarts = list(stack.restarts)
        stack.stop()
        stack.delete_topics()
        report.wall_s = time.monotonic() - started
    return report


def _converge(
    stack: RunStack, tail: ResultsTail, acked: set[str], settings: ChaosSettings, *, since: float
) -> float | None:
    """Seconds from the heal until every operation is terminal and every acknowledged one exists; None
    if that takes longer than the deadline (TTL + grace) plus slack (invariant 9 then lists them)."""
    bound = (settings.operation_ttl_ms + settings.expire_grace_ms) / 1000 + settings.converge_slack_s
    while time.monotonic() - since < bound:
        pending, missing = tail.open_ops(acked)
        if pending == 0 and missing == 0:
            return time.monotonic() - since
        time.sleep(0.5)
        stack.supervise(time.monotonic() - since)
    return None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _dump(
    path: Path,
    movements: list[PspMovement],
    ops: dict[str, Operation],
    attempts: list[Attempt],
    commands: list[str],
) -> None:
    """What a failed run's verdict rests on, next to its logs, for whoever debugs it."""
    doc = {
        "psp_movements": [m.model_dump(mode="json") for m in movements],
        "operations": {k: v.model_dump(mode="json") for k, v in ops.items()},
        "attempts": [asdict(a) | {"body": a.body.decode(errors="replace")} for a in attempts],
        "commands_of_findings": [json.loads(c) for c in commands],
    }
    path.write_text(json.dumps(doc, indent=1))
