"""What a benchmark run does: frozen specs built once in ``cli.main`` and passed down (no globals).

Two profiles: ``full`` (``make bench``, bounded to ~10 minutes on 2 cores) and ``quick``
(``make bench-quick``, ~2 minutes). Durations are seconds, rates per second, latencies milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from bench.sweep import SweepSpec
from payments.devstack.up import dev_partitions


class System(StrEnum):
    OURS = "ours"
    # FastAPI + PostgreSQL: SELECT ... FOR UPDATE on the account row, the PSP called inside that transaction.
    BASELINE_LOCKED = "baseline-locked"
    # Same, but the lock is held only to place a hold; the PSP is called between two short transactions.
    BASELINE_UNLOCKED = "baseline-unlocked"


class Accounts(StrEnum):
    HOT = "hot"
    UNIFORM = "uniform"
    ZIPF = "zipf"


class Mode(StrEnum):
    CLOSED = "closed"  # N workers, each sends its next request as soon as the previous one is answered
    OPEN = "open"  # requests due at a fixed rate whatever the answers do


@dataclass(frozen=True)
class Load:
    mode: Mode
    duration_s: float
    concurrency: int = 64  # closed loop: workers
    rate_per_s: float = 0.0  # open loop
    # Open loop: requests outstanding at once; past it a due request is counted as dropped, which bounds
    # the load generator's sockets and memory when a system falls behind.
    max_in_flight: int = 2000
    # Throughput is counted over [warmup, duration): the first second is connection set-up and JIT-less
    # Python warming its caches, not steady state.
    warmup_s: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str  # file-name safe, e.g. "d-psp-1500ms"
    title: str
    accounts: Accounts
    psp_latency_ms: int
    load: Load
    systems: tuple[System, ...]


@dataclass(frozen=True)
class ProcessorSpec:
    """Processor-only benchmark: commands through the exactly-once runtime vs raw confluent-kafka."""

    hot_payments: int
    uniform_accounts: int
    uniform_payments: int
    timeout_s: float = 90.0


@dataclass(frozen=True)
class GatewaySpec:
    """Gateway-only benchmark: accepted payments/s of our gateway vs a bare FastAPI POST endpoint."""

    duration_s: float
    concurrency: int = 64
    rounds: int = 1  # alternate the targets this many times (A B A B ...) to spread machine noise


@dataclass(frozen=True)
class CapacityScenario:
    name: str  # file-name safe, e.g. "a-hot"
    title: str
    accounts: Accounts


@dataclass(frozen=True)
class CapacitySpec:
    """Open-loop capacity sweep (``bench.capacity``; the decisions are ``bench.sweep``'s).

    Completion is seen by the client for every system: ours is asked ``Prefer: wait=N`` and answers
    201/402 once the payment is final (a 202 when N runs out: not completed); the baseline answers when
    final anyway. The client gives up after ``prefer_wait_s`` + 1 s on both."""

    sweep: SweepSpec
    scenarios: tuple[CapacityScenario, ...]
    systems: tuple[System, ...]
    # Each point is an open-loop run of this many seconds, its first warm-up seconds not measured (the
    # queues settle at the new rate): short in the coarse phase, full length in the confirm phase.
    coarse_s: float
    coarse_warmup_s: float
    confirm_s: float
    confirm_warmup_s: float
    prefer_wait_s: int  # >= the p99 bound, so that a completion just past the bound is still seen
    budget_s: float  # per sweep (scenario x system): no new point starts past it
    warmup_s: float  # per system, once, unrecorded, before its first sweep (the broker's JIT)
    warmup_per_s: float
    # After a point, until the system's processes spend less than idle_cores of CPU (its backlog is
    # done), at most settle_max_s: a failed point's leftovers must not load the next one.
    idle_cores: float = 0.15  # both systems idle at < 0.1 core (measured)
    settle_max_s: float = 10.0
    max_in_flight: int = 3000  # requests outstanding at once (past it: dropped, the point fails)


@dataclass(frozen=True)
class Profile:
    name: str
    accounts: int  # accounts of the uniform and Zipf scenarios
    hot_users: int  # members of the hot account, each with an API key
    zipf_s: float
    partitions: int
    scenarios: tuple[Scenario, ...]
    processor: ProcessorSpec
    gateway: GatewaySpec
    capacity: CapacitySpec
    # (a)-(c) in the closed loop of 64 workers (section "closed", not run by default: it measures
    # latency more than capacity, see bench/README.md).
    closed: tuple[Scenario, ...] = ()
    # How long to wait after a run for every accepted payment to reach a terminal state, on top of the
    # PSP latency; what has not completed by then counts as unfinished (infinite latency).
    drain_s: float = 10.0
    # Per HTTP request, answer included: a synchronous baseline request queued behind a row lock for
    # longer than this is reported as unanswered rather than waited for.
    request_timeout_s: float = 20.0
    # After the drain, how long to wait (uncounted) for leftovers so that they do not load the next run.
    settle_s: float = 60.0
    seed: int = 7
    warmup_s: float = 5.0  # unrecorded load per system before the scenarios (see ScenarioRunner.warm_up)
    users: int = 100  # members of the uniform/Zipf accounts (two per account)
    psp_in_flight: int = 1000  # psp-caller's calls in flight
    baseline_pool: int = 32  # asyncpg pool size of the baseline app
    # The baseline's bound on waiting for the row lock or a pooled connection (503 past it).
    baseline_lock_timeout_ms: int = 10_000
    sections: frozenset[str] = field(
        default_factory=lambda: frozenset({"capacity", "scenarios", "processor", "gateway"})
    )

    def only(self, sections: frozenset[str]) -> Profile:
        return replace(self, sections=sections)


ALL_SYSTEMS = (System.OURS, System.BASELINE_LOCKED, System.BASELINE_UNLOCKED)
PSP_LATENCIES_MS = (0, 500, 1500, 3000)


def _closed(seconds: float) -> tuple[Scenario, ...]:
    closed = Load(Mode.CLOSED, seconds)
    return (
        Scenario("a-hot", "(a) one hot account, many users", Accounts.HOT, 0, closed, ALL_SYSTEMS),
        Scenario("b-uniform", "(b) many accounts, uniform", Accounts.UNIFORM, 0, closed, ALL_SYSTEMS),
        Scenario("c-zipf", "(c) many accounts, Zipf-skewed", Accounts.ZIPF, 0, closed, ALL_SYSTEMS),
    )


def _psp_latency(seconds: float, rate: float, latencies: tuple[int, ...]) -> tuple[Scenario, ...]:
    out = []
    for ms in latencies:
        # Open loop at a fixed rate: a closed loop would tie throughput to its own worker count divided
        # by the latency, for every system alike, and say nothing about the systems.
        load = Load(Mode.OPEN, seconds, rate_per_s=rate, warmup_s=1.0 + ms / 1000)
        title = f"(d) hot account, PSP latency {ms / 1000:g} s, {rate:g} payments/s offered"
        out.append(Scenario(f"d-psp-{ms}ms", title, Accounts.HOT, ms, load, ALL_SYSTEMS))
    return tuple(out)


CAPACITY_SCENARIOS = (
    CapacityScenario("a-hot", "(a) one hot account, many users", Accounts.HOT),
    CapacityScenario("b-uniform", "(b) many accounts, uniform", Accounts.UNIFORM),
    CapacityScenario("c-zipf", "(c) many accounts, Zipf-skewed", Accounts.ZIPF),
)

FULL = Profile(
    name="full",
    accounts=100_000,
    hot_users=50,
    zipf_s=1.1,
    partitions=dev_partitions(),
    scenarios=_psp_latency(8, rate=100, latencies=PSP_LATENCIES_MS),
    closed=_closed(10),
    processor=ProcessorSpec(hot_payments=30_000, uniform_accounts=5_000, uniform_payments=30_000),
    gateway=GatewaySpec(duration_s=8, rounds=2),
    # 9 sweeps in ~4 minutes (measured: 107 s for the 3 of (a), warm-ups included): ~10 points each,
    # coarse ones 1 s, confirm ones 2.5 s, failing ones stopped as soon as the bound is broken; no point
    # starts after 24 s of a sweep, so that make bench stays within 10 minutes.
    capacity=CapacitySpec(
        # 80, 120, 180, 270, 400, 610, 910, 1,400, 2,100, 3,100 payments/s
        sweep=SweepSpec(start_per_s=80, factor=1.5, steps=10, p99_bound_s=1.0, repeats=3, max_points=13),
        scenarios=CAPACITY_SCENARIOS,
        systems=ALL_SYSTEMS,
        coarse_s=1.0,
        coarse_warmup_s=0.3,
        confirm_s=2.5,
        confirm_warmup_s=0.7,
        prefer_wait_s=2,
        budget_s=24,
        warmup_s=4,
        warmup_per_s=120,
    ),
)

QUICK = Profile(
    name="quick",
    accounts=5_000,
    hot_users=50,
    zipf_s=1.1,
    partitions=dev_partitions(),
    # (d) at one latency only: the others are the full run's.
    scenarios=_psp_latency(4, rate=50, latencies=(1500,)),
    closed=_closed(2.5),
    processor=ProcessorSpec(hot_payments=5_000, uniform_accounts=300, uniform_payments=4_000),
    gateway=GatewaySpec(duration_s=2.5),
    # (a) only, ours and the locked baseline (the targets are stated against it), a coarser
    # ladder and shorter points: a smoke test of the method in ~30 s, not a measurement (make bench-quick
    # took 178 s with 10,000 accounts and a 16 s budget at load 11: trimmed to stay near 2 minutes).
    capacity=CapacitySpec(
        # 50, 100, 200, 400, 800, 1,600, 3,200 payments/s
        sweep=SweepSpec(start_per_s=50, factor=2, steps=7, p99_bound_s=1.0, repeats=3, max_points=10),
        scenarios=CAPACITY_SCENARIOS[:1],
        systems=(System.OURS, System.BASELINE_LOCKED),
        coarse_s=1.0,
        coarse_warmup_s=0.3,
        confirm_s=2.0,
        confirm_warmup_s=0.5,
        prefer_wait_s=2,
        budget_s=12,
        warmup_s=1.5,
        warmup_per_s=100,
        settle_max_s=5,
    ),
    drain_s=6.0,
    warmup_s=1.5,
    baseline_lock_timeout_ms=4_000,
)

PROFILES = {p.name: p for p in (FULL, QUICK)}
