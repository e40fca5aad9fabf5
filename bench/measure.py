"""From a run's samples (and, for our system, the tracker's completion times) to its numbers. Pure.

* accepted: answered with 2xx or 402 (a final decline is an answer too). For our system that is the
  202 of durable intake; for the synchronous baseline it is the final answer itself.
* completed: the payment reached a terminal state. Ours: its terminal result on ``payments.results``
  (tracker); the baseline: its 201/402 answer.
* latencies count from when a request was due (open loop) or sent (closed loop); every request that
  was sent but never answered/completed counts as infinitely slow.
* throughputs are events per second inside ``[t0 + warmup, t_end)`` of the load window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.config import Load, Scenario, System
from bench.loadgen import DROPPED, NO_ANSWER, LoadResult
from bench.stats import LatencySummary, cdf_points, rate_in_window, summarize

FINAL_STATUSES = frozenset({201, 402})


def is_accepted(status: int) -> bool:
    return 200 <= status < 300 or status == 402


@dataclass(frozen=True)
class RunResult:
    scenario: str
    title: str
    system: str
    load: Load
    psp_latency_ms: int
    sent: int
    accepted: int
    completed: int
    statuses: dict[str, int]  # HTTP status (or "no_answer", "dropped") -> count
    accepted_per_s: float
    completed_per_s: float
    accept: LatencySummary
    completion: LatencySummary
    decision: LatencySummary | None  # ours: until the processor placed the hold
    accept_cdf: list[tuple[float, float]] = field(repr=False)
    completion_cdf: list[tuple[float, float]] = field(repr=False)
    drained: bool = True
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each part of the system
    loadgen_cpu_s: float = 0.0  # the load generator's own, on the same 2 cores

    @property
    def cpu_ms_per_payment(self) -> float:
        """CPU milliseconds the whole system spent per completed payment (NaN if none completed)."""
        return 1000 * sum(self.cpu_s.values()) / self.completed if self.completed else math.nan

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "system": self.system,
            "mode": self.load.mode.value,
            "duration_s": self.load.duration_s,
            "concurrency": self.load.concurrency,
            "rate_per_s": self.load.rate_per_s,
            "warmup_s": self.load.warmup_s,
            "psp_latency_ms": self.psp_latency_ms,
            "sent": self.sent,
            "accepted": self.accepted,
            "completed": self.completed,
            "statuses": self.statuses,
            "accepted_per_s": self.accepted_per_s,
            "completed_per_s": self.completed_per_s,
            "accept_latency_s": self.accept.as_json(),
            "completion_latency_s": self.completion.as_json(),
            "decision_latency_s": self.decision.as_json() if self.decision else None,
            "accept_cdf": self.accept_cdf,
            "completion_cdf": self.completion_cdf,
            "drained": self.drained,
            "cpu_s": self.cpu_s,
            "cpu_ms_per_payment": None
            if math.isnan(self.cpu_ms_per_payment)
            else round(self.cpu_ms_per_payment, 3),
            "loadgen_cpu_s": self.loadgen_cpu_s,
        }


def status_label(status: int) -> str:
    return {NO_ANSWER: "no_answer", DROPPED: "dropped"}.get(status, str(status))


def measure(
    scenario: Scenario,
    system: System,
    run: LoadResult,
    *,
    terminal_at: Mapping[str, float] | None = None,
    decided_at: Mapping[str, float] | None = None,
    drained: bool = True,
    cpu_s: Mapping[str, float] | None = None,
    loadgen_cpu_s: float = 0.0,
) -> RunResult:
    """``terminal_at``/``decided_at``: op id -> monotonic time (our system); None = synchronous system."""
    samples = run.samples
    sent = sum(1 for s in samples if s.status != DROPPED)
    accepted = [s for s in samples if is_accepted(s.status)]
    accept_lat = [s.answered - s.due for s in accepted]
    completions: list[tuple[float, float]] = []  # (due, completed at)
    decisions: list[float] = []
    for s in accepted:
        if terminal_at is None:
            if s.status in FINAL_STATUSES:
                completions.append((s.due, s.answered))
            continue
        if s.op_id is None:
            continue
        done = terminal_at.get(s.op_id)
        if done is not None:
            completions.append((s.due, done))
        if decided_at is not None and (d := decided_at.get(s.op_id)) is not None:
            decisions.append(d - s.due)
    completion_lat = [done - due for due, done in completions]
    start = run.t0 + scenario.load.warmup_s
    return RunResult(
        scenario=scenario.name,
        title=scenario.title,
        system=system.value,
        load=scenario.load,
        psp_latency_ms=scenario.psp_latency_ms,
        sent=sent,
        accepted=len(accepted),
        completed=len(completions),
        statuses=dict(sorted(Counter(status_label(s.status) for s in samples).items())),
        accepted_per_s=rate_in_window((s.answered for s in accepted), start, run.t_end),
        completed_per_s=rate_in_window((done for _, done in completions), start, run.t_end),
        accept=summarize(accept_lat, missing=len(samples) - len(accepted)),
        completion=summarize(completion_lat, missing=len(samples) - len(completions)),
        decision=summarize(decisions, missing=len(accepted) - len(decisions))
        if decided_at is not None
        else None,
        accept_cdf=cdf_points(accept_lat, total=len(samples)),
        completion_cdf=cdf_points(completion_lat, total=len(samples)),
        drained=drained,
        cpu_s=dict(cpu_s or {}),
        loadgen_cpu_s=loadgen_cpu_s,
    )


def fmt_ms(seconds: float) -> str:
    """Milliseconds for the table: '12.3', '1,234', or '∞' for unfinished."""
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "∞"
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"
