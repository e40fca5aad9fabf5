"""The seeded plan of one run: accounts, the client workload and the fault schedule. Pure.

Everything random is drawn from ``random.Random`` streams derived from (seed, scenario, duration) in a
fixed order, so a seed replays the same workload and the same faults at the same offsets. What real
processes then do with them (the interleavings) is not reproducible, which is why every run is judged
on its own evidence.
"""

from __future__ import annotations

import random

from payments.chaos.model import (
    TARGETS,
    AccountPlan,
    Behaviour,
    Fault,
    FaultKind,
    OpKind,
    Plan,
    PlannedOp,
    Scenario,
)

_PROCESS_FAULTS = {FaultKind.KILL: 3.0, FaultKind.PAUSE: 2.0}
_INFRA_FAULTS = {FaultKind.BROKER_RESTART: 1.0, FaultKind.REDIS_RESTART: 1.0, FaultKind.REDIS_FLUSHALL: 1.0}
_PSP_FAULTS = {FaultKind.PSP_FAULTS: 2.0, FaultKind.PSP_OUTAGE: 1.0}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("crash", {FaultKind.KILL: 1.0}, 4.0, "kill -9 of processors, psp-caller, reconciler, projector, gateway"),
        Scenario("pause", {FaultKind.PAUSE: 1.0}, 4.0, "SIGSTOP/SIGCONT of the same services"),
        Scenario("infra", _INFRA_FAULTS, 6.0, "broker restart, Redis restart, Redis FLUSHALL"),
        Scenario("psp", _PSP_FAULTS, 4.0, "PSP time-outs after commit, 5xx, outages, webhook dup/delay/reorder"),
        Scenario("mixed", _PROCESS_FAULTS | _INFRA_FAULTS | _PSP_FAULTS, 3.5, "all of the above"),
    )
}  # fmt: skip

MEMBERS = ("ann", "ben", "cat", "dan", "eve", "fay")
HOT_FUNDING = 200_000
COLD_ACCOUNTS = 5
OPS_PER_S = 25.0

_BEHAVIOURS = {
    Behaviour.PLAIN: 0.55,
    Behaviour.WAIT: 0.15,
    Behaviour.STORM: 0.1,
    Behaviour.CONFLICT: 0.1,
    Behaviour.GIVE_UP: 0.1,
}
_TOKENS = ("tok_ok",) * 7 + ("tok_declined", "tok_insufficient_funds", "tok_expired_card")


def make_plan(seed: int, scenario: str, duration_s: float) -> Plan:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    base = f"{seed}:{scenario}:{duration_s:g}"
    accounts = plan_accounts(random.Random(f"{base}:accounts"))
    ops = plan_ops(random.Random(f"{base}:ops"), accounts, duration_s)
    faults = plan_faults(random.Random(f"{base}:faults"), SCENARIOS[scenario], duration_s)
    return Plan(seed, scenario, duration_s, accounts, ops, faults)


def plan_accounts(rng: random.Random) -> tuple[AccountPlan, ...]:
    # One hot account shared by every member, funded so that the load drives it into declines (the
    # overdraft floor is where double spends would show), and cold ones of two or three members.
    hot = AccountPlan(MEMBERS, HOT_FUNDING, overdraft=rng.choice((0, 0, 5_000)), hot=True)
    cold = [
        AccountPlan(
            tuple(rng.sample(MEMBERS, rng.randint(2, 3))),
            funding=rng.randint(20_000, 80_000),
            overdraft=rng.choice((0, 0, 0, 2_000)),
            hot=False,
        )
        for _ in range(COLD_ACCOUNTS)
    ]
    return (hot, *cold)


def plan_ops(
    rng: random.Random, accounts: tuple[AccountPlan, ...], duration_s: float
) -> tuple[PlannedOp, ...]:
    ops: list[PlannedOp] = []
    t = 0.0
    behaviours, weights = list(_BEHAVIOURS), list(_BEHAVIOURS.values())
    while True:
        t += rng.expovariate(OPS_PER_S)
        if t >= duration_s:
            break
        account = 0 if rng.random() < 0.6 else rng.randrange(1, len(accounts))
        member = rng.choice(accounts[account].members)
        top_up = rng.random() < 0.2
        behaviour = rng.choices(behaviours, weights)[0]
        ops.append(
            PlannedOp(
                at_s=round(t, 3),
                index=len(ops),
                kind=OpKind.TOP_UP if top_up else OpKind.PAYMENT,
                account=account,
                member=member,
                amount=rng.randint(500, 8_000) if top_up else rng.randint(100, 4_000),
                key=f"chaos-{rng.getrandbits(64):016x}",
                behaviour=behaviour,
                payee=f"merchant-{rng.randrange(20)}",
                token=rng.choice(_TOKENS),
                storm=rng.randint(3, 8) if behaviour is Behaviour.STORM else 1,
            )
        )
    return tuple(ops)


def plan_faults(rng: random.Random, scenario: Scenario, duration_s: float) -> tuple[Fault, ...]:
    """Faults start at random gaps inside the first 80 % of the run, so the last one has healed (or is
    healed by force) before the clients' final retries."""
    kinds, weights = list(scenario.faults), list(scenario.faults.values())
    faults: list[Fault] = []
    t = rng.uniform(0.5, 2.0)
    while t < 0.8 * duration_s:
        faults.append(_fault(rng, rng.choices(kinds, weights)[0], round(t, 2)))
        t += rng.expovariate(1.0 / scenario.fault_every_s)
    return tuple(faults)


def _fault(rng: random.Random, kind: FaultKind, at_s: float) -> Fault:
    if kind in (FaultKind.KILL, FaultKind.PAUSE):
        hold = rng.uniform(0.2, 3.0) if kind is FaultKind.KILL else rng.uniform(0.5, 9.0)
        return Fault(at_s, kind, target=rng.choice(TARGETS), hold_s=round(hold, 2))
    if kind is FaultKind.BROKER_RESTART:
        return Fault(at_s, kind, hold_s=round(rng.uniform(0.5, 4.0), 2), hard=rng.random() < 0.5)
    if kind is FaultKind.REDIS_RESTART:
        return Fault(at_s, kind, hold_s=round(rng.uniform(0.2, 2.0), 2))
    if kind is FaultKind.REDIS_FLUSHALL:
        return Fault(at_s, kind)
    if kind is FaultKind.PSP_OUTAGE:
        return Fault(at_s, kind, hold_s=round(rng.uniform(1.0, 6.0), 2))
    rates = {
        "timeout_after_commit": rng.choice((0.0, 0.05, 0.15)),
        "error_before_commit": rng.choice((0.0, 0.05)),
        "error_after_commit": rng.choice((0.0, 0.05, 0.1)),
        "ambiguous_error": rng.choice((0.0, 0.05)),
        "rate_limit": rng.choice((0.0, 0.05)),
        "webhook_duplicate": rng.choice((0.0, 0.3)),
        "webhook_reorder": rng.choice((0.0, 0.3)),
        "webhook_delay_ms": rng.choice((0.0, 500.0, 2_000.0)),
    }
    return Fault(at_s, FaultKind.PSP_FAULTS, hold_s=round(rng.uniform(2.0, 8.0), 2), psp=rates)
