"""The campaign's vocabulary: faults, scenarios, planned client operations and what clients were told."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    KILL = "kill"  # kill -9 a service, restart it after a pause
    PAUSE = "pause"  # SIGSTOP a service, SIGCONT it after a while
    BROKER_RESTART = "broker_restart"  # the Kafka broker goes away (clean or kill -9) and comes back
    REDIS_RESTART = "redis_restart"  # redis-server restarts; it has no persistence, so its data is lost
    REDIS_FLUSHALL = "redis_flushall"  # Redis keeps running but loses every key
    PSP_FAULTS = "psp_faults"  # time-outs after commit, 5xx, ambiguous errors, webhook dup/delay/reorder
    PSP_OUTAGE = "psp_outage"  # the PSP refuses everything for a while


# Services a kill or a pause can hit. The PSP simulator is never killed: its own log is the witness.
TARGETS: tuple[str, ...] = ("processor-0", "processor-1", "psp-caller", "reconciler", "projector", "gateway")


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds after the workload started
    kind: FaultKind
    target: str | None = None  # the service, for kill and pause
    hold_s: float = 0.0  # how long the fault lasts (down, paused, active)
    hard: bool = False  # broker restart by kill -9 rather than SIGTERM
    psp: dict[str, float] = field(default_factory=dict)  # PSP fault rates, for PSP_FAULTS

    def describe(self) -> str:
        what = self.kind.value if self.target is None else f"{self.kind.value} {self.target}"
        extra = " (kill -9)" if self.hard else ""
        if self.psp:
            extra = " " + ",".join(f"{k}={v:g}" for k, v in sorted(self.psp.items()))
        return f"t+{self.at_s:5.1f}s {what} for {self.hold_s:.1f}s{extra}"


class OpKind(StrEnum):
    PAYMENT = "payment"
    TOP_UP = "top_up"


class Behaviour(StrEnum):
    """How the simulated client sends one logical operation."""

    PLAIN = "plain"  # one request; retried with the same key and body on an unclear answer
    WAIT = "wait"  # the same with ``Prefer: wait=2``
    STORM = "storm"  # several identical requests at once, then the plain retry loop
    CONFLICT = "conflict"  # after an answer, the same key with another amount (must change nothing)
    GIVE_UP = "give_up"  # one request, never retried: a time-out leaves it unknown to the client


@dataclass(frozen=True)
class PlannedOp:
    at_s: float
    index: int
    kind: OpKind
    account: int  # index into the run's accounts
    member: str
    amount: int
    key: str
    behaviour: Behaviour
    payee: str = "merchant-0"
    token: str = "tok_ok"  # noqa: S105 - a PSP test card token, not a secret
    storm: int = 1

    def body(self, amount: int | None = None) -> dict[str, object]:
        value = self.amount if amount is None else amount
        if self.kind is OpKind.PAYMENT:
            return {"amount": value, "currency": "EUR", "payee": self.payee}
        return {"amount": value, "currency": "EUR", "payment_method": self.token}


@dataclass(frozen=True)
class AccountPlan:
    members: tuple[str, ...]
    funding: int
    overdraft: int
    hot: bool


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: dict[FaultKind, float]  # relative weights
    fault_every_s: float  # mean gap between fault starts
    summary: str


@dataclass(frozen=True)
class Plan:
    seed: int
    scenario: str
    duration_s: float
    accounts: tuple[AccountPlan, ...]
    ops: tuple[PlannedOp, ...]
    faults: tuple[Fault, ...]

    def fingerprint(self) -> str:
        """A digest of everything planned: the same seed, scenario and duration give the same one."""
        text = repr((self.seed, self.scenario, self.duration_s, self.accounts, self.ops, self.faults))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Told(StrEnum):
    """What one HTTP attempt told the client."""

    ACCEPTED = "accepted"  # 202: durably accepted
    SUCCEEDED = "succeeded"  # 201: final success
    DECLINED = "declined"  # 402: final failure (insufficient funds, PSP decline, expired)
    REJECTED = "rejected"  # another 4xx: refused, nothing done (or a 422 conflict)
    IN_FLIGHT = "in_flight"  # 409: the same key is being processed
    UNAVAILABLE = "unavailable"  # 503/5xx/429: not done, try again
    NO_ANSWER = "no_answer"  # time-out or connection error: may or may not have happened


@dataclass(frozen=True)
class Attempt:
    op_index: int
    sent_s: float
    told: Told
    status: int | None
    op_id: str | None  # from the body, when there is one
    replayed: bool
    body: bytes
    conflict_probe: bool = False  # this attempt carried a different amount under the same key
    code: str | None = None  # the problem's ``code`` or the operation's status


@dataclass(frozen=True)
class Read:
    """One ``GET /v1/accounts/{id}`` a reader made during the run."""

    account_id: str
    at_s: float
    version: int
    available: int
    overdraft_limit: int
