"""Typed exceptions for the gateway's RFC 9457 problems, and the mapping from a problem to one. Pure.

Every error the client raises is a ``PaymentsClientError``: an answer with a problem (``status``,
``code``, ``title``, ``detail`` and the whole ``problem`` dict), a transport failure that outlived the
retry budget (``TransportFailed``, ``status`` None), or an answer that is not a problem document
(``UnexpectedResponse``). A code this client does not know yet becomes ``UnknownProblem``: the server may
add codes without breaking older clients.
"""

from __future__ import annotations

from typing import Any, ClassVar

from payments.schemas.errors import ErrorCode


class PaymentsClientError(Exception):
    """Root of the client's errors.

    ``retriable``: the same call (same Idempotency-Key) may succeed later; the client already retried it
    within its budget (``attempts`` tells how often). ``idempotency_key`` is the key the call used, so a
    caller may try the same logical operation again later without risking a second one.
    """

    code_value: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        status: int | None,
        code: str | None,
        title: str,
        detail: str,
        problem: dict[str, Any] | None = None,
        retriable: bool = False,
        retry_after_s: float | None = None,
        idempotency_key: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(f"{status or 'no answer'} {code or ''}: {detail}".replace(" :", ":"))
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.problem: dict[str, Any] = dict(problem or {})
        self.retriable = retriable
        self.retry_after_s = retry_after_s
        self.idempotency_key = idempotency_key
        self.attempts = attempts

    @property
    def operation_id(self) -> str | None:
        """The payment, top-up or adjustment the problem is about (a decline or rejection names it)."""
        for name in ("payment_id", "top_up_id", "adjustment_id"):
            value = self.problem.get(name)
            if isinstance(value, str):
                return value
        return None


class TransportFailed(PaymentsClientError):
    """No answer (connection refused or dropped, time-out) on every attempt within the budget. The
    operation may or may not have been accepted: retry later with ``idempotency_key`` to find out."""


class UnexpectedResponse(PaymentsClientError):
    """An error status without a problem document (e.g. a proxy's HTML page), or a body that does not
    parse as the expected model."""


class UnknownProblem(PaymentsClientError):
    """A problem whose ``code`` this client version does not know."""


# --- one class per stable code, grouped under a few bases that are convenient to catch ------------------


class ValidationFailed(PaymentsClientError):
    code_value = ErrorCode.VALIDATION_ERROR.value

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The field errors (``loc``, ``msg``, ``type``)."""
        value = self.problem.get("errors")
        return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


class MalformedJson(PaymentsClientError):
    code_value = ErrorCode.MALFORMED_JSON.value


class CardNumberNotAllowed(ValidationFailed):
    """A field looked like a card number; the API takes PSP tokens only."""

    code_value = "card_number_not_allowed"


class Unauthenticated(PaymentsClientError):
    code_value = ErrorCode.UNAUTHENTICATED.value


class Forbidden(PaymentsClientError):
    code_value = ErrorCode.FORBIDDEN.value


class NotAMember(Forbidden):
    code_value = ErrorCode.NOT_A_MEMBER.value


class NotFound(PaymentsClientError):
    code_value = ErrorCode.NOT_FOUND.value


class AccountNotFound(NotFound):
    code_value = ErrorCode.ACCOUNT_NOT_FOUND.value


class PaymentNotFound(NotFound):
    code_value = ErrorCode.PAYMENT_NOT_FOUND.value


class MethodNotAllowed(PaymentsClientError):
    code_value = ErrorCode.METHOD_NOT_ALLOWED.value


class AccountExists(PaymentsClientError):
    code_value = ErrorCode.ACCOUNT_EXISTS.value


class CurrencyMismatch(PaymentsClientError):
    code_value = ErrorCode.CURRENCY_MISMATCH.value


class OperationFailed(PaymentsClientError):
    """A payment, top-up or adjustment ended without moving money (402); ``operation_id`` names it."""


class InsufficientFunds(OperationFailed):
    code_value = ErrorCode.INSUFFICIENT_FUNDS.value


class PspDeclined(OperationFailed):
    code_value = ErrorCode.PSP_DECLINED.value

    @property
    def psp_failure_code(self) -> str | None:
        value = self.problem.get("psp_failure_code")
        return value if isinstance(value, str) else None


class OperationExpired(OperationFailed):
    code_value = ErrorCode.OPERATION_EXPIRED.value


class PspDiscrepancy(PaymentsClientError):
    code_value = ErrorCode.PSP_DISCREPANCY.value


class WebhookSignatureInvalid(PaymentsClientError):
    code_value = ErrorCode.WEBHOOK_SIGNATURE_INVALID.value


class RateLimited(PaymentsClientError):
    code_value = ErrorCode.RATE_LIMITED.value


class IdempotencyError(PaymentsClientError):
    """Something about the Idempotency-Key."""


class IdempotencyKeyMissing(IdempotencyError):
    code_value = ErrorCode.IDEMPOTENCY_KEY_MISSING.value


class IdempotencyKeyInvalid(IdempotencyError):
    code_value = ErrorCode.IDEMPOTENCY_KEY_INVALID.value


class IdempotencyKeyInUse(IdempotencyError):
    """The first request under this key is still running; raised only once the retry budget is spent."""

    code_value = ErrorCode.IDEMPOTENCY_KEY_IN_USE.value


class IdempotencyKeyReused(IdempotencyError):
    """The key was used before with a different request: a caller bug, never retried."""

    code_value = ErrorCode.IDEMPOTENCY_KEY_REUSED.value


class ServiceUnavailable(PaymentsClientError):
    """503: a dependency is down; raised only once the retry budget is spent."""


class IntakeUnavailable(ServiceUnavailable):
    code_value = ErrorCode.INTAKE_UNAVAILABLE.value


class DependencyUnavailable(ServiceUnavailable):
    code_value = ErrorCode.DEPENDENCY_UNAVAILABLE.value


class ReadModelRebuilding(ServiceUnavailable):
    code_value = ErrorCode.READ_MODEL_REBUILDING.value


class InternalError(PaymentsClientError):
    code_value = ErrorCode.INTERNAL_ERROR.value


def _leaf_classes(cls: type[PaymentsClientError]) -> list[type[PaymentsClientError]]:
    out: list[type[PaymentsClientError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_leaf_classes(sub))
    return out


# code -> class, built from the classes above so that adding a class is the only step.
ERROR_CLASSES: dict[str, type[PaymentsClientError]] = {
    c.code_value: c for c in _leaf_classes(PaymentsClientError) if c.code_value is not None
}


def error_class(code: str | None, status: int | None) -> type[PaymentsClientError]:
    """The class for a problem ``code``; an unknown code falls back on ``UnknownProblem`` (or on
    ``ServiceUnavailable``/``RateLimited`` by status, so that catching those still works for a new 503/429
    code)."""
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status == 503:
        return ServiceUnavailable
    if status == 429:
        return RateLimited
    return UnknownProblem
