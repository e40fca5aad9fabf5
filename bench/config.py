"""What a benchmark run does: frozen specs built once in ``cli.main`` and passed down (no globals).

Two profiles: ``full`` (``make bench``, bounded to ~10 minutes on 2 cores) and ``quick``
(``make bench-quick``, ~2 minutes). Durations are seconds, rates per second, latencies milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


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
class Profile:
    name: str
    accounts: int  # accounts of the uniform and Zipf scenarios
    hot_users: int  # members of the hot account, each with an API key
    zipf_s: float
    partitions: int
    scenarios: tuple[Scenario, ...]
    processor: ProcessorSpec
    gateway: GatewaySpec
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
    sections: frozenset[str] = field(default_factory=lambda: frozenset({"scenarios", "processor", "gateway"}))

    def only(self, sections: frozenset[str]) -> Profile:
        return replace(self, sections=sections)


ALL_SYSTEMS = (System.OURS, System.BASELINE_LOCKED, System.BASELINE_UNLOCKED)
PSP_LATENCIES_MS = (0, 500, 1500, 3000)


def _scenarios(
    closed_s: float, open_s: float, rate: float, latencies: tuple[int, ...]
) -> tuple[Scenario, ...]:
    closed = Load(Mode.CLOSED, closed_s)
    out = [
        Scenario("a-hot", "(a) one hot account, many users", Accounts.HOT, 0, closed, ALL_SYSTEMS),
        Scenario("b-uniform", "(b) many accounts, uniform", Accounts.UNIFORM, 0, closed, ALL_SYSTEMS),
        Scenario("c-zipf", "(c) many accounts, Zipf-skewed", Accounts.ZIPF, 0, closed, ALL_SYSTEMS),
    ]
    for ms in latencies:
        # Open loop at a fixed rate: a closed loop would tie throughput to its own worker count divided
        # by the latency, for every system alike, and say nothing about the systems.
        load = Load(Mode.OPEN, open_s, rate_per_s=rate, warmup_s=1.0 + ms / 1000)
        title = f"(d) hot account, PSP latency {ms / 1000:g} s, {rate:g} payments/s offered"
        out.append(Scenario(f"d-psp-{ms}ms", title, Accounts.HOT, ms, load, ALL_SYSTEMS))
    return tuple(out)


FULL = Profile(
    name="full",
    accounts=100_000,
    hot_users=50,
    zipf_s=1.1,
    partitions=16,
    scenarios=_scenarios(closed_s=10, open_s=10, rate=100, latencies=PSP_LATENCIES_MS),
    processor=ProcessorSpec(hot_payments=30_000, uniform_accounts=5_000, uniform_payments=30_000),
    gateway=GatewaySpec(duration_s=8, rounds=2),
)

QUICK = Profile(
    name="quick",
    accounts=10_000,
    hot_users=50,
    zipf_s=1.1,
    partitions=16,
    # (d) at one latency only: the others are the full run's.
    scenarios=_scenarios(closed_s=2.5, open_s=4, rate=50, latencies=(1500,)),
    processor=ProcessorSpec(hot_payments=5_000, uniform_accounts=300, uniform_payments=4_000),
    gateway=GatewaySpec(duration_s=2.5),
    drain_s=6.0,
    warmup_s=1.5,
    baseline_lock_timeout_ms=4_000,
)

PROFILES = {p.name: p for p in (FULL, QUICK)}
