"""RFC 9457 problem details, and the ONE place where error codes become HTTP statuses.

Every error response of the gateway is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail``, ``code`` (a stable ``ErrorCode``) and ``instance`` (the request path). 409 in-use, 429 and 503
carry ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from payments.gateway.errors import GatewayError, InvalidQuery
from payments.schemas.api import CARD_NUMBER_ERROR
from payments.schemas.errors import ErrorCode, PaymentsError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.MALFORMED_JSON: 400,
    ErrorCode.CARD_NUMBER_NOT_ALLOWED: 422,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.ACCOUNT_NOT_FOUND: 404,
    ErrorCode.ACCOUNT_EXISTS: 409,
    ErrorCode.PAYMENT_NOT_FOUND: 404,
    ErrorCode.CURRENCY_MISMATCH: 422,
    ErrorCode.INSUFFICIENT_FUNDS: 402,
    ErrorCode.PSP_DECLINED: 402,
    ErrorCode.OPERATION_EXPIRED: 402,
    ErrorCode.PSP_DISCREPANCY: 409,
    ErrorCode.WEBHOOK_SIGNATURE_INVALID: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.IDEMPOTENCY_KEY_MISSING: 400,
    ErrorCode.IDEMPOTENCY_KEY_INVALID: 400,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.INTAKE_UNAVAILABLE: 503,
    ErrorCode.DEPENDENCY_UNAVAILABLE: 503,
    ErrorCode.READ_MODEL_REBUILDING: 503,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INTERNAL_ERROR: 500,
}

TITLES: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION_ERROR: "The request is invalid",
    ErrorCode.MALFORMED_JSON: "The body is not valid JSON",
    ErrorCode.CARD_NUMBER_NOT_ALLOWED: "Card numbers are not accepted",
    ErrorCode.UNAUTHENTICATED: "Missing or invalid API key",
    ErrorCode.FORBIDDEN: "Not allowed for this role",
    ErrorCode.NOT_A_MEMBER: "Not a member of the account",
    ErrorCode.ACCOUNT_NOT_FOUND: "Account not found",
    ErrorCode.ACCOUNT_EXISTS: "Account already exists",
    ErrorCode.PAYMENT_NOT_FOUND: "Payment not found",
    ErrorCode.CURRENCY_MISMATCH: "Currency does not match the account",
    ErrorCode.INSUFFICIENT_FUNDS: "Insufficient funds",
    ErrorCode.PSP_DECLINED: "Declined by the payment provider",
    ErrorCode.OPERATION_EXPIRED: "Expired without an answer from the payment provider",
    ErrorCode.PSP_DISCREPANCY: "The payment provider contradicts a final state",
    ErrorCode.WEBHOOK_SIGNATURE_INVALID: "Webhook signature invalid",
    ErrorCode.RATE_LIMITED: "Too many requests",
    ErrorCode.IDEMPOTENCY_KEY_MISSING: "Idempotency-Key header required",
    ErrorCode.IDEMPOTENCY_KEY_INVALID: "Idempotency-Key header is invalid",
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: "A request with this Idempotency-Key is in progress",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "Idempotency-Key reused with a different request",
    ErrorCode.INTAKE_UNAVAILABLE: "Request could not be accepted durably",
    ErrorCode.DEPENDENCY_UNAVAILABLE: "A dependency is unavailable",
    ErrorCode.READ_MODEL_REBUILDING: "The read model is being rebuilt",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ErrorCode.INTERNAL_ERROR: "Internal error",
}

# Statuses whose answer tells the client to come back later (RFC 9110 §10.2.3).
_RETRY_STATUSES = frozenset({409, 429, 503})


def status_for(code: ErrorCode) -> int:
    return STATUS.get(code, 500)


def problem_type(code: ErrorCode) -> str:
    # A URN rather than an http URL: stable and unique, without promising a page that may not exist.
    return f"urn:payments:problem:{code.value}"


def problem_document(
    code: ErrorCode, detail: str, *, instance: str | None, extensions: dict[str, Any] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": problem_type(code),
        "title": TITLES.get(code, code.value),
        "status": status_for(code),
        "detail": detail,
        "code": code.value,
        "instance": instance,
    }
    for key, value in (extensions or {}).items():
        doc.setdefault(key, value)  # extensions never override the standard members
    return doc


def problem_bytes(
    code: ErrorCode, detail: str, *, instance: str | None, extensions: dict[str, Any] | None = None
) -> bytes:
    return orjson.dumps(problem_document(code, detail, instance=instance, extensions=extensions))


def problem_response(
    code: ErrorCode,
    detail: str,
    *,
    instance: str | None,
    extensions: dict[str, Any] | None = None,
    retry_after_s: int = 1,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> Response:
    """``status`` overrides the code's status only for framework errors that carry their own."""
    status = status if status is not None else status_for(code)
    out = dict(headers or {})
    if status in _RETRY_STATUSES and (status != 409 or code is ErrorCode.IDEMPOTENCY_KEY_IN_USE):
        out.setdefault("Retry-After", str(retry_after_s))
    if code is ErrorCode.UNAUTHENTICATED:
        out.setdefault("WWW-Authenticate", "Bearer")
    doc = problem_document(code, detail, instance=instance, extensions=extensions)
    doc["status"] = status
    return Response(orjson.dumps(doc), status_code=status, media_type=PROBLEM_JSON, headers=out)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc/msg/type: echoing ``input`` could reflect secrets or huge payloads back into logs and clients.
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors()
    ]


def install_problem_handlers(app: FastAPI, *, retry_after_s: int) -> None:
    """Route every error (ours, validation, routing, unexpected) through problem+json."""

    async def on_payments_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PaymentsError)
        ext = exc.extensions if isinstance(exc, GatewayError) else None
        retry = exc.retry_after_s if isinstance(exc, GatewayError) and exc.retry_after_s else retry_after_s
        # A bad query parameter (e.g. a cursor) is a malformed request (400); a bad body stays 422.
        status = 400 if isinstance(exc, InvalidQuery) else None
        return problem_response(
            exc.code,
            exc.detail,
            instance=request.url.path,
            extensions=ext,
            retry_after_s=retry,
            status=status,
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                ErrorCode.MALFORMED_JSON, "the request body is not valid JSON", instance=request.url.path
            )
        card = [e for e in errors if e["type"] == CARD_NUMBER_ERROR]
        if card:  # only the card error: the others may be about the same field (never its value, though)
            return problem_response(
                ErrorCode.CARD_NUMBER_NOT_ALLOWED,
                "card numbers are not accepted; send a payment-method token (tok_...)",
                instance=request.url.path,
                extensions={"errors": card},
            )
        # Only the query string wrong (e.g. ?limit=0): a malformed request, 400; a bad body or path, 422.
        in_query = all(e["loc"][:1] == ["query"] for e in errors)
        return problem_response(
            ErrorCode.VALIDATION_ERROR,
            f"{len(errors)} invalid field(s)",
            instance=request.url.path,
            extensions={"errors": errors},
            status=400 if errors and in_query else None,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            exc.status_code,
            ErrorCode.INTERNAL_ERROR if exc.status_code >= 500 else ErrorCode.VALIDATION_ERROR,
        )
        return problem_response(
            code,
            str(exc.detail),
            instance=request.url.path,
            headers=dict(exc.headers or {}),
            status=exc.status_code,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            ErrorCode.INTERNAL_ERROR, "an unexpected error occurred", instance=request.url.path
        )

    app.add_exception_handler(PaymentsError, on_payments_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
