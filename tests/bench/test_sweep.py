"""The capacity sweep's decisions: ladder, verdict of a point, next run, capacity, spread. Pure."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bench.sweep import (
    Capacity,
    Phase,
    PointStats,
    Run,
    SweepSpec,
    bound_broken,
    boundary,
    capacity,
    growth,
    idle,
    judge,
    next_run,
    spread,
)

SPEC = SweepSpec(start_per_s=100, factor=1.5, steps=6, p99_bound_s=1.0, repeats=3, max_points=20)
C, K = Phase.COARSE, Phase.CONFIRM


def _point(**changes: float | int | bool) -> PointStats:
    base: dict[str, float | int | bool] = dict(
        offered_per_s=100.0, due=300, completed=300, completed_per_s=100.0, p50_s=0.05, p99_s=0.2,
        growth_s=0.0, dropped=0, aborted=False,
    )  # fmt: skip
    base.update(changes)
    return PointStats(**base)  # type: ignore[arg-type]


def _drive(spec: SweepSpec, holds: Callable[[int, int], bool]) -> list[Run]:
    """Run the sweep to its end against a fake system: ``holds(step, nth run of that step)``."""
    history: list[Run] = []
    seen: dict[int, int] = {}
    while (chosen := next_run(spec, history)) is not None:
        step, phase = chosen
        n = seen.get(step, 0)
        seen[step] = n + 1
        history.append(Run(step, phase, holds(step, n)))
        assert len(history) <= spec.max_points
    return history


# -- ladder ----------------------------------------------------------------------------------------------


def test_the_ladder_is_geometric_rounded_to_two_significant_digits() -> None:
    assert [SPEC.rate(i) for i in range(6)] == [100, 150, 220, 340, 510, 760]


def test_a_step_outside_the_ladder_is_an_error() -> None:
    with pytest.raises(IndexError):
        SPEC.rate(6)


@pytest.mark.parametrize(
    "kwargs", [dict(factor=1.0), dict(start_per_s=0), dict(steps=0), dict(p99_bound_s=0), dict(repeats=0)]
)
def test_nonsense_specs_are_refused(kwargs: dict[str, float]) -> None:
    args: dict[str, float] = dict(start_per_s=100, factor=1.5, steps=6, p99_bound_s=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match="must be"):
        SweepSpec(**args)  # type: ignore[arg-type]


# -- verdict ---------------------------------------------------------------------------------------------


def test_a_point_within_every_bound_is_sustained() -> None:
    assert judge(_point(), SPEC).sustained


def test_p99_above_the_bound_is_not_sustained() -> None:
    verdict = judge(_point(p99_s=1.2), SPEC)
    assert not verdict.sustained
    assert "p99" in verdict.reason


def test_an_unfinished_request_in_the_tail_is_not_sustained() -> None:
    assert not judge(_point(p99_s=math.inf), SPEC).sustained


def test_the_bound_itself_is_still_sustained() -> None:
    assert judge(_point(p99_s=1.0), SPEC).sustained


def test_completions_falling_behind_is_not_sustained() -> None:
    verdict = judge(_point(completed=280), SPEC)  # 93 % of those due, with a p99 that looks fine
    assert not verdict.sustained
    assert "completed 93%" in verdict.reason
    assert judge(_point(completed=285), SPEC).sustained  # 95 %


def test_a_growing_backlog_is_not_sustained_even_under_the_bound() -> None:
    verdict = judge(_point(growth_s=0.3), SPEC)  # bound 1 s: more than 0.25 s of growth
    assert not verdict.sustained
    assert verdict.reason == "backlog growing"
    assert judge(_point(growth_s=0.2), SPEC).sustained


def test_jitter_below_the_floor_is_not_growth_with_a_tight_bound() -> None:
    tight = SweepSpec(start_per_s=100, factor=1.5, steps=6, p99_bound_s=0.2)
    assert judge(_point(growth_s=0.09, p99_s=0.15), tight).sustained  # 0.25 x 0.2 s < 0.1 s floor


def test_dropped_or_aborted_points_are_not_sustained() -> None:
    assert not judge(_point(dropped=1), SPEC).sustained
    assert judge(_point(aborted=True), SPEC).reason.startswith("aborted")


def test_growth_compares_the_medians_of_the_first_and_last_quarter() -> None:
    assert growth([0.1] * 8 + [0.5] * 8) == pytest.approx(0.4)
    assert growth([0.5] * 8 + [0.1] * 8) == pytest.approx(-0.4)
    assert growth([0.1] * 7) == 0.0  # too few to tell
    assert growth([0.1] * 12 + [math.inf] * 4) == math.inf


def test_bound_broken_once_more_than_one_percent_are_late() -> None:
    assert not bound_broken(3, 300)  # p99 of 300 is the 297th: 3 late requests still fit
    assert bound_broken(4, 300)
    assert not bound_broken(0, 50)
    assert bound_broken(1, 50)  # fewer than 100: one late request is already the p99
    assert not bound_broken(5, 0)


# -- next run --------------------------------------------------------------------------------------------


def test_the_sweep_climbs_coarsely_until_a_step_fails() -> None:
    assert next_run(SPEC, []) == (0, C)
    assert next_run(SPEC, [Run(0, C, True)]) == (1, C)
    assert next_run(SPEC, [Run(0, C, True), Run(1, C, True)]) == (2, C)


def test_then_it_confirms_both_sides_of_the_boundary_interleaved() -> None:
    history = [Run(0, C, True), Run(1, C, True), Run(2, C, False)]
    order = []
    while (chosen := next_run(SPEC, history)) is not None:
        order.append(chosen)
        history.append(Run(chosen[0], chosen[1], chosen[0] == 1))
    assert order == [(1, K), (2, K), (1, K), (2, K), (1, K), (2, K)]


def test_a_clean_system_gives_the_step_below_the_first_failing_one() -> None:
    history = _drive(SPEC, lambda step, _: step <= 3)
    assert capacity(SPEC, history) == Capacity(step=3, rate_per_s=340, at_top=False, confirmed=True)
    # 5 coarse runs (0..4), then 3 confirm runs each at 3 and 4.
    assert len(history) == 5 + 6


def test_a_coarse_failure_overturned_by_its_confirm_runs_moves_the_boundary_up() -> None:
    # Step 2 fails its short coarse run (a hiccup) but holds every full run; step 3 never holds.
    history = _drive(SPEC, lambda step, n: step < 2 or (step == 2 and n > 0))
    found = capacity(SPEC, history)
    assert found.step == 2
    assert found.confirmed
    assert [r.step for r in history if r.phase is K].count(3) == 3


def test_a_coarse_success_overturned_by_its_confirm_runs_moves_the_boundary_down() -> None:
    # Step 2 held its coarse run by luck; its full runs fail.
    history = _drive(SPEC, lambda step, n: step < 2 or (step == 2 and n == 0))
    found = capacity(SPEC, history)
    assert found.step == 1
    assert found.confirmed
    assert boundary(history).failing == 2


def test_the_majority_of_the_confirm_runs_decides() -> None:
    history = _drive(SPEC, lambda step, n: step < 2 or (step == 2 and n in (0, 1, 3)))
    # Step 2: coarse held, confirm runs held / failed / held -> holds; step 3 fails.
    assert capacity(SPEC, history).step == 2


def test_nothing_sustained_gives_no_capacity() -> None:
    history = _drive(SPEC, lambda step, n: False)
    found = capacity(SPEC, history)
    assert found.step is None
    assert found.rate_per_s == 0
    assert found.confirmed  # step 0 failed all of its confirm runs
    assert [(r.step, r.phase) for r in history] == [(0, C), (0, K), (0, K), (0, K)]


def test_the_top_of_the_ladder_holding_is_reported_as_at_least() -> None:
    history = _drive(SPEC, lambda step, n: True)
    found = capacity(SPEC, history)
    assert found == Capacity(step=5, rate_per_s=760, at_top=True, confirmed=True)


def test_max_points_bounds_the_sweep_and_leaves_it_unconfirmed() -> None:
    small = SweepSpec(start_per_s=100, factor=1.5, steps=6, p99_bound_s=1.0, max_points=6)
    history = _drive(small, lambda step, _: step <= 3)
    assert len(history) == 6
    found = capacity(small, history)
    assert found.step == 3
    assert not found.confirmed


# -- spread, idle ----------------------------------------------------------------------------------------


def test_spread_gives_median_and_range() -> None:
    s = spread([3.0, 1.0, 2.0])
    assert (s.median, s.low, s.high, s.n) == (2.0, 1.0, 3.0, 3)


def test_spread_keeps_infinity_and_leaves_out_nan() -> None:
    s = spread([0.5, math.inf, math.nan, 0.7])
    assert (s.median, s.low, s.high, s.n) == (0.7, 0.5, math.inf, 3)
    assert s.as_json()["high"] is None


def test_spread_of_nothing_is_nan() -> None:
    assert spread([]).n == 0
    assert math.isnan(spread([math.nan]).median)


def test_idle_is_cpu_per_second_below_the_threshold() -> None:
    assert idle(0.02, 0.25, 0.15)
    assert not idle(0.05, 0.25, 0.15)
    assert not idle(0.0, 0.0, 0.15)
