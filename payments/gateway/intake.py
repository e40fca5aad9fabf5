"""The shared path of every command-producing request: idempotency → publish → (wait) → answer → store.

1. Claim the key (one Lua round trip): for payments and top-ups the same evaluation first runs the
   membership pre-check (404/403/currency 400; nothing is claimed if it fails) and watches for a retry
   sent under a fresh key (``Payments-Warning``, never a refusal). Replay, 409 in flight and 422 mismatch
   end here. A new claim also brings back the read model's record of the operation (``Submission.peek``)
   for step 2.
2. Look the operation up in the read model: if it is already there (the key's record expired or Redis
   lost it, but the operation is known) do not publish again; if it belongs to another payload, 422.
   (Membership changes skip this and always publish: the read model may show a state that an earlier,
   not yet applied command is about to change.)
3. Publish and await the broker's acknowledgement. Failure → release the claim, 503 with Retry-After.
4. With ``Prefer: wait=N``, wait up to N s for the final result (see ``waiter``): for payments and
   top-ups a terminal status only (``reserved``/``processing``/``unknown`` keep it waiting); without it the
   answer is always 202 with the pending resource, whatever the read model already knows.
5. Render the answer, store it under the key (it is what the client receives, byte for byte), send it.
   A 202 is stored like any other answer: a retry replays that 202 (with the status it showed then),
   never a later final state; clients read the final state with ``GET``.

Any exception before step 5 releases the claim: nothing durable happened, or what did happen is safe to
repeat because command ids are deterministic and the processor dedupes them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi.responses import Response
from redis.exceptions import RedisError

from payments.gateway import access, render
from payments.gateway.errors import GatewayError, IntakeUnavailable, ReadModelRebuilding
from payments.gateway.idempotency import AccountCheck, Claim, ClaimKind, FreshKeyCheck, Precheck, RateCheck
from payments.gateway.idempotency_keys import fresh_key_slot
from payments.gateway.prefer import preference_applied
from payments.gateway.ratelimit import rate_limited
from payments.gateway.render import Answer, OperationCommand, replay_response
from payments.gateway.services import GatewayServices
from payments.readmodel.layout import operation_key
from payments.schemas.commands import AnyCommand
from payments.schemas.errors import ErrorCode
from payments.schemas.state import Operation

log = logging.getLogger(__name__)

T = TypeVar("T")

# RFC 9111 obsoleted ``Warning``; this header keeps its warn-value syntax (299 = miscellaneous persistent
# warning) so that tooling that parses one parses the other.
FRESH_KEY_WARNING = (
    "Payments-Warning",
    '299 - "possible retry with a fresh Idempotency-Key: reuse the key of the first attempt"',
)


@dataclass(frozen=True)
class Peek(Generic[T]):
    """A read-model hash holding a submission's result in its ``data`` field, and how to parse it."""

    key: str
    parse: Callable[[bytes], T]


@dataclass(frozen=True)
class Submission(Generic[T]):
    """One command-producing request, with how to find and judge its result ``T`` in the read model."""

    principal: str
    key: str | None  # None: no idempotency record (account opening or membership without a key)
    fingerprint: str
    command: AnyCommand
    lookup: Callable[[], Awaitable[T | None]]
    is_final: Callable[[T], bool]
    conflicts: Callable[[T], bool]  # the result found belongs to another payload under the same id
    render: Callable[[T | None], Answer]  # None = not (yet) known → 202
    wait_s: int | None  # how long to wait for a final result; None = answer right after publishing
    echo_preference: bool  # the client sent Prefer: wait → Preference-Applied
    # False: publish even if the read model already shows a result (membership changes; see step 2)
    dedupe_by_read_model: bool = True
    # The read-model hash ``lookup`` reads and how to parse its ``data``: given, step 2's first look rides
    # on step 1's Redis round trip (``IdempotencyStore.claim(peek=...)``) instead of needing its own.
    peek: Peek[T] | None = None
    # The membership pre-check to run inside the claim (``deps.IntakePrecheck.for_claim``), and the
    # fresh-key detection of a payment signature (``idempotency_keys.fresh_key_slot``).
    account_check: AccountCheck | None = None
    fresh: FreshKeyCheck | None = None
    rate: RateCheck | None = None  # the principal's token, taken after the pre-check, before the claim


def _reused() -> GatewayError:
    return GatewayError(
        "this Idempotency-Key was already used with a different request",
        code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
    )


async def submit(services: GatewayServices, sub: Submission[T]) -> Response:
    claim: Claim | None = None  # no key, no record
    extra: dict[str, str] = {}
    if sub.key is not None:
        peek = sub.peek.key if sub.peek is not None and sub.dedupe_by_read_model else None
        claim = await services.idempotency.claim(
            sub.principal,
            sub.key,
            sub.fingerprint,
            peek=peek,
            account=sub.account_check,
            fresh=sub.fresh,
            rate=sub.rate,
        )
        _precheck_outcome(services, sub, claim)
        if claim.kind is ClaimKind.RATE_LIMITED:
            raise rate_limited(claim.retry_after_ms)
        if claim.kind is ClaimKind.DEGRADED and sub.rate is not None:
            services.metrics.redis_degraded.labels("rate_limit").inc()  # failed open, as RateLimiter does
        services.metrics.idempotency.labels(claim.kind.value).inc()
        if claim.suspected_fresh_key:
            services.metrics.suspected_fresh_key_retries.inc()
            extra[FRESH_KEY_WARNING[0]] = FRESH_KEY_WARNING[1]
        if claim.kind is ClaimKind.REPLAY:
            assert claim.stored is not None
            return replay_response(claim.stored)
        if claim.kind is ClaimKind.CONFLICT:
            raise GatewayError(
                "a request with this Idempotency-Key is still being processed",
                code=ErrorCode.IDEMPOTENCY_KEY_IN_USE,
                retry_after_s=services.settings.retry_after_s,
            )
        if claim.kind is ClaimKind.MISMATCH:
            raise _reused()
    try:
        answer = await _execute(services, sub, claim)
    except BaseException:
        if claim is not None:
            await services.idempotency.release(claim)
        raise
    if claim is not None:
        await services.idempotency.complete(claim, answer.stored())
    if sub.echo_preference:
        extra["Preference-Applied"] = preference_applied(sub.wait_s or 0)
    return answer.response(extra)


def _precheck_outcome(services: GatewayServices, sub: Submission[T], claim: Claim) -> None:
    """The pre-check folded into the claim: its refusals as errors, its skips in the metrics (as
    ``access.intake_account`` counts them when it runs on its own)."""
    check = sub.account_check
    if check is None:
        return
    account_id = getattr(sub.command, "account_id", "")
    match claim.precheck:
        case Precheck.NOT_FOUND:
            raise access.not_found(account_id)
        case Precheck.NOT_A_MEMBER:
            raise access.not_a_member(account_id)
        case Precheck.CURRENCY_MISMATCH:
            raise GatewayError(
                f"the account is in {claim.account_currency or None}, not {check.currency}",
                code=ErrorCode.CURRENCY_MISMATCH,
            )
        case Precheck.REBUILDING:
            services.metrics.read_model_rebuilding.labels("membership_precheck").inc()
        case Precheck.DEGRADED:
            services.metrics.redis_degraded.labels("membership_precheck").inc()
        case _:
            pass


async def _quiet_lookup(services: GatewayServices, sub: Submission[T]) -> T | None:
    try:
        return await _lookup(services, sub)
    except RedisError as exc:
        services.metrics.redis_degraded.labels("result_lookup").inc()
        log.warning("read model unreachable (%s); answering without it", type(exc).__name__)
        return None


async def _lookup(services: GatewayServices, sub: Submission[T]) -> T | None:
    """``sub.lookup()``, with "not known yet" while the read model is being rebuilt: what it holds then may
    be an older state (e.g. a membership since changed), so it must not make an answer final."""
    try:
        return await sub.lookup()
    except ReadModelRebuilding:
        services.metrics.read_model_rebuilding.labels("result_lookup").inc()
        return None


async def _first_look(services: GatewayServices, sub: Submission[T], claim: Claim | None) -> T | None:
    """Step 2's read-model look: what the claim peeked at, else a lookup of its own."""
    if claim is not None and claim.peeked_at_claim and sub.peek is not None:
        return None if claim.peeked is None else sub.peek.parse(claim.peeked)
    return await _quiet_lookup(services, sub)


async def _execute(services: GatewayServices, sub: Submission[T], claim: Claim | None) -> Answer:
    result: T | None = None
    if sub.dedupe_by_read_model:
        result = await _first_look(services, sub, claim)
    if result is not None and sub.conflicts(result):
        raise _reused()
    if result is None:
        try:
            await services.publisher.publish(sub.command)
        except IntakeUnavailable as exc:
            services.metrics.publish_failures.labels(exc.reason).inc()
            log.warning("publish of %s failed (%s): %s", sub.command.command_id, exc.reason, exc.detail)
            exc.retry_after_s = services.settings.retry_after_s
            raise
    if not sub.wait_s:
        # Without a wait the answer is always the 202 the first attempt got (final statuses only with
        # Prefer: wait), so a retry after Redis lost the key's record still gets the same bytes.
        return sub.render(None)
    if result is None or not sub.is_final(result):
        result = await _wait(services, sub)
    if result is not None and sub.conflicts(result):
        raise _reused()
    return sub.render(result)


async def _wait(services: GatewayServices, sub: Submission[T]) -> T | None:
    async def settled() -> T | None:
        found = await _lookup(services, sub)
        return found if found is not None and (sub.is_final(found) or sub.conflicts(found)) else None

    assert sub.wait_s is not None
    result = await services.waiter.wait_for(sub.command.command_id, settled, sub.wait_s)
    services.metrics.waits.labels("final" if result is not None else "timeout").inc()
    if result is not None:
        return result
    # Not final in time: answer with whatever state the operation has reached (or pending).
    return await _quiet_lookup(services, sub)


def operation_submission(
    services: GatewayServices,
    instance: str,
    principal: str,
    key: str,
    fingerprint: str,
    cmd: OperationCommand,
    wait_s: int | None,
    *,
    account_check: AccountCheck | None = None,
    fresh: FreshKeyCheck | None = None,
) -> Submission[Operation]:
    """A payment, top-up or adjustment: its result is the operation ``op:<command_id>`` in the read
    model."""
    return Submission(
        principal=principal,
        key=key,
        fingerprint=fingerprint,
        command=cmd,
        lookup=lambda: services.read_model.operation(cmd.command_id),
        peek=Peek(operation_key(cmd.command_id), Operation.model_validate_json),
        is_final=render.is_final,
        conflicts=lambda op: render.operation_conflicts(op, cmd),
        render=lambda op: render.operation_answer(op, cmd, instance=instance),
        wait_s=wait_s,
        echo_preference=wait_s is not None,
        account_check=account_check,
        fresh=fresh,
        rate=_rate_check(services, principal),
    )


def fresh_key_check(
    services: GatewayServices, principal: str, account_id: str, amount: int, currency: str, counterparty: str
) -> FreshKeyCheck | None:
    """The fresh-key detection of a payment (``counterparty`` = payee) or top-up (card token); None = off."""
    window_s = services.settings.fresh_key_window_s
    if window_s <= 0:
        return None
    slot = fresh_key_slot(principal, account_id, amount, currency, counterparty)
    return FreshKeyCheck(slot, window_ms=int(window_s * 1000))


def _rate_check(services: GatewayServices, principal: str) -> RateCheck | None:
    args = services.rate_limiter.bucket_args(principal)
    return None if args is None else RateCheck(*args)
