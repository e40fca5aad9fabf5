"""``/v1/accounts``: open (admin), read (member or admin), adjust the balance (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from payments.gateway import access, render
from payments.gateway.deps import (
    AccountId,
    AdminAccount,
    AdminPrincipal,
    CurrentPrincipal,
    IdempotencyKey,
    OptionalIdempotencyKey,
    PreferWait,
    RateLimited,
    Services,
)
from payments.gateway.idempotency_keys import derive_account_id, derive_adjustment_id, request_fingerprint
from payments.gateway.intake import Submission, operation_submission, submit
from payments.gateway.openapi import AUTH, INTAKE, READ, responses
from payments.readmodel.layout import open_command_id
from payments.schemas.api import (
    AccountOut,
    AccountPending,
    AdjustmentOut,
    AdjustmentRequest,
    OpenAccountRequest,
)
from payments.schemas.commands import AdjustBalance, OpenAccount
from payments.schemas.errors import ErrorCode as E
from payments.schemas.state import AccountSnapshot

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

ACCOUNTS_ROUTE = "/v1/accounts"
ADJUSTMENTS_ROUTE = "/v1/accounts/{account_id}/adjustments"


@router.post(
    "",
    status_code=201,
    response_model=AccountOut,
    operation_id="open_account",
    summary="Open a shared account (admin)",
    responses=responses(
        {
            201: (AccountOut, "opened"),
            202: (AccountPending, "accepted; the processor has not opened it yet"),
        },
        *AUTH, E.FORBIDDEN, E.ACCOUNT_EXISTS, *INTAKE,
        keyed=True, prefer=True, location=(201,),
    ),
)  # fmt: skip
async def open_account(
    request: Request,
    principal: AdminPrincipal,
    key: OptionalIdempotencyKey,
    wait: PreferWait,
    _limited: RateLimited,
    body: OpenAccountRequest,
    services: Services,
) -> Response:
    """Publishes ``OpenAccount`` and waits (``Prefer: wait=N``, else a few seconds) for the processor: 201
    with the account, or 202 ``{id, status: "pending"}`` if it is not open yet.

    ``Idempotency-Key`` is optional here; with one, the account id is derived from it and retries are safe.
    """
    account_id = derive_account_id(principal.user_id, key) if key else services.new_account_id()
    cmd = OpenAccount(
        command_id=open_command_id(account_id),
        account_id=account_id,
        issued_at=services.clock_ms(),
        currency=body.currency,
        members=tuple(body.members),
        overdraft_limit=body.overdraft_limit,
        principal=principal.user_id,
    )
    instance = request.url.path

    def answer(snapshot: AccountSnapshot | None) -> render.Answer:
        return render.account_answer(snapshot, cmd, instance=instance)

    sub: Submission[AccountSnapshot] = Submission(
        principal=principal.user_id,
        key=key,
        fingerprint=request_fingerprint("POST", ACCOUNTS_ROUTE, None, body),
        command=cmd,
        lookup=lambda: services.read_model.account(account_id),
        is_final=render.is_open,
        conflicts=lambda s: render.is_open(s) and render.account_conflicts(s, cmd),
        render=answer,
        wait_s=wait if wait is not None else int(services.settings.account_open_wait_s),
        echo_preference=wait is not None,
    )
    return await submit(services, sub)


@router.get(
    "/{account_id}",
    response_model=AccountOut,
    operation_id="get_account",
    summary="Read an account",
    responses=responses({200: (AccountOut, "the account")}, *READ, E.ACCOUNT_NOT_FOUND),
)
async def get_account(account_id: AccountId, principal: CurrentPrincipal, services: Services) -> Response:
    """The account as of its ``version`` in the (eventually consistent) read model."""
    snapshot = await access.readable_account(services, principal, account_id)
    return render.json_answer(200, render.account_out(snapshot)).response()


@router.post(
    "/{account_id}/adjustments",
    status_code=202,
    response_model=AdjustmentOut,
    operation_id="create_adjustment",
    summary="Adjust the balance (admin)",
    responses=responses(
        {
            201: (AdjustmentOut, "applied (only with Prefer: wait)"),
            202: (AdjustmentOut, "durably accepted, or not final within the wait"),
        },
        *AUTH, E.FORBIDDEN, E.ACCOUNT_NOT_FOUND, E.IDEMPOTENCY_KEY_MISSING, E.CURRENCY_MISMATCH,
        E.INSUFFICIENT_FUNDS, *INTAKE,
        keyed=True, prefer=True,
    ),
)  # fmt: skip
async def adjust_balance(
    request: Request,
    account_id: AccountId,
    principal: AdminPrincipal,
    account: AdminAccount,
    key: IdempotencyKey,
    wait: PreferWait,
    _limited: RateLimited,
    body: AdjustmentRequest,
    services: Services,
) -> Response:
    """Signed manual ledger adjustment (funding, corrections). 202 once durably accepted; with
    ``Prefer: wait=N`` 201 when applied, 402 if a debit would exceed the available balance."""
    access.check_currency(account, body.currency)
    cmd = AdjustBalance(
        command_id=derive_adjustment_id(principal.user_id, account_id, key),
        account_id=account_id,
        issued_at=services.clock_ms(),
        amount=body.amount,
        currency=body.currency,
        reason=body.reason,
        principal=principal.user_id,
    )
    fingerprint = request_fingerprint("POST", ADJUSTMENTS_ROUTE, account_id, body)
    sub = operation_submission(services, request.url.path, principal.user_id, key, fingerprint, cmd, wait)
    return await submit(services, sub)
