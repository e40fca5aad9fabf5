"""Exceptions of the PSP simulator.

Every error carries a stable ``code`` (the ``code`` of the RFC 9457 problem body) and says whether a client
may retry the same request unchanged. Only the HTTP edge (``app.py``) maps codes to status codes.

``PspSimError`` should become a subclass of the project-wide ``PaymentsError`` once that root exists; the
simulator defines its own root so that it does not depend on packages it must know nothing about.
"""

from __future__ import annotations


class PspSimError(Exception):
    """Root of every error raised by the simulator."""

    code: str = "psp_sim_error"
    retriable: bool = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class IdempotencyKeyMissing(PspSimError):
    code = "idempotency_key_missing"


class IdempotencyKeyInvalid(PspSimError):
    code = "idempotency_key_invalid"


class IdempotencyKeyInUse(PspSimError):
    """A request with the same key is still being processed; retrying later is safe."""

    code = "idempotency_key_in_use"
    retriable = True


class IdempotencyKeyReused(PspSimError):
    """The key was used before with different parameters; retrying unchanged can never succeed."""

    code = "idempotency_key_reused"


class UnknownPaymentMethod(PspSimError):
    code = "invalid_payment_method"


class NotFound(PspSimError):
    code = "not_found"


class ChargeNotRefundable(PspSimError):
    code = "charge_not_refundable"


class RefundExceedsCharge(PspSimError):
    code = "amount_exceeds_refundable"


class InvalidSecret(PspSimError):
    """A webhook secret is not in the Standard Webhooks ``whsec_<base64>`` form."""

    code = "invalid_secret"
