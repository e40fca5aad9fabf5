"""``/v1/accounts/{id}/top-ups`` (member) and ``/v1/top-ups/{id}`` (member of its account, or admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from payments.gateway import render
from payments.gateway.deps import (
    AccountId,
    CurrentPrincipal,
    IdempotencyKey,
    IntakeAccount,
    PreferWait,
    Services,
)
from payments.gateway.errors import GatewayError
from payments.gateway.idempotency_keys import derive_top_up_id, request_fingerprint
from payments.gateway.intake import fresh_key_check, operation_submission, submit
from payments.gateway.openapi import AUTH, INTAKE, READ, responses
from payments.gateway.pages import DEFAULT_LIMIT, CursorParam, Limit, operations_page, readable_operation
from payments.schemas.api import TopUpOut, TopUpPage, TopUpRequest
from payments.schemas.commands import RequestTopUp
from payments.schemas.errors import ErrorCode as E
from payments.schemas.state import OperationKind

router = APIRouter(tags=["top-ups"])

TOP_UPS_ROUTE = "/v1/accounts/{account_id}/top-ups"

TopUpId = Annotated[str, Path(description="top-up id", examples=["top_7c1d2e3f4a5b6c7d8e9f0a1b2c"])]


@router.post(
    TOP_UPS_ROUTE,
    status_code=202,
    response_model=TopUpOut,
    operation_id="create_top_up",
    summary="Charge a card token and credit the account",
    responses=responses(
        {
            201: (TopUpOut, "succeeded (only with Prefer: wait)"),
            202: (TopUpOut, "durably accepted (`pending`), or not final within the wait"),
        },
        *AUTH, E.NOT_A_MEMBER, E.ACCOUNT_NOT_FOUND, E.CURRENCY_MISMATCH, E.IDEMPOTENCY_KEY_MISSING,
        E.PSP_DECLINED, E.OPERATION_EXPIRED, *INTAKE,
        keyed=True, prefer=True, location=(201,),
    ),
)  # fmt: skip
async def request_top_up(
    request: Request,
    account_id: AccountId,
    principal: CurrentPrincipal,
    precheck: IntakeAccount,
    key: IdempotencyKey,
    wait: PreferWait,
    body: TopUpRequest,
    services: Services,
) -> Response:
    """202 once the top-up is durably accepted (``status: "pending"``); the card is charged exactly once
    (the top-up id is the PSP idempotency key) and the account credited once the PSP confirms. With
    ``Prefer: wait=N`` (N <= 10): 201 succeeded; 402 ``psp_declined`` (card declined; ``psp_failure_code``
    says why) or ``operation_expired``; the rejection's 4xx; or 202 with the current status (``processing``
    or ``unknown``) if the PSP has not answered in time. The top-up id is derived from (caller, account,
    Idempotency-Key)."""
    fingerprint = request_fingerprint("POST", TOP_UPS_ROUTE, account_id, body)
    cmd = RequestTopUp(
        command_id=derive_top_up_id(principal.user_id, account_id, key),
        account_id=account_id,
        issued_at=services.clock_ms(),
        amount=body.amount,
        currency=body.currency,
        payment_method=body.payment_method,
        principal=principal.user_id,
        fingerprint=fingerprint,
    )
    sub = operation_submission(
        services, request.url.path, principal.user_id, key, fingerprint, cmd, wait,
        account_check=precheck.for_claim(body.currency),
        fresh=fresh_key_check(services, principal.user_id, account_id, body.amount, body.currency, body.payment_method),
    )  # fmt: skip
    return await submit(services, sub)


@router.get(
    TOP_UPS_ROUTE,
    response_model=TopUpPage,
    operation_id="list_account_top_ups",
    summary="The account's top-ups, oldest first (paged)",
    responses=responses(
        {200: (TopUpPage, "a page of top-ups")},
        *READ, E.ACCOUNT_NOT_FOUND, query_codes=(E.VALIDATION_ERROR,),
    ),
)  # fmt: skip
async def list_top_ups(
    account_id: AccountId,
    principal: CurrentPrincipal,
    services: Services,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Response:
    """Ascending by the account version that created each top-up; ``next_cursor`` pages on."""
    items, next_cursor = await operations_page(
        services, principal, account_id, OperationKind.TOP_UP, limit, cursor, render.top_up_out
    )
    return render.json_answer(200, TopUpPage(items=items, next_cursor=next_cursor)).response()


@router.get(
    "/v1/top-ups/{top_up_id}",
    response_model=TopUpOut,
    operation_id="get_top_up",
    summary="A top-up with its status history",
    responses=responses({200: (TopUpOut, "the top-up")}, *READ, E.NOT_FOUND),
)
async def get_top_up(top_up_id: TopUpId, principal: CurrentPrincipal, services: Services) -> Response:
    """A top-up accepted a moment ago may not be here yet (the read model is eventually consistent)."""
    missing = GatewayError(f"top-up {top_up_id} does not exist", code=E.NOT_FOUND)
    op = await readable_operation(services, principal, top_up_id, OperationKind.TOP_UP, missing)
    return render.json_answer(200, render.top_up_out(op)).response()
