"""The simulator's behaviour: idempotent money movements under seeded faults and latency.

HTTP-free: routes hand it validated requests and turn its ``SimResponse`` into a response. All randomness
comes from named streams derived from one seed, so that e.g. enabling webhooks does not shift fault
decisions, and the same seed plus the same request sequence reproduces a run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from payments.psp_sim.clock import Clock
from payments.psp_sim.errors import IdempotencyKeyReused, InvalidSecret, NotFound
from payments.psp_sim.faults import (
    FaultConfig,
    FaultKind,
    LatencyConfig,
    ambiguous_commits,
    decide_fault,
    decide_read_fault,
    decide_webhook,
    merge_faults,
)
from payments.psp_sim.idempotency import fingerprint
from payments.psp_sim.latency import sample_latency_ms
from payments.psp_sim.metrics import Metrics
from payments.psp_sim.models import (
    AuditReport,
    ChargeRequest,
    InjectRequest,
    MoneyRequest,
    Movement,
    MovementKind,
    Problem,
    RefundRequest,
    SettlementReport,
    TransferRequest,
    WebhookEvent,
    WebhookStatus,
)
from payments.psp_sim.orphans import equivalent_request, orphan_movement
from payments.psp_sim.outcomes import Outcome, charge_outcome
from payments.psp_sim.redact import redact
from payments.psp_sim.settings import PspSimSettings
from payments.psp_sim.signing import decode_secret
from payments.psp_sim.store import Store, StoredResponse
from payments.psp_sim.webhooks import WebhookDispatcher, WebhookEndpoint

log = logging.getLogger("payments.psp_sim")

_ID_PREFIX: dict[MovementKind, str] = {"charge": "ch", "transfer": "tr", "refund": "re"}
# A load balancer's answer: not JSON, says nothing about whether the PSP committed.
_AMBIGUOUS_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class SimResponse:
    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass
class _Streams:
    """Independent random streams, one per concern, all derived from the seed."""

    faults: random.Random
    reads: random.Random
    ambiguous: random.Random
    latency: random.Random
    ids: random.Random
    webhooks: random.Random
    event_ids: random.Random
    jitter: random.Random

    @classmethod
    def from_seed(cls, seed: int) -> _Streams:
        # String seeds hash with SHA-512 inside random.seed: stable across processes and Python versions.
        def stream(name: str) -> random.Random:
            return random.Random(f"{seed}:{name}")

        return cls(*(stream(name) for name in cls.__dataclass_fields__))


def _problem(status: int, code: str, title: str, detail: str | None = None) -> bytes:
    return orjson.dumps(Problem(title=title, status=status, code=code, detail=detail).model_dump(mode="json"))


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # naive times in queries and injections are read as UTC


def status_code_of(movement: Movement) -> int:
    """201 for a success, 402 for a decline (the body is the movement either way), like our gateway."""
    return 201 if movement.status == "succeeded" else 402


class Simulator:
    def __init__(
        self,
        *,
        settings: PspSimSettings,
        clock: Clock,
        metrics: Metrics,
        dispatcher: WebhookDispatcher,
        seed: int,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._dispatcher = dispatcher
        self._store = Store()
        self._initial_seed = seed
        self._seed = seed
        self._issued: set[str] = set()  # every movement and event id handed out, across reseeds
        self._streams = _Streams.from_seed(seed)
        self._dispatcher.reseed(self._streams.jitter)
        self._config = self.default_faults()
        self._outage_until: float | None = None  # clock.monotonic() seconds

    # ---- fault configuration -------------------------------------------------------------------------------

    def default_faults(self) -> FaultConfig:
        return FaultConfig(
            latency_ms=LatencyConfig(
                median=self._settings.latency_median_ms, max=self._settings.latency_max_ms
            ),
            timeout_hang_s=self._settings.timeout_hang_s,
            seed=self._initial_seed,
        )

    def faults(self) -> FaultConfig:
        """The configuration in force; ``outage_seconds`` is what is left of the outage window."""
        return self._config.model_copy(
            update={"outage_seconds": self._outage_remaining(), "seed": self._seed}
        )

    def update_faults(self, patch: Mapping[str, Any]) -> FaultConfig:
        """Merge a partial body into the configuration. Raises ``pydantic.ValidationError`` if invalid."""
        merged = merge_faults(self.faults(), patch)
        if "outage_seconds" in patch:
            seconds = merged.outage_seconds
            self._outage_until = self._clock.monotonic() + seconds if seconds > 0 else None
            if seconds > 0:
                log.warning("outage for %.1fs starts", seconds)
        if patch.get("seed") is not None and merged.seed is not None:
            self._reseed(merged.seed)
        self._config = merged.model_copy(update={"outage_seconds": 0.0, "seed": self._seed})
        log.info("faults now %s", self.faults().model_dump_json())
        return self.faults()

    def reset_faults(self) -> FaultConfig:
        """Back to the start-up configuration and seed, outage ended: the run is reproducible again."""
        self._config = self.default_faults()
        self._outage_until = None
        self._reseed(self._initial_seed)
        return self.faults()

    def reset(self) -> None:
        """Forget every movement, key and queued webhook; faults back to defaults. The endpoint stays."""
        self._store.clear()
        self._dispatcher.clear()
        self.reset_faults()
        log.info("state reset")

    def _reseed(self, seed: int) -> None:
        self._seed = seed
        self._streams = _Streams.from_seed(seed)
        self._dispatcher.reseed(self._streams.jitter)

    def _outage_remaining(self) -> float:
        if self._outage_until is None:
            return 0.0
        return max(0.0, self._outage_until - self._clock.monotonic())

    # ---- gates shared by every API request ----------------------------------------------------------------

    def _outage_response(self) -> SimResponse | None:
        remaining = self._outage_remaining()
        if remaining <= 0:
            return None
        self._metrics.faults.labels(FaultKind.OUTAGE.value).inc()
        return SimResponse(
            503,
            _problem(503, "service_unavailable", "Service Unavailable", "the PSP is down"),
            {"Retry-After": str(max(1, math.ceil(remaining)))},
            "application/problem+json",
        )

    def _rate_limited(self) -> SimResponse:
        self._metrics.faults.labels(FaultKind.RATE_LIMIT.value).inc()
        return SimResponse(
            429,
            _problem(429, "rate_limited", "Too Many Requests"),
            {"Retry-After": str(self._settings.rate_limit_retry_after_s)},
            "application/problem+json",
        )

    def _internal_error(self, kind: FaultKind) -> SimResponse:
        # Same body before and after commit: a client must not be able to tell which one happened.
        self._metrics.faults.labels(kind.value).inc()
        return SimResponse(
            500, _problem(500, "internal_error", "Internal Server Error"), {}, "application/problem+json"
        )

    def _ambiguous(self) -> SimResponse:
        self._metrics.faults.labels(FaultKind.AMBIGUOUS_ERROR.value).inc()
        return SimResponse(502, _AMBIGUOUS_BODY, {}, "text/html")

    def read_gate(self) -> SimResponse | None:
        """The fault answer to a read (lookup, report), or None to serve it."""
        outage = self._outage_response()
        if outage is not None:
            return outage
        if decide_read_fault(self._streams.reads, self._config) is FaultKind.RATE_LIMIT:
            return self._rate_limited()
        return None

    async def _sleep_latency(self, latency: LatencyConfig) -> None:
        delay_ms = sample_latency_ms(self._streams.latency, latency.median, latency.max)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    # ---- money ---------------------------------------------------------------------------------------------

    async def move(self, kind: MovementKind, key: str, request: MoneyRequest) -> SimResponse:
        """Charge, transfer or refund under an idempotency key, with whatever fault the seed decides.

        Input errors (unknown token, missing charge, refund too large) raise before any side effect and
        store nothing under the key, so the client may fix the request and reuse the key.
        """
        outcome = charge_outcome(request.payment_method) if isinstance(request, ChargeRequest) else None
        outage = self._outage_response()
        if outage is not None:
            return outage
        config = self._config
        fault = decide_fault(self._streams.faults, config)
        if fault is FaultKind.RATE_LIMIT:
            return self._rate_limited()
        request_fingerprint = fingerprint(kind, request)

        async with self._store.claim(key):
            record = self._store.record(key)
            if record is not None and record.fingerprint != request_fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key was used with other parameters")
            if record is None and isinstance(request, RefundRequest):
                self._store.check_refund(request.charge_id, request.amount)
            await self._sleep_latency(config.latency_ms)
            if fault is FaultKind.ERROR_BEFORE_COMMIT:
                return self._internal_error(fault)
            if fault is FaultKind.AMBIGUOUS_ERROR and not ambiguous_commits(self._streams.ambiguous):
                return self._ambiguous()
            if record is None:
                movement = self._new_movement(kind, key, request, outcome)
                stored = StoredResponse(status_code_of(movement), self._encode(movement))
                self._store.commit(movement, request_fingerprint, stored)
                self._committed(movement, config)
                replayed = False
            else:
                stored = record.response
                replayed = True

        # The key is released before the faults below: the movement is durable, so a client that retries
        # after losing this response gets a replay, not a 409.
        if fault is FaultKind.ERROR_AFTER_COMMIT:
            return self._internal_error(fault)
        if fault is FaultKind.AMBIGUOUS_ERROR:
            return self._ambiguous()
        if fault is FaultKind.TIMEOUT_AFTER_COMMIT:
            self._metrics.faults.labels(fault.value).inc()
            await asyncio.sleep(config.timeout_hang_s)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return SimResponse(stored.status_code, stored.body, headers)

    def _new_movement(
        self, kind: MovementKind, key: str, request: MoneyRequest, outcome: Outcome | None
    ) -> Movement:
        common: dict[str, Any] = {
            "id": self._new_id(_ID_PREFIX[kind]),
            "kind": kind,
            "idempotency_key": key,
            "amount": request.amount,
            "created_at": self._clock.now(),
            "reference": request.reference,
            "metadata": dict(request.metadata),
        }
        if isinstance(request, ChargeRequest):
            assert outcome is not None
            return Movement(
                **common,
                status=outcome.status,
                failure_code=outcome.failure_code,
                currency=request.currency,
                payment_method=request.payment_method,
            )
        if isinstance(request, TransferRequest):
            return Movement(**common, status="succeeded", currency=request.currency, payee=request.payee)
        charge = self._store.check_refund(request.charge_id, request.amount)
        return Movement(**common, status="succeeded", currency=charge.currency, charge_id=charge.id)

    def _new_id(self, prefix: str) -> str:
        # A reseed (DELETE /_sim/faults, a posted seed) restarts the id stream, which would hand out ids
        # already in the log: the store would then overwrite an earlier movement, and its webhooks would be
        # taken for duplicates. Skipping used ids keeps both unique and the sequence still seeded.
        while True:
            new = f"{prefix}_{self._streams.ids.getrandbits(96):024x}"
            if new not in self._issued:
                self._issued.add(new)
                return new

    def _new_event_id(self) -> str:
        while True:
            new = f"evt_{self._streams.event_ids.getrandbits(96):024x}"
            if new not in self._issued:
                self._issued.add(new)
                return new

    @staticmethod
    def _encode(movement: Movement) -> bytes:
        return orjson.dumps(movement.model_dump(mode="json"))

    def _committed(self, movement: Movement, config: FaultConfig, *, send_webhook: bool = True) -> None:
        self._metrics.movements.labels(movement.kind, movement.status).inc()
        log.info(
            "%s %s %s amount=%d %s key=%s pm=%s",
            movement.kind,
            movement.id,
            movement.status,
            movement.amount,
            movement.currency,
            redact(movement.idempotency_key),
            redact(movement.payment_method),
        )
        if send_webhook and self._dispatcher.endpoint is not None:
            self._send_webhook(movement, config)

    def _send_webhook(self, movement: Movement, config: FaultConfig) -> None:
        plan = decide_webhook(self._streams.webhooks, config)
        delay_ms = config.webhook_delay_ms
        if plan.duplicate:
            self._metrics.faults.labels(FaultKind.WEBHOOK_DUPLICATE.value).inc()
        if plan.reorder:
            self._metrics.faults.labels(FaultKind.WEBHOOK_REORDER.value).inc()
            delay_ms += config.webhook_reorder_hold_ms
        event = WebhookEvent(
            id=self._new_event_id(),
            type=f"{movement.kind}.{movement.status}",
            timestamp=self._clock.now(),
            data=movement,
        )
        self._dispatcher.enqueue(event, delay_s=delay_ms / 1000, copies=2 if plan.duplicate else 1)

    # ---- webhooks ------------------------------------------------------------------------------------------

    def set_webhook_endpoint(self, url: str | None, secret: str | None) -> None:
        if url is None:
            self._dispatcher.set_endpoint(None)
            return
        if secret is None:
            raise InvalidSecret("a webhook url needs a secret (whsec_<base64>)")
        decode_secret(secret)  # reject a malformed secret now, not at the first delivery
        self._dispatcher.set_endpoint(WebhookEndpoint(url=url, secret=secret))
        log.info("webhook endpoint now %s", url)

    def webhook_status(self) -> WebhookStatus:
        return self._dispatcher.status()

    # ---- reads and test controls ---------------------------------------------------------------------------

    def lookup(self, key: str) -> Movement:
        """The movement made under ``key``. A key still in flight is not found yet, as at a real PSP."""
        movement = self._store.by_key(key)
        if movement is None:
            raise NotFound("no movement under this Idempotency-Key")
        return movement

    def settlement(self, since: datetime | None, until: datetime | None) -> SettlementReport:
        since, until = _utc(since), _utc(until)
        movements = self._store.movements(since, until)
        return SettlementReport(
            since=since,
            until=until,
            generated_at=self._clock.now(),
            count=len(movements),
            movements=movements,
        )

    def audit(self) -> AuditReport:
        return AuditReport(movements=self._store.movements())

    def inject(self, request: InjectRequest) -> SimResponse:
        """Record an orphan movement (one we never asked for), as if its equivalent request had been made."""
        key = request.idempotency_key or f"orphan_{self._streams.ids.getrandbits(64):016x}"
        if self._store.has_key(key):
            raise IdempotencyKeyReused("this Idempotency-Key is already in use")
        equivalent = equivalent_request(request)
        movement = orphan_movement(
            request,
            equivalent,
            movement_id=self._new_id(_ID_PREFIX[request.kind]),
            key=key,
            created_at=_utc(request.created_at) or self._clock.now(),
        )
        stored = StoredResponse(status_code_of(movement), self._encode(movement))
        self._store.commit_orphan(movement, fingerprint(request.kind, equivalent), stored)
        self._committed(movement, self._config, send_webhook=request.send_webhook)
        return SimResponse(201, stored.body)
