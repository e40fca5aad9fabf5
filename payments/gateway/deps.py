"""FastAPI dependencies as ``Annotated`` aliases: ``Services``, ``CurrentPrincipal``, ``AdminPrincipal``,
``IdempotencyKey``, ``OptionalIdempotencyKey``, ``PreferWait``, ``AccountId``, ``MemberAccount``,
``AdminAccount``, ``RateLimited``.

FastAPI resolves dependencies in declaration order before it validates the body, so a handler that
declares principal → account → key gets 401 → 404/403 → 400 → 422 in that order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from payments.gateway import access
from payments.gateway.auth import Principal
from payments.gateway.errors import GatewayError
from payments.gateway.idempotency import AccountCheck
from payments.gateway.idempotency_keys import parse_idempotency_key
from payments.gateway.prefer import parse_prefer_wait
from payments.gateway.services import GatewayServices
from payments.readmodel.layout import account_key
from payments.schemas.errors import ErrorCode
from payments.schemas.state import AccountSnapshot


# Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in
# the thread pool, a thread hop per dependency per request that cost a third of the gateway's throughput
# (bench/README.md, "Profile").
async def get_services(request: Request) -> GatewayServices:
    return cast(GatewayServices, request.app.state.services)


Services = Annotated[GatewayServices, Depends(get_services)]

# auto_error=False: a missing or non-Bearer header must become our 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer pk_...`")


async def get_principal(
    services: Services, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    return await services.auth.authenticate(credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise GatewayError("this operation needs the admin role", code=ErrorCode.FORBIDDEN)
    return principal


AdminPrincipal = Annotated[Principal, Depends(get_admin)]

_KEY_DOC = (
    "Unique per logical operation (IETF httpapi Idempotency-Key; quoted or bare, <= 255 printable ASCII). "
    "Scoped to the caller and retained 24 h after the response: a retry with the same key and payload "
    "replays the original answer with `Idempotent-Replayed: true`."
)


async def get_idempotency_key(
    # Optional to FastAPI so that a missing key is our 400 problem, not a 422; the OpenAPI document marks
    # it required (``payments.gateway.openapi`` reads ``x-required``).
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description=_KEY_DOC, json_schema_extra={"x-required": True}),
    ] = None,
) -> str:
    return parse_idempotency_key(idempotency_key)


IdempotencyKey = Annotated[str, Depends(get_idempotency_key)]


async def get_optional_idempotency_key(
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", description=_KEY_DOC)] = None,
) -> str | None:
    return None if idempotency_key is None else parse_idempotency_key(idempotency_key)


OptionalIdempotencyKey = Annotated[str | None, Depends(get_optional_idempotency_key)]


async def get_prefer_wait(
    services: Services,
    prefer: Annotated[
        list[str] | None,
        Header(description="`wait=N` (RFC 7240): wait up to N s (max 10) for the final result"),
    ] = None,
) -> int | None:
    return parse_prefer_wait(prefer or [], int(services.settings.max_prefer_wait_s))


PreferWait = Annotated[int | None, Depends(get_prefer_wait)]


AccountId = Annotated[str, Path(description="account id", examples=["acct_4f1c2a9e0b7d3c5a81e6f2d4b9"])]


async def get_member_account(
    account_id: AccountId, principal: CurrentPrincipal, services: Services
) -> AccountSnapshot | None:
    return await access.intake_account(services, principal, account_id, require_member=True)


# The account a member acts on (404 / 403 per ``access``); None when Redis is down (degraded pre-check).
MemberAccount = Annotated[AccountSnapshot | None, Depends(get_member_account)]


async def get_admin_account(
    account_id: AccountId, principal: AdminPrincipal, services: Services
) -> AccountSnapshot | None:
    return await access.intake_account(services, principal, account_id, require_member=False)


# The account an admin acts on (403 for non-admins, 404 if unknown); None when Redis is down.
AdminAccount = Annotated[AccountSnapshot | None, Depends(get_admin_account)]


async def check_rate_limit(principal: CurrentPrincipal, services: Services) -> None:
    await services.rate_limiter.check(principal.user_id)


# Declare after the account dependency: requests refused with 404/403 do not spend tokens.
RateLimited = Annotated[None, Depends(check_rate_limit)]


@dataclass
class IntakePrecheck:
    """The membership pre-check of a payment or top-up, deferred so that it rides on the idempotency claim's
    round trip (``AccountCheck``: the claim's Lua checks first and claims only if it passes).

    The error order stays 401 → 404/403 → 400 → 422 → 409: ``get_intake_precheck`` runs the pre-check on
    its own (one round trip, as ``MemberAccount`` does) whenever something would answer before the claim
    (a missing key, an invalid body). The rate limiter's token is taken in the same evaluation too, after
    the pre-check (requests refused with 404/403 spend none) and before the claim.
    """

    services: GatewayServices
    principal: Principal
    account_id: str
    done: bool = False
    account: AccountSnapshot | None = None  # what a stand-alone run found (None: skipped or not run)

    async def run_alone(self) -> None:
        if self.done:
            return
        self.done = True
        self.account = await access.intake_account(
            self.services, self.principal, self.account_id, require_member=True
        )

    def for_claim(self, currency: str) -> AccountCheck | None:
        """The check the claim must make (None once it ran on its own; then ``check_currency`` on
        ``account``). Marks it done: the claim's evaluation is its one and only run."""
        if self.done:
            access.check_currency(self.account, currency)
            return None
        self.done = True
        return AccountCheck(account_key(self.account_id), require_member=True, currency=currency)


async def get_intake_precheck(
    account_id: AccountId, principal: CurrentPrincipal, services: Services
) -> AsyncIterator[IntakePrecheck]:
    access.check_account_id(account_id)
    precheck = IntakePrecheck(services, principal, account_id)
    try:
        yield precheck
    except (GatewayError, RequestValidationError):
        # Raised before the claim ran the pre-check (a 400 for the key, a 422 body, ...): a failing
        # pre-check answers first, as it did when it was a dependency of its own.
        await precheck.run_alone()
        raise


# A member's payment or top-up: the pre-check (404 / 403 / currency 400) folded into the claim.
IntakeAccount = Annotated[IntakePrecheck, Depends(get_intake_precheck)]
