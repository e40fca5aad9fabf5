"""Who may touch which account: a fast pre-check against the read model.

The read model is eventually consistent, so this is only a pre-check that turns away obvious mistakes
early with a precise answer; the processor re-checks membership authoritatively on the ordered command
log (a member removed a moment ago may still pass here and is then rejected by the processor, visible
as a ``rejected`` payment with code ``not_a_member``).

Choices:
* unknown account (or one that was never opened) → 404 ``account_not_found``, for everyone;
* the account exists but the caller is not a member → 403 ``not_a_member``. We answer 403 rather than
  hiding the account behind a 404 because account ids are unguessable random/derived ids and a precise
  error helps client developers; admins may read every account but pay only from accounts they belong to;
* an account opened a moment ago may not be in the read model yet: clients that just got a 202 for it
  should retry (or open it with ``Prefer: wait``).

Reads (``GET``) need Redis and fail with 503 without it, and with 503 ``read_model_rebuilding`` while the
read model is incomplete (Redis lost it; see ``readmodel``). Intake (``POST``) skips the pre-check in both
cases (degraded mode, see ``idempotency``): the processor's check still applies, and an incomplete read
model must never turn away a payment to an existing account with 404.
"""

from __future__ import annotations

import logging
import re

from redis.exceptions import RedisError

from payments.gateway.auth import Principal
from payments.gateway.errors import DependencyUnavailable, GatewayError, ReadModelRebuilding
from payments.gateway.render import is_open
from payments.gateway.services import GatewayServices
from payments.schemas.errors import ErrorCode
from payments.schemas.state import AccountSnapshot

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")  # the commands' Identifier


def not_found(account_id: str) -> GatewayError:
    return GatewayError(f"account {account_id} does not exist", code=ErrorCode.ACCOUNT_NOT_FOUND)


def not_a_member(account_id: str) -> GatewayError:
    return GatewayError(f"you are not a member of account {account_id}", code=ErrorCode.NOT_A_MEMBER)


def check_account_id(account_id: str) -> None:
    """404 for an id that cannot name an account: commands only carry identifiers."""
    if not _ID.match(account_id):
        raise not_found(account_id)


async def _load(services: GatewayServices, account_id: str) -> AccountSnapshot:
    check_account_id(account_id)
    snapshot = await services.read_model.account(account_id)
    if snapshot is None or not is_open(snapshot):
        raise not_found(account_id)
    return snapshot


async def readable_account(
    services: GatewayServices, principal: Principal, account_id: str
) -> AccountSnapshot:
    """For reads: admins read every account, members their own."""
    try:
        snapshot = await _load(services, account_id)
    except RedisError as exc:
        raise DependencyUnavailable("the read model is unavailable") from exc
    except ReadModelRebuilding:
        services.metrics.read_model_rebuilding.labels("read").inc()
        raise
    if not principal.is_admin and principal.user_id not in snapshot.members:
        raise not_a_member(account_id)
    return snapshot


async def intake_account(
    services: GatewayServices, principal: Principal, account_id: str, *, require_member: bool
) -> AccountSnapshot | None:
    """For commands: the account must exist (and have the caller as a member if ``require_member``).

    None when Redis is unreachable or the read model is being rebuilt: the pre-check is skipped and the
    processor decides. (Not logged per request while rebuilding: the projector logs the loss once and
    ``payments_gateway_read_model_rebuilding_total`` counts the skips.)
    """
    try:
        snapshot = await _load(services, account_id)
    except RedisError as exc:
        services.metrics.redis_degraded.labels("membership_precheck").inc()
        log.warning("membership pre-check skipped: redis unreachable (%s)", type(exc).__name__)
        return None
    except ReadModelRebuilding:
        services.metrics.read_model_rebuilding.labels("membership_precheck").inc()
        return None
    if require_member and principal.user_id not in snapshot.members:
        raise not_a_member(account_id)
    return snapshot


def check_currency(account: AccountSnapshot | None, currency: str) -> None:
    """Fast pre-check (the processor decides): a request in another currency than the account's."""
    if account is not None and account.currency != currency:
        raise GatewayError(
            f"the account is in {account.currency}, not {currency}", code=ErrorCode.CURRENCY_MISMATCH
        )
