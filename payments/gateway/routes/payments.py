"""``/v1/accounts/{id}/payments`` (member) and ``/v1/payments/{id}`` (member of its account, or admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from payments.gateway import access, render
from payments.gateway.deps import (
    AccountId,
    CurrentPrincipal,
    IdempotencyKey,
    MemberAccount,
    PreferWait,
    Services,
)
from payments.gateway.errors import DependencyUnavailable, GatewayError
from payments.gateway.idempotency_keys import derive_payment_id, request_fingerprint
from payments.gateway.intake import operation_submission, submit
from payments.gateway.problems import problem_openapi
from payments.schemas.api import PaymentOut, PaymentRequest
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
    summary="Pay a payee from the shared balance",
    responses={
        201: {"model": PaymentOut, "description": "succeeded (only with Prefer: wait)"},
        **problem_openapi(
            E.UNAUTHENTICATED, E.NOT_A_MEMBER, E.ACCOUNT_NOT_FOUND, E.MALFORMED_JSON, E.VALIDATION_ERROR,
            E.CURRENCY_MISMATCH, E.IDEMPOTENCY_KEY_MISSING, E.IDEMPOTENCY_KEY_INVALID,
            E.IDEMPOTENCY_KEY_IN_USE, E.IDEMPOTENCY_KEY_REUSED, E.INSUFFICIENT_FUNDS, E.INTAKE_UNAVAILABLE,
        ),
    },
)  # fmt: skip
async def request_payment(
    request: Request,
    account_id: AccountId,
    principal: CurrentPrincipal,
    account: MemberAccount,
    key: IdempotencyKey,
    wait: PreferWait,
    body: PaymentRequest,
    services: Services,
) -> Response:
    """202 once the payment is durably accepted (``status: "pending"``). With ``Prefer: wait=N`` (N <= 10)
    the answer waits for the decision: 201 succeeded, 402 ``insufficient_funds``, or the rejection's 4xx;
    still 202 if it takes longer. The payment id is derived from (caller, Idempotency-Key)."""
    access.check_currency(account, body.currency)
    fingerprint = request_fingerprint("POST", PAYMENTS_ROUTE, account_id, body)
    cmd = RequestPayment(
        command_id=derive_payment_id(principal.user_id, key),
        account_id=account_id,
        issued_at=services.clock_ms(),
        amount=body.amount,
        currency=body.currency,
        payee=body.payee,
        description=body.description,
        principal=principal.user_id,
        fingerprint=fingerprint,
    )
    sub = operation_submission(services, request.url.path, principal.user_id, key, fingerprint, cmd, wait)
    return await submit(services, sub)


@router.get(
    "/v1/payments/{payment_id}",
    response_model=PaymentOut,
    summary="A payment with its status history",
    responses=problem_openapi(
        E.UNAUTHENTICATED, E.NOT_A_MEMBER, E.PAYMENT_NOT_FOUND, E.DEPENDENCY_UNAVAILABLE
    ),
)
async def get_payment(payment_id: PaymentId, principal: CurrentPrincipal, services: Services) -> Response:
    """A payment accepted a moment ago may not be here yet (the read model is eventually consistent)."""
    missing = GatewayError(f"payment {payment_id} does not exist", code=E.PAYMENT_NOT_FOUND)
    try:
        op = await services.read_model.operation(payment_id)
    except RedisError as exc:
        raise DependencyUnavailable("the read model is unavailable") from exc
    if op is None or op.kind is not OperationKind.PAYMENT:
        raise missing
    try:
        await access.readable_account(services, principal, op.account_id)
    except GatewayError as exc:
        if exc.code is E.ACCOUNT_NOT_FOUND:
            raise missing from exc
        raise
    return render.json_answer(200, render.payment_out(op)).response()
