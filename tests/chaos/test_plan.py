"""The seeded plan: reproducible, scenario-true, and the CI campaign's seeds cover every fault kind."""

from __future__ import annotations

import pytest

from payments.chaos.main import scenario_for
from payments.chaos.model import Behaviour, FaultKind
from payments.chaos.plan import SCENARIOS, make_plan

# What tests/e2e/test_chaos_campaign.py runs: one seed per scenario covering every fault kind, and the
# seeds whose runs found a bug (listed in that test's docstring).
CI_SEEDS = (1, 2, 3, 9, 10, 11)
CI_DURATION_S = 15.0


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_seed_same_plan_and_another_seed_another(scenario: str) -> None:
    a, b = make_plan(7, scenario, 20), make_plan(7, scenario, 20)
    assert a == b
    assert a.fingerprint() == b.fingerprint()
    assert make_plan(8, scenario, 20).fingerprint() != a.fingerprint()
    assert make_plan(7, scenario, 30).fingerprint() != a.fingerprint()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_faults_are_the_scenarios_and_start_early_enough_to_heal(scenario: str) -> None:
    for seed in range(30):
        plan = make_plan(seed, scenario, 20)
        assert plan.faults, "every run injects at least one fault"
        assert {f.kind for f in plan.faults} <= set(SCENARIOS[scenario].faults)
        assert all(0 < f.at_s < 0.8 * 20 for f in plan.faults)
        assert all(f.target is not None for f in plan.faults if f.kind in (FaultKind.KILL, FaultKind.PAUSE))


def test_workload_mixes_hot_and_cold_accounts_payments_top_ups_and_every_behaviour() -> None:
    plan = make_plan(3, "mixed", 20)
    assert len(plan.ops) > 300
    assert sum(op.account == 0 for op in plan.ops) > len(plan.ops) / 2  # the hot account
    assert len({op.account for op in plan.ops}) == len(plan.accounts)
    assert {op.kind.value for op in plan.ops} == {"payment", "top_up"}
    assert {op.behaviour for op in plan.ops} == set(Behaviour)
    assert len({op.key for op in plan.ops}) == len(plan.ops)  # one key per logical operation
    for op in plan.ops:
        assert op.member in plan.accounts[op.account].members
    assert len(plan.accounts[0].members) >= 4  # several members share the hot account


def test_the_ci_campaign_covers_every_scenario_and_fault_kind() -> None:
    plans = [make_plan(s, scenario_for(s, "all"), CI_DURATION_S) for s in CI_SEEDS]
    assert {p.scenario for p in plans} == set(SCENARIOS)
    assert {f.kind for p in plans for f in p.faults} == set(FaultKind)
