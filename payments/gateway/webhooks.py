"""PSP webhook ingress: the event model we accept, its mapping to ``RecordPspOutcome``, and the
``webhook-id`` dedupe record. The route is ``routes/webhooks.py``; signatures are ``standard_webhooks``.

The body is the PSP's event ``{id, type, timestamp, data}`` where ``data`` is the money movement. We parse
it with our own model (unknown fields ignored: the PSP may add some) and never import the simulator.
``data.idempotency_key`` is our operation id (the psp-caller uses it as the PSP idempotency key) and
``data.metadata.account_id`` its account (the psp-caller always sends ``metadata: {account_id, op_id}``).

Only ``transfer.{succeeded,failed}`` (payments) and ``charge.{succeeded,failed}`` (top-ups) become
commands. Everything else (refunds, events without our metadata) is acknowledged and counted but not
published: the reconciler's settlement matching is what catches movements we cannot attribute.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.schemas.commands import RecordPspOutcome
from payments.schemas.psp import PspOutcomeSource, PspOutcomeStatus

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")  # the commands' Identifier
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")
COMMAND_PREFIX = "whk."
_MAX_ID_CHARS = 100  # "whk." + 100 + "." + 16 hex stays within the 128 of an Identifier
_MAX_FAILURE_CODE_CHARS = 64  # RecordPspOutcome.psp_failure_code

# event type → the outcome it reports
_OUTCOMES: dict[str, PspOutcomeStatus] = {
    "transfer.succeeded": PspOutcomeStatus.SUCCEEDED,
    "transfer.failed": PspOutcomeStatus.FAILED,
    "charge.succeeded": PspOutcomeStatus.SUCCEEDED,
    "charge.failed": PspOutcomeStatus.FAILED,
}


class PspEventEnvelope(BaseModel):
    """What every event has; ``data`` is parsed further only for the types we act on."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    type: str
    data: dict[str, Any]


class PspMovement(BaseModel):
    """The money movement of a transfer or charge event (the PSP's ``Movement``; extra fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Annotated[str, Field(min_length=1, max_length=255)]
    kind: str
    status: str
    failure_code: str | None = None
    amount: StrictInt
    currency: str
    idempotency_key: str
    metadata: dict[str, str | int | bool] = Field(default_factory=dict)


@dataclass(frozen=True)
class Ignored:
    """An authentic event we do not publish: ``reason`` is a metric label (``type`` | ``orphan``)."""

    reason: str
    detail: str


def webhook_command_id(webhook_id: str) -> str:
    """``whk.<webhook-id>``, made a valid identifier: unsafe characters become ``_``; if anything had to
    change (or the id is long), a digest of the original keeps distinct ids distinct."""
    safe = _UNSAFE.sub("_", webhook_id)
    if safe == webhook_id and len(safe) <= _MAX_ID_CHARS:
        return COMMAND_PREFIX + safe
    digest = hashlib.sha256(webhook_id.encode()).hexdigest()[:16]
    return f"{COMMAND_PREFIX}{safe[:_MAX_ID_CHARS]}.{digest}"


def parse_event(body: bytes) -> PspEventEnvelope:
    """Raises ``ValidationError`` (not JSON, or no ``id``/``type``/``data``)."""
    return PspEventEnvelope.model_validate_json(body)


def outcome_command(event: PspEventEnvelope, webhook_id: str, issued_at: int) -> RecordPspOutcome | Ignored:
    """The command an authentic event becomes, or why it is ignored. Pure.

    Raises ``ValidationError`` if an event of a type we act on has a malformed ``data``."""
    status = _OUTCOMES.get(event.type)
    if status is None:
        return Ignored("type", f"event type {event.type!r} is not a transfer or charge outcome")
    movement = PspMovement.model_validate(event.data)
    account_id = movement.metadata.get("account_id")
    if not isinstance(account_id, str) or not _IDENTIFIER.match(account_id):
        return Ignored("orphan", f"movement {movement.id} carries no account_id of ours")
    if not _IDENTIFIER.match(movement.idempotency_key):
        return Ignored("orphan", f"movement {movement.id} has an idempotency key that is not ours")
    failure = movement.failure_code[:_MAX_FAILURE_CODE_CHARS] if movement.failure_code else None
    return RecordPspOutcome(
        command_id=webhook_command_id(webhook_id),
        account_id=account_id,
        issued_at=issued_at,
        op_id=movement.idempotency_key,
        status=status,
        source=PspOutcomeSource.WEBHOOK,
        psp_movement_id=movement.id,
        psp_failure_code=failure if status is PspOutcomeStatus.FAILED else None,
        amount=movement.amount if movement.amount > 0 else None,
    )


def dedupe_key(webhook_id: str) -> str:
    # Hashed: the id is the PSP's string, of any length and alphabet.
    return "whk:" + hashlib.sha256(webhook_id.encode()).hexdigest()


# KEYS[1] record; ARGV[1] lease token, ARGV[2] lease ms
_CLAIM_LUA = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'new'
end
if v == 'done' then return 'done' end
return 'inflight'
"""

# KEYS[1] record; ARGV[1] lease token
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class WebhookClaim(StrEnum):
    NEW = "new"  # ours to publish
    DONE = "done"  # published before → 200 duplicate
    IN_FLIGHT = "inflight"  # another delivery of this id is being published → 409, the PSP retries
    UNAVAILABLE = "unavailable"  # Redis down → publish anyway (harmless: outcomes apply monotonically)


class WebhookDedupe:
    """``whk:<sha256(webhook-id)>``: a lease token while one delivery publishes, ``done`` once published
    (kept ``ttl_s``). The lease keeps concurrent duplicate deliveries (PSPs send them) from publishing
    twice; it is released if the publish fails, and expires after ``lease_s`` if the gateway dies
    meanwhile. Best effort: with Redis down every delivery is published, which the processor tolerates."""

    def __init__(self, redis: Redis, *, ttl_s: int, lease_s: float) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._lease_ms = int(lease_s * 1000)
        self._claim = redis.register_script(_CLAIM_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def claim(self, webhook_id: str) -> tuple[WebhookClaim, str]:
        """What to do with this delivery, and the lease token to pass to ``release``."""
        token = "inflight:" + secrets.token_hex(8)
        try:
            reply = await self._claim(keys=[dedupe_key(webhook_id)], args=[token, self._lease_ms])
        except RedisError as exc:
            log.warning(
                "webhook dedupe unavailable (%s); publishing %s anyway", type(exc).__name__, webhook_id
            )
            return WebhookClaim.UNAVAILABLE, token
        return WebhookClaim(bytes(reply).decode()), token

    async def published(self, webhook_id: str) -> None:
        try:
            await self._redis.set(dedupe_key(webhook_id), b"done", ex=self._ttl_s)
        except RedisError as exc:
            log.warning("could not record webhook %s as published (%s)", webhook_id, type(exc).__name__)

    async def release(self, webhook_id: str, token: str) -> None:
        """The publish failed: let the PSP's retry claim the id again."""
        try:
            await self._release(keys=[dedupe_key(webhook_id)], args=[token])
        except RedisError as exc:  # the lease expires on its own
            log.warning("could not release webhook %s (%s)", webhook_id, type(exc).__name__)
