"""From samples to a run's numbers, for the asynchronous (ours) and the synchronous (baseline) kinds."""

from __future__ import annotations

import math

import pytest

from bench.config import Accounts, Load, Mode, Scenario, System
from bench.loadgen import DROPPED, NO_ANSWER, LoadResult, Sample
from bench.measure import fmt_ms, measure

SCENARIO = Scenario("x", "x", Accounts.HOT, 0, Load(Mode.OPEN, 10, rate_per_s=1, warmup_s=1), (System.OURS,))


def _run(samples: list[Sample]) -> LoadResult:
    return LoadResult(Mode.OPEN, t0=100.0, t_end=110.0, samples=samples)


def test_ours_completes_from_the_tracker_and_counts_latency_from_the_due_time() -> None:
    samples = [
        Sample(due=100.0 + i, answered=100.0 + i + 0.01, status=202, op_id=f"pay_{i}") for i in range(10)
    ]
    terminal = {f"pay_{i}": 100.0 + i + 0.5 for i in range(9)}  # pay_9 never finished
    decided = {f"pay_{i}": 100.0 + i + 0.1 for i in range(10)}
    r = measure(
        SCENARIO,
        System.OURS,
        _run(samples),
        terminal_at=terminal,
        decided_at=decided,
        drained=False,
        cpu_s={"gateway": 0.9},
    )
    assert r.sent == r.accepted == 10
    assert r.completed == 9
    assert r.accept.p50 == pytest.approx(0.01)
    assert r.completion.p50 == pytest.approx(0.5)
    assert math.isinf(r.completion.p99)  # one in ten unfinished
    assert r.completion.missing == 1
    assert r.decision is not None
    assert r.decision.p50 == pytest.approx(0.1)
    # window [101, 110): answers at 101.01 .. 109.01 -> 9 in 9 s
    assert r.accepted_per_s == pytest.approx(1.0)
    assert r.completed_per_s == pytest.approx(8 / 9)  # completions at 101.5 .. 108.5
    assert r.cpu_ms_per_payment == pytest.approx(100.0)
    assert r.as_json()["completion_latency_s"]["p99"] is None


def test_baseline_answers_are_its_completions_and_failures_are_counted() -> None:
    samples = [
        Sample(due=100.0, answered=100.2, status=201, op_id="pay_a"),
        Sample(due=101.0, answered=101.3, status=402, op_id="pay_b"),  # a final decline is an answer
        Sample(due=102.0, answered=102.1, status=503, op_id=None),
        Sample(due=103.0, answered=math.nan, status=NO_ANSWER, op_id=None),
        Sample(due=104.0, answered=math.nan, status=DROPPED, op_id=None),
    ]
    r = measure(SCENARIO, System.BASELINE_LOCKED, _run(samples))
    assert r.sent == 4  # dropped requests were never sent
    assert r.accepted == r.completed == 2
    assert r.statuses == {"201": 1, "402": 1, "503": 1, "dropped": 1, "no_answer": 1}
    assert r.completion.missing == 3
    assert math.isinf(r.completion.p50)  # 3 of 5 never got a final answer
    assert r.completion.mean == pytest.approx(0.25)  # the mean is over the finished ones only
    assert r.cpu_ms_per_payment == 0.0  # no CPU recorded
    assert r.decision is None


def test_fmt_ms() -> None:
    assert fmt_ms(0.0123) == "12.3"
    assert fmt_ms(1.5) == "1,500"
    assert fmt_ms(math.inf) == "∞"
    assert fmt_ms(math.nan) == "-"
