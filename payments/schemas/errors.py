"""The one exception hierarchy. Exceptions carry a stable error code; only the HTTP edge maps codes to
statuses (see ``payments.gateway.problems``)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    MALFORMED_JSON = "malformed_json"
    # A card number (PAN) in a request field, path or query: refused before anything is stored, published
    # or logged (payments.schemas.pan). Card data enters only as a PSP token (``tok_...``).
    CARD_NUMBER_NOT_ALLOWED = "card_number_not_allowed"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_A_MEMBER = "not_a_member"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_EXISTS = "account_exists"
    PAYMENT_NOT_FOUND = "payment_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    # The PSP refused the money movement (card declined, expired card...); the PSP's own code is kept on
    # the operation as ``psp_failure_code``.
    PSP_DECLINED = "psp_declined"
    # No PSP outcome arrived before the operation's deadline and the PSP had no record of it: the hold is
    # released (docs/design.md §2 step 6). A late PSP execution is a discrepancy, never new money.
    OPERATION_EXPIRED = "operation_expired"
    # The PSP reported an outcome that contradicts a terminal state we already published.
    PSP_DISCREPANCY = "psp_discrepancy"
    WEBHOOK_SIGNATURE_INVALID = "webhook_signature_invalid"
    RATE_LIMITED = "rate_limited"
    IDEMPOTENCY_KEY_MISSING = "idempotency_key_missing"
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INTAKE_UNAVAILABLE = "intake_unavailable"
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
    # Redis lost the read model and the projector is rebuilding it from Kafka: reads cannot be answered
    # truthfully yet (an existing account would look absent, a version could go back). HTTP only (503).
    READ_MODEL_REBUILDING = "read_model_rebuilding"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL_ERROR = "internal_error"


class PaymentsError(Exception):
    """Root of every error the project raises on purpose.

    ``retriable`` says whether the same request may succeed if simply tried again later.
    """

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    retriable: bool = False

    def __init__(self, detail: str, *, code: ErrorCode | None = None, retriable: bool | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if retriable is not None:
            self.retriable = retriable


class DecodeError(PaymentsError):
    """A message on a topic could not be decoded: a poison record or an incompatible producer."""

    code = ErrorCode.VALIDATION_ERROR
