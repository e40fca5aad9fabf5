"""``/v1/accounts/{id}/payments`` (member) and ``/v1/payments/{id}`` (member of its account, or admin)."""

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
from payments.gateway.idempotency_keys import derive_payment_id, request_fingerprint
from payments.gateway.intake import fresh_key_check, operation_submission, submit
from payments.gateway.openapi import AUTH, INTAKE, READ, responses
from payments.gateway.pages import DEFAULT_LIMIT, CursorParam, Limit, operations_page, readable_operation
from payments.schemas.api import PaymentOut, PaymentPage, PaymentRequest
from payments.schemas.commands import RequestPayment
from payments.schemas.errors import ErrorCode as E
from payments.schemas.state import OperationKind

router = APIRouter(tags=["payments"])

PAYMENTS_ROUTE = "/v1/accounts/{account_id}/payments"

PaymentId = Annotated[str, Path(description="payment id", examples=["pay_0d6f3b8a1c2e4f5a6b7c8d9e0f"])]


@router.post(
    PAYMENTS_ROUTE,
    status_code=202,
    response_model=PaymentOut,
    operation_id="create_payment",
    summary="Pay a payee from the shared balance",
    responses=responses(
        {
            201: (PaymentOut, "succeeded (only with Prefer: wait)"),
            202: (PaymentOut, "durably accepted (`pending`), or not final within the wait"),
        },
        *AUTH, E.NOT_A_MEMBER, E.ACCOUNT_NOT_FOUND, E.CURRENCY_MISMATCH, E.IDEMPOTENCY_KEY_MISSING,
        E.INSUFFICIENT_FUNDS, E.PSP_DECLINED, E.OPERATION_EXPIRED, *INTAKE,
        keyed=True, prefer=True, location=(201,),
    ),
)  # fmt: skip
async def request_payment(
    request: Request,
    account_id: AccountId,
    principal: CurrentPrincipal,
    precheck: IntakeAccount,
    key: IdempotencyKey,
    wait: PreferWait,
    body: PaymentRequest,
    services: Services,
) -> Response:
    """202 once the payment is durably accepted (``status: "pending"``). With ``Prefer: wait=N`` (N <= 10)
    the answer waits for the FINAL result: 201 succeeded; 402 ``insufficient_funds`` (declined for funds),
    ``psp_declined`` (the PSP refused the transfer; ``psp_failure_code`` says why) or ``operation_expired``;
    the rejection's 4xx; or, if the PSP has not answered within N s, 202 with the current status
    (``reserved``: funds held, ``processing`` or ``unknown``). The payment id is derived from (caller,
    account, Idempotency-Key)."""
    fingerprint = request_fingerprint("POST", PAYMENTS_ROUTE, account_id, body)
    cmd = RequestPayment(
        command_id=derive_payment_id(principal.user_id, account_id, key),
        account_id=account_id,
        issued_at=services.clock_ms(),
        amount=body.amount,
        currency=body.currency,
        payee=body.payee,
        description=body.description,
        principal=principal.user_id,
        fingerprint=fingerprint,
    )
    sub = operation_submission(
        services, request.url.path, principal.user_id, key, fingerprint, cmd, wait,
        account_check=precheck.for_claim(body.currency),
        fresh=fresh_key_check(services, principal.user_id, account_id, body.amount, body.currency, body.payee),
    )  # fmt: skip
    return await submit(services, sub)


@router.get(
    PAYMENTS_ROUTE,
    response_model=PaymentPage,
    operation_id="list_account_payments",
    summary="The account's payments, oldest first (paged)",
    responses=responses(
        {200: (PaymentPage, "a page of payments")},
        *READ, E.ACCOUNT_NOT_FOUND, query_codes=(E.VALIDATION_ERROR,),
    ),
)  # fmt: skip
async def list_payments(
    account_id: AccountId,
    principal: CurrentPrincipal,
    services: Services,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Response:
    """Ascending by the account version that created each payment; ``next_cursor`` pages on."""
    items, next_cursor = await operations_page(
        services, principal, account_id, OperationKind.PAYMENT, limit, cursor, render.payment_out
    )
    return render.json_answer(200, PaymentPage(items=items, next_cursor=next_cursor)).response()


@router.get(
    "/v1/payments/{payment_id}",
    response_model=PaymentOut,
    operation_id="get_payment",
    summary="A payment with its status history",
    responses=responses({200: (PaymentOut, "the payment")}, *READ, E.PAYMENT_NOT_FOUND),
)
async def get_payment(payment_id: PaymentId, principal: CurrentPrincipal, services: Services) -> Response:
    """A payment accepted a moment ago may not be here yet (the read model is eventually consistent)."""
    missing = GatewayError(f"payment {payment_id} does not exist", code=E.PAYMENT_NOT_FOUND)
    op = await readable_operation(services, principal, payment_id, OperationKind.PAYMENT, missing)
    return render.json_answer(200, render.payment_out(op)).response()
