"""One capacity point from its samples (the client's own view of completion) and its CPU rows. Pure."""

from __future__ import annotations

import math

import pytest

from bench.capacity import LOADGEN, PointResult, SweepResult
from bench.capacity_report import capacity_label, capacity_rows, fmt_spread, process_rows
from bench.config import Mode
from bench.loadgen import DROPPED, NO_ANSWER, LoadResult, Sample
from bench.points import completed_in_run, ms_per_payment, point_stats
from bench.sweep import PointStats, Run, Spread, SweepSpec, capacity, judge, next_run


def _run(samples: list[Sample], aborted: bool = False) -> LoadResult:
    # 10/s for 10 s, the first second a warm-up.
    return LoadResult(Mode.OPEN, t0=100.0, t_end=110.0, samples=samples, aborted=aborted)


def _steady(latency: float = 0.1, status: int = 201) -> list[Sample]:
    return [Sample(100.0 + i / 10, 100.0 + i / 10 + latency, status, f"p{i}") for i in range(100)]


def test_only_requests_due_after_the_warm_up_count() -> None:
    stats = point_stats(_run(_steady()), offered_per_s=10, warmup_s=1.0)
    assert stats.due == 90
    assert stats.completed == 90
    assert stats.completed_per_s == pytest.approx(10.0)
    assert stats.p99_s == pytest.approx(0.1)
    assert stats.growth_s == pytest.approx(0.0)


def test_a_202_is_not_a_completion() -> None:
    # Ours answered 202: the payment was not final when Prefer: wait ran out.
    samples = _steady()
    samples[50] = Sample(samples[50].due, samples[50].due + 2.0, 202, "p50")
    stats = point_stats(_run(samples), offered_per_s=10, warmup_s=1.0)
    assert stats.completed == 89
    assert math.isinf(stats.p99_s)


def test_a_402_decline_is_a_final_answer() -> None:
    stats = point_stats(_run(_steady(status=402)), offered_per_s=10, warmup_s=1.0)
    assert stats.completed == 90


def test_errors_no_answers_and_drops_are_unfinished() -> None:
    samples = _steady()
    samples[20] = Sample(samples[20].due, math.nan, NO_ANSWER, None)
    samples[30] = Sample(samples[30].due, samples[30].due + 0.01, 503, None)
    samples[40] = Sample(samples[40].due, math.nan, DROPPED, None)
    stats = point_stats(_run(samples), offered_per_s=10, warmup_s=1.0)
    assert stats.completed == 87
    assert stats.dropped == 1


def test_an_aborted_run_counts_the_requests_it_never_sent() -> None:
    sent = _steady()[:40]  # stopped at 104 s: requests due from 104 s to 110 s never went out
    stats = point_stats(_run(sent, aborted=True), offered_per_s=10, warmup_s=1.0)
    assert stats.due == 90
    assert stats.completed == 30
    assert stats.aborted


def test_latency_rising_across_the_window_is_growth() -> None:
    samples = [Sample(100.0 + i / 10, 100.0 + i / 10 + 0.01 * i, 201, f"p{i}") for i in range(100)]
    stats = point_stats(_run(samples), offered_per_s=10, warmup_s=1.0)
    assert stats.growth_s > 0.5


def test_cpu_per_payment_per_process_counts_the_whole_run() -> None:
    run = _run(_steady())
    assert completed_in_run(run) == 100  # warm-up included, like the CPU it divides
    per = ms_per_payment({"gateway": 0.2, "kafka": 0.1}, completed_in_run(run))
    assert per == pytest.approx({"gateway": 2.0, "kafka": 1.0})
    assert math.isnan(ms_per_payment({"app": 1.0}, 0)["app"])


def test_spread_cells_show_median_and_range() -> None:
    fmt = "{:.1f}".format
    assert fmt_spread(Spread(2.0, 1.0, 3.0, 3), fmt) == "2.0 (1.0-3.0)"
    assert fmt_spread(Spread(2.0, 2.0, 2.0, 3), fmt) == "2.0"
    assert fmt_spread(Spread(math.nan, math.nan, math.nan, 0), fmt) == "-"


def _sweep(system: str, sustained_up_to: int, cpu: dict[str, float]) -> SweepResult:
    spec = SweepSpec(start_per_s=100, factor=2, steps=4, p99_bound_s=1.0)
    points: list[PointResult] = []
    history: list[Run] = []
    while (chosen := next_run(spec, history)) is not None:
        step, phase = chosen
        ok = step <= sustained_up_to
        stats = PointStats(
            spec.rate(step), 100, 100 if ok else 50, 100.0, 0.1, 0.5 if ok else math.inf, 0.0, 0
        )
        points.append(PointResult(step, phase, stats, judge(stats, spec), dict(cpu), 100, 2.5, 0.3))
        history.append(Run(step, phase, ok))
    return SweepResult("a-hot", "(a)", system, tuple(points), capacity(spec, history), 30.0)


def test_capacity_rows_give_ours_relative_to_each_baseline() -> None:
    ours = _sweep("ours", 2, {"gateway": 0.2, "kafka": 0.3, LOADGEN: 0.05})
    locked = _sweep("baseline-locked", 1, {"app": 0.2, "postgres": 0.1, LOADGEN: 0.05})
    rows = capacity_rows([ours, locked], ladder_start=100)
    assert rows[0][:4] == ["a-hot", "ours", "400", "1.00x"]
    assert rows[1][:4] == ["a-hot", "baseline-locked", "200", "2.00x"]
    assert rows[0][6] == "5.00"  # system CPU ms per payment: 0.5 s over 100 payments, load generator apart
    assert rows[1][8].startswith("400/s: 0 of 3 held")


def test_process_rows_have_every_process_of_either_system_and_the_total() -> None:
    ours = _sweep("ours", 2, {"gateway": 0.2, "kafka": 0.3, LOADGEN: 0.05})
    locked = _sweep("baseline-locked", 1, {"app": 0.2, "postgres": 0.1, LOADGEN: 0.05})
    headers, rows = process_rows([ours, locked])
    assert headers == ["process", "ours", "baseline-locked"]
    table = {r[0]: r[1:] for r in rows}
    assert table[LOADGEN] == ["0.50", "0.50"]
    assert table["gateway"] == ["2.00", "-"]
    assert table["postgres"] == ["-", "1.00"]
    assert list(table)[-1].startswith("system total")
    assert table[list(table)[-1]] == ["5.00", "3.00"]


def test_no_sustained_step_reads_below_the_ladder() -> None:
    sweep = _sweep("ours", -1, {"gateway": 0.1})
    assert capacity_label(sweep, 100) == "< 100"
